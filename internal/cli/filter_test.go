package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeLog(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth.log")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFilterTest(t *testing.T) {
	log := writeLog(t,
		"Nov 21 05:42:36 vps sshd[1]: Invalid user admin from 203.0.113.9 port 5555",
		"Nov 21 05:42:36 vps sshd[1]: Failed password for invalid user admin from 203.0.113.9 port 5555 ssh2",
		"Nov 21 05:42:37 vps sshd[2]: Failed password for root from bad.example port 5555 ssh2",
		"Nov 21 05:42:38 vps sshd[3]: Accepted publickey for deploy from 198.51.100.1 port 5555 ssh2: ED25519 SHA256:x",
		"Nov 21 05:42:39 vps CRON[4]: pam_unix(cron:session): session opened for user root",
		"Nov 21 05:42:40 vps sshd[5]: Failed password for invalid user \x1b[2J from 203.0.113.10 port 5555 ssh2",
		strings.Repeat("x", 2<<20),
		"Nov 21 05:42:41 vps sshd[6]: Connection closed by 203.0.113.11 port 5555 [preauth]",
	)
	var out, errb bytes.Buffer
	if code := Main([]string{"filter", "test", "sshd", log, "-v"}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"Lines:     8: 3 matched, 2 ignored, 2 missed, 1 too long (skipped)",
		"Failures:  3 (3 attempts): 2 attributed to 1 addresses, 1 unattributable",
		"Logins:    1 accepted",
		"203.0.113.9 ", "unattributable(bad.example)",
		"lines/s",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "\x1b") {
		t.Errorf("escape sequence reached the output:\n%q", got)
	}

	// ddos mode, JSON, flags before the operands.
	out.Reset()
	if code := Main([]string{"filter", "test", "--json", "--mode", "ddos", "sshd", log}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var s filterSummary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if s.Mode != "ddos" || s.Matched != 4 || s.Kinds["preauth-close"] != 1 || s.LinesPerSecond <= 0 {
		t.Errorf("summary %+v", s)
	}
}

func TestFilterTestCustom(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "moat.yaml")
	os.WriteFile(cfg, []byte(`guard:
  filters:
    myapp:
      regex:
        - '.*myapp: login failed for (?P<user>\S+) from <HOST>'
      ignore:
        - '.* from 192\.0\.2\.1'
`), 0o600)
	log := writeLog(t,
		"2026-11-21T05:42:36Z vps myapp: login failed for bob from 203.0.113.9",
		"2026-11-21T05:42:36Z vps myapp: login failed for bob from 192.0.2.1",
		"2026-11-21T05:42:36Z vps myapp: started")
	var out, errb bytes.Buffer
	if code := Main([]string{"filter", "test", "-c", cfg, "myapp", log, "--json"}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var s filterSummary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.Matched != 1 || s.Ignored != 1 || s.Missed != 1 || s.Attributed != 1 {
		t.Errorf("summary %+v", s)
	}

	// A filter under guard.filters shadows a built-in of its name, as in
	// moat run.
	os.WriteFile(cfg, []byte(`guard:
  filters:
    sshd:
      regex: ['.*myapp: login failed for \S+ from <HOST>']
`), 0o600)
	out.Reset()
	if code := Main([]string{"filter", "test", "-c", cfg, "sshd", log, "--json"}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s = filterSummary{}
	if err := json.Unmarshal(out.Bytes(), &s); err != nil || s.Matched != 2 {
		t.Errorf("custom sshd: %+v %v", s, err)
	}
}

func TestFilterTestErrors(t *testing.T) {
	log := writeLog(t, "x")
	missing := filepath.Join(t.TempDir(), "none.yaml")
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"filter"}, ExitUsage},
		{[]string{"filter", "test", "sshd"}, ExitUsage},
		{[]string{"filter", "test", "sshd", log, "extra"}, ExitUsage},
		{[]string{"filter", "test", "--mode", "paranoid", "sshd", log}, ExitUsage},
		{[]string{"filter", "test", "-c", missing, "nope", log}, ExitUsage},
		{[]string{"filter", "test", "sshd", filepath.Join(t.TempDir(), "none.log")}, ExitRuntime},
	} {
		var out, errb bytes.Buffer
		if code := Main(tc.args, nil, &out, &errb); code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, errb.String())
		}
	}
}
