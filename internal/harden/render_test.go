package harden

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/lab"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", name, got)
	}
}

// Algorithms as Debian 12's OpenSSH 9.2 has them, and as 9.9 has them.
var (
	kex92  = []string{"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512", "diffie-hellman-group-exchange-sha1", "diffie-hellman-group-exchange-sha256", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "curve25519-sha256", "curve25519-sha256@libssh.org", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"}
	kex99  = append(slices.Clone(kex92), "mlkem768x25519-sha256")
	kex80  = []string{"curve25519-sha256", "curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512", "diffie-hellman-group-exchange-sha256"}
	cipher = []string{"3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc", "aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"}
	macs   = []string{"hmac-sha1", "hmac-sha1-96", "hmac-sha2-256", "hmac-sha2-512", "hmac-md5", "umac-64@openssh.com", "umac-128@openssh.com", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "umac-128-etm@openssh.com"}
)

func sshdCases() map[string]SSHDParams {
	base := func(kex []string) SSHDParams {
		p := SSHDParams{Source: "/etc/moat/moat.yaml", Ports: []uint16{22}, PermitRootLogin: "no", MaxAuthTries: 3, LoginGraceTime: 30 * time.Second}
		p.Kex, p.Ciphers, p.MACs = Algorithms(kex, cipher, macs)
		return p
	}
	def := base(kex92)
	def.Source = ""
	move := base(kex92)
	move.Ports, move.Moving, move.AllowUsers = []uint16{22, 2222}, true, []string{"ops", "deploy"}
	moved := base(kex92)
	moved.Ports, moved.AllowUsers = []uint16{2222}, []string{"ops", "deploy"}
	vpnOnly := base(kex99)
	vpnOnly.Listen = []netip.Addr{netip.MustParseAddr("100.101.102.103"), netip.MustParseAddr("fd7a:115c:a1e0::1")}
	vpnOnly.AllowGroups = []string{"sshusers"}
	relaxed := base(kex80)
	relaxed.Password, relaxed.PermitRootLogin, relaxed.MaxAuthTries, relaxed.LoginGraceTime = true, "prohibit-password", 6, time.Minute
	unknown := base(nil)
	unknown.Kex, unknown.Ciphers, unknown.MACs = nil, nil, nil
	return map[string]SSHDParams{
		"sshd-defaults.conf":    def,
		"sshd-move-window.conf": move,
		"sshd-move-final.conf":  moved,
		"sshd-vpn.conf":         vpnOnly,
		"sshd-relaxed.conf":     relaxed,
		"sshd-no-algos.conf":    unknown,
	}
}

func TestRenderSSHDGolden(t *testing.T) {
	for name, p := range sshdCases() {
		t.Run(name, func(t *testing.T) { golden(t, name, RenderSSHD(p)) })
	}
}

// TestRenderedSSHDConfigsPassSSHDt runs sshd -t -f on every rendered
// drop-in, as sshd would read it.
func TestRenderedSSHDConfigsPassSSHDt(t *testing.T) {
	lab.RequireTool(t, "sshd", "ssh", "ssh-keygen")
	dir := t.TempDir()
	key := filepath.Join(dir, "hostkey")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	if os.Geteuid() == 0 {
		os.MkdirAll("/run/sshd", 0o755) // Debian's privilege separation directory
	}
	bin, _ := sshdBinary("")
	for name, p := range sshdCases() {
		if name == "sshd-vpn.conf" {
			// sshd -t binds nothing, but the Tailscale ML-KEM names need 9.9.
			if !slices.Contains(localKex(t), "mlkem768x25519-sha256") {
				p.Kex, _, _ = Algorithms(localKex(t), cipher, macs)
			}
		}
		cfg := filepath.Join(dir, name)
		os.WriteFile(cfg, []byte(RenderSSHD(p)), 0o644)
		if out, err := exec.Command(bin, "-t", "-f", cfg, "-h", key).CombinedOutput(); err != nil {
			t.Errorf("sshd -t -f %s: %v\n%s", name, err, out)
		}
	}
}

func localKex(t *testing.T) []string {
	out, err := exec.Command("ssh", "-Q", "kex").Output()
	if err != nil {
		t.Fatalf("ssh -Q kex: %v", err)
	}
	return strings.Fields(string(out))
}

func TestAlgorithmsPutPostQuantumFirst(t *testing.T) {
	k, c, m := Algorithms(kex99, cipher, macs)
	if k[0] != "mlkem768x25519-sha256" || k[1] != "sntrup761x25519-sha512" {
		t.Errorf("kex %v", k)
	}
	for _, x := range append(append(k, c...), m...) {
		if strings.Contains(x, "sha1") || strings.Contains(x, "cbc") || strings.Contains(x, "nistp") || strings.Contains(x, "md5") || strings.Contains(x, "umac-64") {
			t.Errorf("weak algorithm picked: %s", x)
		}
	}
	if k, _, _ := Algorithms(kex92, nil, nil); k[0] != "sntrup761x25519-sha512" {
		t.Errorf("9.2: %v", k)
	}
	if k, c, m := Algorithms(nil, nil, nil); k != nil || c != nil || m != nil {
		t.Error("unknown support must leave the keywords out")
	}
}

func TestFixMainConfigGolden(t *testing.T) {
	for _, in := range []string{"main-no-include", "main-late-include", "main-debian", "main-no-newline"} {
		t.Run(in, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "golden", in+".in"))
			if err != nil {
				t.Fatal(err)
			}
			fix := FixMainConfig(data)
			golden(t, in+".out", string(fix.Data))
			again := FixMainConfig(fix.Data)
			if !bytes.Equal(again.Data, fix.Data) || len(again.Notes) > 0 {
				t.Errorf("not idempotent: %v\n%s", again.Notes, again.Data)
			}
			if in == "main-debian" && len(fix.Notes) > 0 {
				t.Errorf("Debian's file needs no fix: %v", fix.Notes)
			}
		})
	}
}

func TestRenderUpdatesGolden(t *testing.T) {
	golden(t, "20auto-upgrades", RenderAutoUpgrades("/etc/moat/moat.yaml"))
	golden(t, "52moat-unattended-upgrades", RenderUnattended("/etc/moat/moat.yaml", ""))
	golden(t, "52moat-unattended-upgrades-reboot", RenderUnattended("/etc/moat/moat.yaml", "04:30"))
}

func TestSysctlGolden(t *testing.T) {
	ten := 10
	cases := map[string]SysctlFacts{
		"sysctl-plain.conf":           {Managed: true},
		"sysctl-docker-ts.conf":       {Managed: true, Forwarding: true, ForwardingWhy: "Docker, Tailscale (tailscale0)", Tailscale: true, Swappiness: &ten},
		"sysctl-slaac.conf":           {Managed: true, Forwarding: true, SLAACWAN: "eth0.100"},
		"sysctl-slaac-noforward.conf": {Managed: true, SLAACWAN: "ens3"},
		"sysctl-disabled.conf":        {VPNOnly: true, Swappiness: &ten, Extra: map[string]string{"net.core.somaxconn": "4096", "fs.file-max": "200000"}},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) { golden(t, name, RenderSysctl("/etc/moat/moat.yaml", SysctlSettings(f))) })
	}
}

func TestSysctlSettingsVPSAware(t *testing.T) {
	get := func(s []Setting, k string) (string, bool) {
		for _, x := range s {
			if x.Key == k {
				return x.Value, true
			}
		}
		return "", false
	}
	s := SysctlSettings(SysctlFacts{Managed: true})
	if v, _ := get(s, "net.ipv4.ip_forward"); v != "0" {
		t.Errorf("plain host: ip_forward %q", v)
	}
	if v, _ := get(s, "net.ipv4.conf.all.rp_filter"); v != "1" {
		t.Errorf("plain host: rp_filter %q", v)
	}
	s = SysctlSettings(SysctlFacts{Managed: true, Forwarding: true, Tailscale: true, SLAACWAN: "eth0"})
	if _, ok := get(s, "net.ipv4.ip_forward"); ok {
		t.Error("forwarding must be left alone with Docker/WireGuard/Tailscale")
	}
	if v, _ := get(s, "net.ipv4.conf.all.rp_filter"); v != "2" {
		t.Errorf("Tailscale: rp_filter %q, want 2 (loose)", v)
	}
	if v, _ := get(s, "net.ipv6.conf.eth0.accept_ra"); v != "2" {
		t.Errorf("SLAAC WAN with forwarding: accept_ra %q, want 2", v)
	}
	if _, ok := get(s, "net.ipv6.conf.default.accept_ra"); ok {
		t.Error("SLAAC WAN: router advertisements must be kept")
	}
	for _, x := range s {
		if x.Key == "kernel.unprivileged_bpf_disabled" || x.Key == "kernel.kexec_load_disabled" {
			t.Errorf("%s cannot be undone until reboot: a rollback could not restore it", x.Key)
		}
	}
}

func TestFstabWithSwap(t *testing.T) {
	in := "UUID=abc / ext4 errors=remount-ro 0 1"
	out := FstabWithSwap([]byte(in), "/swapfile")
	golden(t, "fstab", string(out))
	if !bytes.Equal(FstabWithSwap(out, "/swapfile"), out) {
		t.Error("a second entry was added")
	}
}

func TestSysctlPath(t *testing.T) {
	for k, want := range map[string]string{
		"net.ipv4.ip_forward":              "/proc/sys/net/ipv4/ip_forward",
		"net.ipv6.conf.eth0/100.accept_ra": "/proc/sys/net/ipv6/conf/eth0.100/accept_ra",
		"net/ipv6/conf/eth0.100/accept_ra": "/proc/sys/net/ipv6/conf/eth0.100/accept_ra",
		"kernel.yama.ptrace_scope":         "/proc/sys/kernel/yama/ptrace_scope",
	} {
		if got := sysctlPath(k); got != want {
			t.Errorf("%s: %s, want %s", k, got, want)
		}
	}
}
