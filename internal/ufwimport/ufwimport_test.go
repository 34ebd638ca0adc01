package ufwimport

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/lab"
)

// commands are the rules written to the scratch ufw; testdata holds what
// ufw 0.36 wrote for them, so that the readers are tested without root.
var commands = [][]string{
	{"allow", "8080/tcp"},
	{"limit", "OpenSSH"},
	{"allow", "from", "10.0.0.0/8", "to", "any", "port", "5432", "proto", "tcp", "comment", "db"},
	{"allow", "in", "on", "wg0", "to", "any", "port", "9100"},
	{"route", "allow", "in", "on", "eth0", "out", "on", "docker0", "to", "any", "port", "80", "proto", "tcp"},
	{"deny", "23"},
	{"allow", "Nginx Full"},
	{"allow", "60000:61000/udp"},
	{"allow", "from", "2001:db8::/32", "to", "any", "port", "22", "proto", "tcp"},
	{"reject", "out", "25"},
}

func parse(t *testing.T, in Input) *config.Config {
	t.Helper()
	y := Translate(in)
	c, err := config.Parse("ufw.yaml", []byte(y))
	if err != nil {
		t.Fatalf("moat config check refuses the import: %v\n%s", err, y)
	}
	return c
}

func specs(ps []firewall.AllowRule) string {
	var b strings.Builder
	for _, a := range ps {
		b.WriteString("[")
		for _, p := range a.Ports {
			b.WriteString(p.String() + " ")
		}
		b.WriteString("from ")
		for _, s := range a.Sources {
			b.WriteString(s.String() + " ")
		}
		b.WriteString("]")
	}
	return b.String()
}

// wantFirewall checks the firewall the commands above must become.
func wantFirewall(t *testing.T, c *config.Config, y string) {
	t.Helper()
	var pub, vpn []string
	for _, p := range c.Firewall.Public {
		pub = append(pub, p.String())
	}
	for _, p := range c.Firewall.VPN {
		vpn = append(vpn, p.String())
	}
	if got, want := strings.Join(pub, " "), "8080/tcp 80/tcp 443/tcp 60000-61000/udp"; got != want {
		t.Errorf("public %s, want %s (SSH is moat's own, 23 is dropped anyway)\n%s", got, want, y)
	}
	if got, want := strings.Join(vpn, " "), "9100/tcp 9100/udp"; got != want {
		t.Errorf("vpn %s, want %s", got, want)
	}
	if !reflect.DeepEqual(c.VPN.Interfaces, []string{"wg0"}) {
		t.Errorf("vpn.interfaces %v, want [wg0]", c.VPN.Interfaces)
	}
	if got, want := specs(c.Firewall.Allow), "[5432/tcp from 10.0.0.0/8 ][22/tcp from 2001:db8::/32 ]"; got != want {
		t.Errorf("allow %s, want %s", got, want)
	}
	for _, w := range []string{"# db", "routed rule", "outbound rule", "limit", "moat drops every port it does not open"} {
		if !strings.Contains(y, w) {
			t.Errorf("import lacks %q:\n%s", w, y)
		}
	}
}

func TestRulesFromUFW(t *testing.T) {
	in, err := ReadHost("testdata/root")
	if err != nil {
		t.Fatal(err)
	}
	wantFirewall(t, parse(t, in), Translate(in))
}

func TestStatusFromUFW(t *testing.T) {
	apps, err := ReadApps("testdata/root/etc/ufw/applications.d")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"status-verbose.txt", "status.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		in, err := ReadFile(f, data, apps)
		if err != nil {
			t.Fatal(err)
		}
		wantFirewall(t, parse(t, in), Translate(in))
	}
}

// TestDifferentialRealUFW writes the rules with the real ufw into a
// scratch root, enables it inside a throwaway network namespace and
// checks that its files and its `ufw status verbose` import alike, to
// what testdata says.
func TestDifferentialRealUFW(t *testing.T) {
	lab.RequireTool(t, "ufw", "dpkg")
	l := lab.New(t)
	h := l.Host("ufw")
	root := t.TempDir()
	out, err := exec.Command("dpkg", "-L", "ufw").Output()
	if err != nil {
		t.Fatalf("dpkg -L ufw: %v", err)
	}
	for _, p := range strings.Split(string(out), "\n") {
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || !(strings.HasPrefix(p, "/etc/") || strings.Contains(p, "/lib/ufw/") || strings.HasPrefix(p, "/usr/share/ufw/")) {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	// The OpenSSH profile comes with openssh-server; Nginx's profile
	// (nginx-common's) is written here as that package ships it.
	data, err := os.ReadFile("/etc/ufw/applications.d/openssh-server")
	lab.Require(t, err == nil, "needs ufw's application profile openssh-server (openssh-server is in scripts/deps.sh)")
	if err := os.WriteFile(filepath.Join(root, "etc/ufw/applications.d/openssh-server"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	nginx, err := os.ReadFile("testdata/root/etc/ufw/applications.d/nginx")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/ufw/applications.d/nginx"), nginx, 0o644); err != nil {
		t.Fatal(err)
	}
	// Start from the package's own files (its postinst copies them to
	// /etc/ufw), whatever this host's ufw holds.
	for _, f := range []string{"user.rules", "user6.rules", "ufw.conf", "before.rules", "before6.rules", "after.rules", "after6.rules", "before.init", "after.init"} {
		data, err := os.ReadFile(filepath.Join(root, "usr/share/ufw", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc/ufw", f), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "lib/ufw/ufw-init")); err != nil {
		_ = os.MkdirAll(filepath.Join(root, "lib"), 0o755)
		_ = os.Symlink(filepath.Join(root, "usr/lib/ufw"), filepath.Join(root, "lib/ufw"))
	}
	ufw := func(args ...string) string {
		return string(h.MustRun(t, "ufw", append([]string{"--rootdir=" + root, "--datadir=" + root}, args...)...))
	}
	for _, c := range commands {
		ufw(c...)
	}
	in, err := ReadHost(root)
	if err != nil {
		t.Fatal(err)
	}
	fromFiles := parse(t, in)
	wantFirewall(t, fromFiles, Translate(in))

	ufw("--force", "enable")
	status := ufw("status", "verbose")
	apps, err := ReadApps(filepath.Join(root, "etc/ufw/applications.d"))
	if err != nil {
		t.Fatal(err)
	}
	sin, err := ReadFile("status", []byte(status), apps)
	if err != nil {
		t.Fatal(err)
	}
	if sin.Active == nil || !*sin.Active {
		t.Fatalf("ufw status says inactive after enable:\n%s", status)
	}
	fromStatus := parse(t, sin)
	if !reflect.DeepEqual(fromFiles.Firewall, fromStatus.Firewall) || !reflect.DeepEqual(fromFiles.VPN, fromStatus.VPN) {
		t.Errorf("the rules files and ufw status verbose import differently:\nfiles:  %+v\nstatus: %+v\n%s", fromFiles.Firewall, fromStatus.Firewall, status)
	}
}

func TestMalformedRulesSayWhere(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"### tuple ### allow tcp 22\n", "line 1: a tuple has 6 to 9 fields"},
		{"\n### tuple ### allow tcp 99999 0.0.0.0/0 any 0.0.0.0/0 in\n", "line 2: port \"99999\""},
		{"### tuple ### accept tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n", "unknown action"},
		{"### tuple ### allow tcp 22 0.0.0.0/0 any example.com in\n", "address \"example.com\""},
		{"### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in comment=zz\n", "hex-encoded"},
		{"### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 sideways\n", "direction"},
	} {
		_, err := ReadRules(strings.NewReader(tc.in), false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
	if _, err := ReadStatus(strings.NewReader("To Action From\n"), nil); err == nil {
		t.Error("status without a Status: line accepted")
	}
}

func TestSSHPortIsMoatsOwn(t *testing.T) {
	rs, err := ReadRules(strings.NewReader("### tuple ### allow tcp 2222 0.0.0.0/0 any 0.0.0.0/0 in\n### tuple ### limit tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, Input{Rules: rs, SSHPort: 2222})
	if c.SSH.Port != 2222 || len(c.Firewall.Public) != 1 || c.Firewall.Public[0].String() != "22/tcp" {
		t.Errorf("ssh.port %d, public %v: want 2222 as sshd's, 22 an ordinary port", c.SSH.Port, c.Firewall.Public)
	}
}
