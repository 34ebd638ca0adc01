package host

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestSysctl(t *testing.T) {
	h := New(fixtureRoot)
	for name, want := range map[string]string{
		"net.ipv4.ip_forward":                "0",
		"net/ipv4/ip_forward":                "0",
		"net.ipv4.conf.eth0/100.rp_filter":   "2",
		"net/ipv4/conf/eth0.100/rp_filter":   "2",
		"net.ipv4.conf.all.accept_redirects": "0",
		"net.ipv4.ip_local_port_range":       "32768\t60999",
	} {
		got, err := h.Sysctl(name)
		if err != nil || got != want {
			t.Errorf("Sysctl(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := h.Sysctl("net.ipv4.nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing sysctl: %v", err)
	}
	for _, bad := range []string{"", "net..ipv4", "../../etc/passwd", "net/../../x", "."} {
		if _, err := h.Sysctl(bad); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Sysctl(%q) = %v, want a name error", bad, err)
		}
	}
}

func TestVirtualization(t *testing.T) {
	if v, err := New(fixtureRoot).Virtualization(); err != nil || v.Container {
		t.Errorf("fixture VPS: %+v, %v", v, err)
	}
	for _, tc := range []struct {
		file, content string
		want          Virt
	}{
		{".dockerenv", "", Virt{true, "docker", "/.dockerenv"}},
		{"run/.containerenv", "", Virt{true, "podman", "/run/.containerenv"}},
		{"proc/1/environ", "PATH=/bin\x00container=lxc\x00", Virt{true, "lxc", "/proc/1/environ"}},
		{"proc/1/cgroup", "12:pids:/docker/0123abcd\n0::/\n", Virt{true, "docker", "/proc/1/cgroup"}},
		{"proc/1/cgroup", "1:name=systemd:/kubepods/burstable/pod1\n", Virt{true, "kubernetes", "/proc/1/cgroup"}},
		{"proc/self/mountinfo", "600 500 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/l\n", Virt{true, "container", "/proc/self/mountinfo"}},
		{"proc/self/mountinfo", "24 1 254:1 / / rw shared:1 - ext4 /dev/vda1 rw\n", Virt{}},
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, tc.file)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if v, err := New(dir).Virtualization(); err != nil || v != tc.want {
			t.Errorf("%s %q: %+v, %v; want %+v", tc.file, tc.content, v, err, tc.want)
		}
	}
	if _, err := New("").Virtualization(); err != nil {
		t.Errorf("live: %v", err)
	}
}

func TestMemory(t *testing.T) {
	m, err := New(fixtureRoot).Memory()
	want := MemInfo{MemTotal: 2014464 << 10, MemAvailable: 1203400 << 10, SwapTotal: 1048572 << 10, SwapFree: 1048000 << 10}
	if err != nil || m != want {
		t.Errorf("Memory = %+v, %v; want %+v", m, err, want)
	}
	if m, err := New("").Memory(); err != nil || m.MemTotal == 0 || m.MemAvailable > m.MemTotal {
		t.Errorf("live Memory = %+v, %v", m, err)
	}
}

func TestSwaps(t *testing.T) {
	dir := tempFixture(t)
	os.WriteFile(filepath.Join(dir, "swapfile"), nil, 0o644)
	os.Chmod(filepath.Join(dir, "swapfile"), 0o644)
	os.MkdirAll(filepath.Join(dir, "var"), 0o755)
	os.WriteFile(filepath.Join(dir, "var/swap two"), nil, 0o600)
	sw, err := New(dir).Swaps()
	if err != nil {
		t.Fatal(err)
	}
	want := []Swap{
		{"/swapfile", "file", 1048572 << 10, 572 << 10, -2, 0o644},
		{"/dev/vda3", "partition", 524284 << 10, 0, -3, 0},
		{"/var/swap two", "file", 1024 << 10, 0, -4, 0o600},
	}
	if len(sw) != len(want) {
		t.Fatalf("got %+v", sw)
	}
	for i := range want {
		if sw[i] != want[i] {
			t.Errorf("swap %d = %+v, want %+v", i, sw[i], want[i])
		}
	}
	if _, err := New("").Swaps(); err != nil {
		t.Errorf("live: %v", err)
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`: "/a b", `/a\011b\134`: "/a\tb\\", `/plain`: "/plain", `/bad\09`: `/bad\09`, `\04`: `\04`, `\777`: `\777`,
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDisks(t *testing.T) {
	ds, err := New(fixtureRoot).Disks()
	if err != nil || len(ds) != 2 || ds[0].Mountpoint != "/" || ds[0].Avail != 400000000 || ds[1].FSType != "vfat" {
		t.Errorf("fixture Disks = %+v, %v", ds, err)
	}
	if ds, err := New(t.TempDir()).Disks(); err != nil || ds != nil {
		t.Errorf("fixture without df.json: %+v, %v", ds, err)
	}
	ds, err = New("").Disks()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range ds {
		if seen[d.Device] {
			t.Errorf("device %s listed twice", d.Device)
		}
		seen[d.Device] = true
		if d.Size == 0 || d.Used > d.Size || d.Avail > d.Size {
			t.Errorf("implausible usage %+v", d)
		}
	}
	t.Logf("live disks: %+v", ds)
}
