package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/lab"
)

const firewallYAML = `
host:
  admin:
    sources: [203.0.113.7, "2001:db8:1::/64"]
ssh:
  port: 2222
  exposure: vpn+public
  rate_limit: 5/minute
firewall:
  public_interface: eth0
  public: [80, 443, 51820/udp]
  vpn: [5432]
  log_drops: true
  ban:
    ipv6_prefix: 56
vpn:
  interfaces: [wg0]
  ranges: [10.8.0.0/24]
`

func TestFirewallSpec(t *testing.T) {
	c, err := config.Parse("moat.yaml", []byte(firewallYAML))
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	s, _, ok := firewallSpec(&env{stderr: &stderr}, c, host.New("../audit/testdata/hosts/clean"))
	if !ok {
		t.Fatalf("spec: %s", stderr.String())
	}
	if s.Source != "moat.yaml" || s.PublicInterface != "eth0" || s.SSH.Port != 2222 || s.SSH.Exposure != "vpn+public" ||
		s.SSH.RateLimit.N != 5 || len(s.Admin) != 2 || s.BanIPv6Prefix != 56 || !s.LogDrops || len(s.VPNPorts) != 1 {
		t.Errorf("spec: %+v", s)
	}
	table := firewall.Render(&s)
	for _, want := range []string{`tcp dport 2222 ip saddr 203.0.113.7 accept comment "ssh: admin"`, `iifname "wg0" tcp dport 2222 accept`, "ffff:ffff:ffff:ff00::"} {
		if !strings.Contains(table, want) {
			t.Errorf("rendered table lacks %q", want)
		}
	}

	// Without public_interface, the default route's interface.
	c.Firewall.PublicInterface = ""
	s, _, ok = firewallSpec(&env{stderr: &stderr}, c, host.New("../audit/testdata/hosts/clean"))
	if !ok || s.PublicInterface != "eth0" {
		t.Errorf("public interface from the default route: %q %s", s.PublicInterface, stderr.String())
	}
}

func TestLayerUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"plan", "nosuchlayer"}, nil, &out, &errb); code != ExitUsage || !strings.Contains(errb.String(), "Layers: firewall") {
		t.Errorf("plan without a layer: %d %s", code, errb.String())
	}
	errb.Reset()
	if code := Main([]string{"apply", "firewall"}, nil, &out, &errb); code != ExitUsage || !strings.Contains(errb.String(), "--yes") {
		t.Errorf("apply without --yes: %d %s", code, errb.String())
	}
}

// TestFirewallCommands runs plan, apply and status as a user would, inside
// a lab host standing in for the vps.
func TestFirewallCommands(t *testing.T) {
	lab.RequireTool(t, "nft", "sshd")
	l := lab.New(t)
	vps, admin := l.Host("vps"), l.Host("admin")
	other := l.Host("other")
	l.Link(vps, "eth0", other, "eth0", []string{"198.51.100.1/24"}, []string{"198.51.100.2/24"})
	l.Link(vps, "wg0", admin, "wg0", []string{"10.8.0.1/24"}, []string{"10.8.0.2/24"})
	vps.StartSSHD(t, lab.SSHDOptions{}) // port 22: the lockout check finds it

	dir := t.TempDir()
	cfg := filepath.Join(dir, "moat.yaml")
	write := func(yaml string) {
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(strings.Replace(firewallYAML, "port: 2222", "port: 22", 1))
	t.Setenv("SSH_CONNECTION", "10.8.0.2 50000 10.8.0.1 22")
	root := filepath.Join(dir, "root")
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := 0
		if err := vps.Do(func() error {
			code = Main(args, nil, &out, &errb)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errb.String()
	}

	code, out, errs := run("plan", "firewall", "-c", cfg)
	if code != ExitOK || !strings.Contains(out, "table inet moat is not loaded") || !strings.Contains(out, "open    your session (SSH_CONNECTION)") {
		t.Fatalf("plan: %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = run("apply", "firewall", "--yes", "-c", cfg, "--root", root)
	if code != ExitOK || !strings.Contains(out, "table inet moat loaded in one transaction") {
		t.Fatalf("apply: %d\n%s\n%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(root, firewall.BootPath)); err != nil {
		t.Errorf("boot script: %v", err)
	}
	code, out, _ = run("plan", "firewall", "-c", cfg)
	if code != ExitOK || !strings.Contains(out, "table inet moat: no changes") {
		t.Errorf("plan after apply: %d\n%s", code, out)
	}
	code, out, errs = run("firewall", "status", "--json", "--root", root)
	var st firewall.Status
	if code != ExitOK || json.Unmarshal([]byte(out), &st) != nil || !st.Loaded || !st.Persisted || len(st.Open) == 0 {
		t.Errorf("status: %d %+v\n%s\n%s", code, st, out, errs)
	}

	// A config that would cut the admin off: sshd is on 22, not 2200.
	write(strings.Replace(firewallYAML, "port: 2222", "port: 2200", 1))
	code, _, errs = run("apply", "firewall", "--yes", "-c", cfg, "--root", root)
	if code != ExitUsage || !strings.Contains(errs, "locked out") || !strings.Contains(errs, "default deny") {
		t.Errorf("lockout: %d\n%s", code, errs)
	}
	// vpn exposure while the VPN interface is not there.
	write(strings.NewReplacer("port: 2222", "port: 22", "vpn+public", "vpn", "[wg0]", "[wg7]").Replace(firewallYAML))
	code, _, errs = run("apply", "firewall", "--yes", "-c", cfg, "--root", root)
	if code != ExitUsage || !strings.Contains(errs, "no VPN interface is up") {
		t.Errorf("vpn down: %d\n%s", code, errs)
	}
}
