package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPackages(t *testing.T) {
	pkgs, err := New(fixtureRoot).Packages()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]Package{
		"openssh-server":             {"openssh-server", "1:9.2p1-2+deb12u2", "install ok installed", true},
		"libc6":                      {"libc6", "2.36-9+deb12u4", "install ok installed", true}, // the installed arch wins
		"linux-image-6.1.0-9-amd64":  {"linux-image-6.1.0-9-amd64", "6.1.27-1", "deinstall ok config-files", false},
		"linux-image-6.1.0-30-amd64": {"linux-image-6.1.0-30-amd64", "6.1.124-1", "install ok half-configured", false},
	} {
		if got := pkgs[name]; got != want {
			t.Errorf("%s = %+v, want %+v", name, got, want)
		}
	}
	if len(pkgs) != 8 {
		t.Errorf("%d packages, want 8: %v", len(pkgs), pkgs)
	}
	if _, ok := pkgs["not-a-package (continuation line)"]; ok {
		t.Error("continuation line parsed as a field")
	}
}

func TestParseDpkgStatusEdges(t *testing.T) {
	in := "Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\nPackage: b\nVersion: 2\n\n\n\nStatus: install ok installed\n"
	got := ParseDpkgStatus([]byte(in))
	if got["a"] != (Package{"a", "1", "install ok installed", true}) || got["b"] != (Package{Name: "b", Version: "2"}) || len(got) != 2 {
		t.Errorf("got %+v", got)
	}
}

func TestRebootRequired(t *testing.T) {
	st, err := New(fixtureRoot).RebootRequired()
	if err != nil || !st.Required || strings.Join(st.Packages, ",") != "linux-image-6.1.0-21-amd64,linux-base" {
		t.Errorf("RebootRequired = %+v, %v", st, err)
	}
	st, err = New(t.TempDir()).RebootRequired()
	if err != nil || st.Required {
		t.Errorf("empty root: %+v, %v", st, err)
	}
}

func TestNewerKernelInstalled(t *testing.T) {
	st, err := New(fixtureRoot).NewerKernelInstalled()
	if err != nil {
		t.Fatal(err)
	}
	// 6.1.0-30 is half-configured and 6.1.0-9 removed: neither counts.
	want := KernelState{Running: "6.1.0-18-amd64", Newest: "6.1.0-21-amd64", NewerInstalled: true}
	if st != want {
		t.Errorf("got %+v, want %+v", st, want)
	}
	dir := tempFixture(t)
	if err := os.WriteFile(filepath.Join(dir, "proc/sys/kernel/osrelease"), []byte("6.1.0-21-amd64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := New(dir).NewerKernelInstalled(); err != nil || st.NewerInstalled {
		t.Errorf("running the newest: %+v, %v", st, err)
	}
}

func TestRunningKernelLive(t *testing.T) {
	rel, err := New("").RunningKernel()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Skip(err)
	}
	if rel != strings.TrimSpace(string(b)) {
		t.Errorf("uname %q != osrelease %q", rel, b)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"6.1.0-21-amd64", "6.1.0-18-amd64", 1},
		{"6.1.0-9-amd64", "6.1.0-18-amd64", -1},
		{"6.1.0-18-amd64", "6.1.0-18-amd64", 0},
		{"6.10.0-1", "6.9.0-1", 1},
		{"5.15.0-91-generic", "6.1.0-1-amd64", -1},
		{"6.1.0-18-cloud-amd64", "6.1.0-18-amd64", 1},
		{"6.1.0-018", "6.1.0-18", 0},
		{"6.1", "6.1.0", -1},
	} {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := compareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestAptConfig(t *testing.T) {
	cfg, err := New(fixtureRoot).AptConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"APT::Periodic::Unattended-Upgrade":    "1",
		"APT::Architecture":                    "amd64",
		"Unattended-Upgrade::Automatic-Reboot": "false",
		"Unattended-Upgrade::Origins-Pattern": "origin=Debian,codename=${distro_codename},label=Debian\n" +
			"origin=Debian,codename=${distro_codename}-security,label=Debian-Security",
		"Acquire::http::Proxy": "",
	} {
		if got, ok := cfg[k]; !ok || got != want {
			t.Errorf("%s = %q (%v), want %q", k, got, ok, want)
		}
	}
	if _, err := New(t.TempDir()).AptConfig(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("fixture without apt-config.txt: %v", err)
	}
	if _, err := ParseAptConfig(strings.NewReader("Key value;\n")); err == nil {
		t.Error("malformed line accepted")
	}
}

func TestAptConfigLive(t *testing.T) {
	requireTool(t, "apt-config")
	cfg, err := New("").AptConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg["Dir"] == "" {
		t.Errorf("no Dir in apt-config dump (%d keys)", len(cfg))
	}
}

func TestUpgradableSecurity(t *testing.T) {
	u, err := New(fixtureRoot).UpgradableSecurity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(u.Packages, ",") != "base-files,libssl3,openssl" || strings.Join(u.Security, ",") != "libssl3,openssl" {
		t.Errorf("got %+v", u)
	}
	if _, err := New(t.TempDir()).UpgradableSecurity(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("fixture without apt-simulate.txt: %v", err)
	}
}

func TestUpgradableSecurityLive(t *testing.T) {
	if testing.Short() {
		t.Skip("apt-get -s takes seconds")
	}
	requireTool(t, "apt-get")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := New("").UpgradableSecurity(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAptStamps(t *testing.T) {
	dir := tempFixture(t)
	upd := time.Date(2024, 5, 3, 1, 2, 3, 0, time.UTC)
	uu := time.Date(2024, 5, 2, 6, 25, 0, 0, time.UTC)
	os.Chtimes(filepath.Join(dir, "var/lib/apt/periodic/update-success-stamp"), upd, upd)
	os.Chtimes(filepath.Join(dir, "var/lib/apt/periodic/unattended-upgrades-stamp"), uu, uu)
	st, err := New(dir).AptStamps()
	if err != nil {
		t.Fatal(err)
	}
	wantLog := time.Date(2024, 5, 2, 6, 25, 47, 0, time.Local)
	if !st.UpdateSuccess.Equal(upd) || !st.UnattendedUpgrade.Equal(uu) || !st.UnattendedLog.Equal(wantLog) {
		t.Errorf("got %+v", st)
	}
	st, err = New(t.TempDir()).AptStamps()
	if err != nil || !st.UpdateSuccess.IsZero() || !st.UnattendedUpgrade.IsZero() || !st.UnattendedLog.IsZero() {
		t.Errorf("empty root: %+v, %v", st, err)
	}
}

func FuzzParseDpkgStatus(f *testing.F) {
	b, err := os.ReadFile(fixtureRoot + "/var/lib/dpkg/status")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("Package:\nStatus: install ok installed\n\nPackage: x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for name, p := range ParseDpkgStatus(data) {
			if name == "" || name != p.Name || p.Installed != statusInstalled(p.Status) {
				t.Fatalf("bad entry %q: %+v", name, p)
			}
		}
	})
}

func FuzzParseAptConfig(f *testing.F) {
	b, err := os.ReadFile(fixtureRoot + "/.fixture/apt-config.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`a:: "";` + "\n" + `:: "x";`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseAptConfig(strings.NewReader(string(data)))
		if err == nil && m == nil {
			t.Fatal("nil map without error")
		}
	})
}

// TestPackagesLiveMatchesTheStatusFile: on the live host Packages asks
// dpkg-query; what it lists is what dpkg's own status file says
// (differential: the file is read here, by the test, only).
func TestPackagesLiveMatchesTheStatusFile(t *testing.T) {
	b, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		if os.Getenv("MOAT_TEST_STRICT") == "1" {
			t.Fatalf("no dpkg status file (MOAT_TEST_STRICT=1): %v", err)
		}
		t.Skipf("not a Debian host: %v", err)
	}
	got, err := New("").Packages()
	if err != nil {
		t.Fatal(err)
	}
	want := ParseDpkgStatus(b)
	// dpkg-query lists what is not not-installed; the file may keep
	// purged entries.
	for name, p := range want {
		if strings.HasSuffix(p.Status, "not-installed") {
			delete(want, name)
		}
	}
	for name, p := range want {
		if got[name] != p {
			t.Errorf("%s: dpkg-query %+v, status file %+v", name, got[name], p)
		}
	}
	if len(got) != len(want) {
		t.Errorf("dpkg-query lists %d packages, the status file %d", len(got), len(want))
	}
	if !got["dpkg"].Installed {
		t.Error("dpkg itself is not listed as installed")
	}
}

// BenchmarkPackagesLive: what asking dpkg-query costs against parsing
// the status file (the audit lists packages a few times per run).
func BenchmarkPackagesLive(b *testing.B) {
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		b.Skip("not a Debian host")
	}
	b.Run("dpkg-query", func(b *testing.B) {
		for b.Loop() {
			if _, err := New("").Packages(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("status-file", func(b *testing.B) {
		for b.Loop() {
			data, err := os.ReadFile("/var/lib/dpkg/status")
			if err != nil {
				b.Fatal(err)
			}
			ParseDpkgStatus(data)
		}
	})
}
