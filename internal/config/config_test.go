package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/schema"
)

func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f, true); err != nil {
				t.Fatalf("example does not load:\n%v", err)
			}
		})
	}
}

func TestEmptyIsDefaults(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "---\n", "host:\n"} {
		c, err := Parse("moat.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if c.SSH.Port != 22 || c.SSH.PermitRootLogin != "no" || c.SSH.PasswordAuthentication {
			t.Errorf("%q: defaults not safe: %+v", src, c.SSH)
		}
		if c.Gateway != nil {
			t.Errorf("%q: gateway must be off unless configured", src)
		}
	}
}

func TestMissingDefaultFileIsDefaults(t *testing.T) {
	c, err := Load(filepath.Join(t.TempDir(), "none.yaml"), false)
	if err != nil || c.File != "" {
		t.Fatalf("got %v, %v", c, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml"), true); err == nil {
		t.Fatal("an explicitly named missing file must be an error")
	}
}

func TestErrorsNamePosition(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string // each a substring of one error, in order
	}{
		{"unknown key", "ssh:\n  prot: 22\n", []string{`m.yaml:2:3: ssh.prot: unknown key "prot"; did you mean "port"?`}},
		{"unknown section", "firwall: {}\n", []string{`m.yaml:1:1: firwall: unknown key "firwall"; did you mean "firewall"?`}},
		{"wrong type", "ssh:\n  port: twenty\n", []string{`m.yaml:2:9: ssh.port: expected a port from 1 to 65535, found "twenty"`}},
		{"port range", "ssh:\n  port: 70000\n", []string{`m.yaml:2:9: ssh.port: expected a port from 1 to 65535`}},
		{"bool", "firewall:\n  log_drops: yes\n", []string{`m.yaml:2:14: firewall.log_drops: expected true or false, found "yes"`}},
		{"cidr", "host:\n  admin:\n    sources: [10.0.0.1/8, 300.1.1.1]\n", []string{
			`m.yaml:3:15: host.admin.sources[0]: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?`,
			`m.yaml:3:27: host.admin.sources[1]: expected an address or CIDR`}},
		{"duration", "guard:\n  jails:\n    sshd:\n      bantime: forever\n", []string{`m.yaml:4:16: guard.jails.sshd.bantime: expected a duration like 30s`}},
		{"country", "firewall:\n  geo:\n    mode: deny\n    countries: [DE, XX]\n    database: /x.mmdb\n", []string{`m.yaml:4:21: firewall.geo.countries[1]: expected an ISO 3166-1 alpha-2 country code`}},
		{"port spec", "firewall:\n  public: [80/tcp, 443/sctp]\n", []string{`m.yaml:2:20: firewall.public[1]: unknown protocol "sctp"`}},
		{"duplicate", "ssh:\n  port: 22\n  port: 2222\n", []string{`m.yaml:3:3: ssh.port: duplicate key "port"`}},
		{"validate", "ssh:\n  permit_root_login: yes\n", []string{`m.yaml:2:22: ssh.permit_root_login: expected one of no, prohibit-password, found "yes"`}},
		{"cross section", "ssh:\n  exposure: vpn\nfirewall:\n  public: [22/tcp, 443]\n", []string{`m.yaml:4:12: firewall.public[0]: port 22 is sshd's`}},
		{"nested validate", "gateway:\n  sites:\n    - host: a.example.com\n      routes:\n        - upstream: ftp://x\n          deny: forbid\n", []string{
			`m.yaml:5:21: gateway.sites[0].routes[0].upstream: expected an upstream like`,
			`m.yaml:6:17: gateway.sites[0].routes[0].deny: expected one of notfound, drop, found "forbid" (moat never answers 403`}},
		{"gateway header names", "gateway:\n  strip_headers: [X-Internal-*, 'X Bad']\n  sites:\n    - host: a.example.com\n      routes:\n        - upstream: http://127.0.0.1:1\n          pass_headers: ['Server Timing']\n", []string{
			`m.yaml:2:33: gateway.strip_headers[1]: expected a header name like X-Internal-Id, or a prefix like X-Internal-*, found "X Bad"`,
			`m.yaml:7:26: gateway.sites[0].routes[0].pass_headers[0]: expected a header name like Server-Timing`}},
		{"syntax", "ssh:\n  port: [22\n", []string{`m.yaml:1:1: invalid YAML: did not find expected`}},
		{"list expected", "firewall:\n  public: 443\n", []string{`m.yaml:2:11: firewall.public: expected a list, found 443`}},
		{"regex", "guard:\n  filters:\n    x:\n      regex: ['fail from (<HOST>']\n", []string{`guard.filters.x: filter x: regex[0]: invalid regular expression`}},
		{"mode", "guard:\n  jails:\n    sshd:\n      mode: extra\n    web:\n      filter: nginx-http-auth\n      mode: turbo\n      source: file\n      paths: [/x]\n", []string{`guard.jails.web.mode: filter nginx-http-auth has modes`}},
		{"filter", "guard:\n  jails:\n    web:\n      filter: apache\n      source: file\n      paths: [/x]\n", []string{`guard.jails.web.filter: unknown filter "apache"`}},
		{"firewall mode", "firewall:\n  mode: bans_only\n", []string{`m.yaml:2:9: firewall.mode: expected full or bans-only, found "bans_only"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("m.yaml", []byte(tc.src))
			if err == nil {
				t.Fatal("no error")
			}
			var errs schema.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("not schema.Errors: %T %v", err, err)
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d:\n got %s\nwant %s", i, errs[i], w)
				}
			}
		})
	}
}

func TestPathPrecedence(t *testing.T) {
	t.Setenv(EnvPath, "/from/env.yaml")
	if p := Path("/flag.yaml"); p != "/flag.yaml" {
		t.Errorf("flag: %s", p)
	}
	if p := Path(""); p != "/from/env.yaml" {
		t.Errorf("env: %s", p)
	}
	os.Unsetenv(EnvPath)
	if p := Path(""); p != DefaultPath {
		t.Errorf("default: %s", p)
	}
}

// TestFail2banHabitsInMoatYAML checks the habit hints against moat's real
// sections (internal/schema's table test uses their shape): if a key is
// renamed in internal/jail, the hint must follow.
func TestFail2banHabitsInMoatYAML(t *testing.T) {
	jail := func(line string) string {
		return "guard:\n  jails:\n    sshd:\n      " + line + "\n"
	}
	for in, want := range map[string]string{
		jail("logpath: /var/log/auth.log"):    `did you mean "paths"?`,
		jail("ignoreip: 127.0.0.1/8"):         "guard.ignore",
		"guard:\n  ignoreip: [10.0.0.1]\n":    `did you mean "ignore"?`,
		jail("port: ssh"):                     "a jail takes no port",
		jail("bantime = -1"):                  `"bantime: permanent"`,
		jail("bantime: -1"):                   "bantime: permanent",
		jail("backend: systemd"):              `did you mean "source"?`,
		jail("banaction: nftables"):           "banaction has no equivalent",
		jail("findTime: 5m"):                  `did you mean "findtime"?`,
		"guard:\n  maxretry: 3\n":             "guard.jails.NAME.maxretry",
		jail("filter: sshd[mode=aggressive]"): "write filter: sshd and mode: aggressive",
	} {
		_, err := Parse("moat.yaml", []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
	c, err := Parse("moat.yaml", []byte(jail("bantime: permanent")))
	if err != nil {
		t.Fatalf("bantime: permanent: %v", err)
	}
	if c.Guard.Jails["sshd"].BanTime != schema.Permanent {
		t.Errorf("bantime %v", c.Guard.Jails["sshd"].BanTime)
	}
	if _, err := Parse("moat.yaml", []byte("gateway:\n  limits:\n    header_timeout: permanent\n")); err == nil {
		t.Error("permanent accepted for a timeout")
	}
}

// TestSameIgnoresPositions: a quick edit moves the lines below it; the
// configs it compares must still be the same where nothing else changed.
func TestSameIgnoresPositions(t *testing.T) {
	a, err := Parse("x.yaml", []byte("ssh:\n  port: 22\nfirewall:\n  public: [80/tcp]\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("x.yaml", []byte("# a comment\n\nssh:\n  port: 22\n\nfirewall:\n  public: [80/tcp]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !Same(a, b) {
		t.Error("moved lines made two equal configs differ")
	}
	c, _ := Parse("x.yaml", []byte("ssh:\n  port: 2222\nfirewall:\n  public: [80/tcp]\n"))
	if Same(a, c) {
		t.Error("a changed port went unnoticed")
	}
}
