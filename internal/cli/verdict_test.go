package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestOneVerdict attacks "one validation path": for configs that are
// broken in ways only the host shows (or across sections), `moat config
// check`, `moat run` and `moat gateway check|serve` must give the same exit code
// and the same words. Every config here fails, so run never starts.
func TestOneVerdict(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, []byte("x"), 0o600)
	writable := filepath.Join(dir, "app.log")
	os.WriteFile(writable, nil, 0o666)
	os.Chmod(writable, 0o666)
	// An ACME site: its storage in dir, not under /var/lib/moat.
	gw := func(extra string) string {
		return "gateway:\n  http: 127.0.0.1:0\n  https: 127.0.0.1:0\n  acme:\n    storage: " + dir + "/certs\n" + extra +
			"  sites:\n    - host: app.example.com\n      routes:\n        - upstream: http://127.0.0.1:3000\n"
	}
	cases := []struct {
		name, yaml string
		want       string // in every verdict
		gateway    bool
	}{
		{"geo database missing", "firewall:\n  geo:\n    database: " + dir + "/none.mmdb\n", "firewall.geo.database: open geo database", false},
		{"geo database missing, gateway", "firewall:\n  geo:\n    database: " + dir + "/none.mmdb\n" + gw(""), "firewall.geo.database: open geo database", true},
		{"metrics on a private address, no vpn", "alerts:\n  metrics: 10.1.2.3:9469\n", "alerts.metrics: metrics must bind to loopback or an address in vpn.ranges, not 10.1.2.3", false},
		{"metrics outside vpn.ranges", "vpn:\n  ranges: [100.64.0.0/10]\nalerts:\n  metrics: 192.168.1.5:9469\n", "not 192.168.1.5", false},
		{"access log directory under a file", gw("  access_log: " + notDir + "/sub/access.log\n"), "gateway.access_log: " + notDir + " is not a directory", true},
		{"htpasswd missing", strings.Replace(gw(""), "        - upstream: http://127.0.0.1:3000\n", "        - upstream: http://127.0.0.1:3000\n          basic_auth:\n            htpasswd: "+dir+"/none.htpasswd\n", 1), "none.htpasswd", true},
		{"jail without a log source", "guard:\n  jails:\n    nginx-http-auth: {}\n", "no log source: set guard.jails.nginx-http-auth.paths or journal", false},
		{"a log anyone can write, and an error", "guard:\n  jails:\n    app:\n      filter: sshd\n      paths: [" + writable + "]\nfirewall:\n  geo:\n    database: " + dir + "/none.mmdb\n", "warning: guard.jails.app.paths[0]: a local user can write", false},
		{"missing file", "", "not found", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "moat.yaml")
			if tc.name != "missing file" {
				if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			state := t.TempDir()
			verdicts := map[string][]string{
				"config check": {"config", "check", path},
				"run":          {"run", "-c", path, "--state", state, "--socket", filepath.Join(state, "sock")},
			}
			if tc.gateway {
				verdicts["gateway check"] = []string{"gateway", "check", "-c", path}
				verdicts["gateway serve"] = []string{"gateway", "serve", "-c", path}
			}
			var first []string
			var firstName string
			for _, name := range slices.Sorted(mapKeys(verdicts)) {
				var out, errb bytes.Buffer
				code := Main(verdicts[name], nil, &out, &errb)
				if code != ExitUsage {
					t.Errorf("%s: exit %d, want %d\nstderr: %s", name, code, ExitUsage, errb.String())
				}
				lines := placed(errb.String(), path)
				if !strings.Contains(strings.Join(lines, "\n"), tc.want) {
					t.Errorf("%s: %q not said:\n%s", name, tc.want, errb.String())
				}
				if first == nil {
					first, firstName = lines, name
					continue
				}
				if !slices.Equal(lines, first) {
					t.Errorf("verdicts differ:\n%s:\n  %s\n%s:\n  %s", firstName, strings.Join(first, "\n  "), name, strings.Join(lines, "\n  "))
				}
			}
		})
	}
}

// placed returns the lines of out that name the config (errors and
// warnings at file:line:col), without a command's own prefix; JSON log
// lines are read for their message.
func placed(out, path string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		var rec struct{ Msg string }
		if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &rec) == nil {
			l = rec.Msg
		}
		if i := strings.Index(l, path); i >= 0 && !strings.Contains(l, "is not valid") {
			lines = append(lines, l[i:])
		}
	}
	return lines
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestConfigCheckWarnsWeakHtpasswd: an htpasswd file from nginx ($apr1$)
// is accepted, and config check says to recreate it with bcrypt.
func TestConfigCheckWarnsWeakHtpasswd(t *testing.T) {
	dir := t.TempDir()
	ht := filepath.Join(dir, "users")
	os.WriteFile(ht, []byte("alice:$apr1$zYe3sPXc$kV3a0O/ULVFAW58UxU7rB.\n"), 0o600)
	path := filepath.Join(dir, "moat.yaml")
	os.WriteFile(path, []byte("gateway:\n  http: 127.0.0.1:0\n  https: 127.0.0.1:0\n  acme:\n    storage: "+dir+"/certs\n  sites:\n    - host: app.example.com\n      routes:\n        - upstream: http://127.0.0.1:3000\n          basic_auth:\n            htpasswd: "+ht+"\n"), 0o600)
	var out, errb bytes.Buffer
	if code := Main([]string{"config", "check", path}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "warning: gateway: htpasswd entries weaker than bcrypt") || !strings.Contains(errb.String(), "htpasswd -B") || !strings.Contains(out.String(), "warning(s) above") {
		t.Errorf("stdout %q\nstderr %q", out.String(), errb.String())
	}
}

// TestMetricsAddressOneRule: `gateway serve --metrics` and alerts.metrics
// are judged by one rule, in the same words.
func TestMetricsAddressOneRule(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	os.WriteFile(a, []byte("alerts:\n  metrics: 192.168.1.5:9469\n"), 0o600)
	g := filepath.Join(dir, "g.yaml")
	os.WriteFile(g, []byte("gateway:\n  http: 127.0.0.1:0\n  https: 127.0.0.1:0\n  acme:\n    storage: "+dir+"/certs\n  sites:\n    - host: app.example.com\n      routes:\n        - upstream: http://127.0.0.1:3000\n"), 0o600)
	var out, e1, e2 bytes.Buffer
	c1 := Main([]string{"config", "check", a}, nil, &out, &e1)
	c2 := Main([]string{"gateway", "serve", "-c", g, "--metrics", "192.168.1.5:9469"}, nil, &out, &e2)
	const words = "metrics must bind to loopback or an address in vpn.ranges, not 192.168.1.5"
	if c1 != ExitUsage || c2 != ExitUsage || !strings.Contains(e1.String(), words) || !strings.Contains(e2.String(), words) {
		t.Errorf("config check: %d %q\ngateway serve: %d %q", c1, e1.String(), c2, e2.String())
	}
}
