package gateway

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/lab"
)

// TestHtpasswdFromApache is differential: entries written by the real
// htpasswd (apache2-utils) in every scheme it offers are read as Apache
// reads them: the right password matches, a wrong one, a prefix and an
// extension do not; the schemes moat refuses are refused with the fix.
func TestHtpasswdFromApache(t *testing.T) {
	lab.RequireTool(t, "htpasswd")
	passwords := []string{"correct horse", "", "x", "ünïcødé pässwörd", strings.Repeat("long", 20), "with:colon$dollar"}
	for _, scheme := range []struct{ flag, name string }{{"-m", "apr1"}, {"-s", "sha"}, {"-B", "bcrypt"}, {"-2", "shacrypt"}, {"-5", "shacrypt"}} {
		for i, pw := range passwords {
			if scheme.flag == "-B" && len(pw) > 72 {
				continue // bcrypt reads 72 bytes; htpasswd refuses more
			}
			args := []string{"-nb", scheme.flag}
			if scheme.flag == "-B" {
				args = append(args, "-C", "4")
			}
			if scheme.flag == "-5" && i%2 == 1 {
				args = append(args, "-r", "1234") // rounds= in the entry
			}
			out, err := exec.Command("htpasswd", append(args, "user", pw)...).Output()
			if err != nil {
				t.Fatalf("htpasswd %v: %v", args, err)
			}
			h, err := parseHtpasswd(out)
			if err != nil {
				t.Fatalf("%s #%d: %q refused: %v", scheme.name, i, out, err)
			}
			c := h.users["user"]
			if c.scheme != scheme.name {
				t.Errorf("%s #%d: read as %s", scheme.name, i, c.scheme)
			}
			if (len(h.weak) == 1) != (scheme.name != "bcrypt") {
				t.Errorf("%s: weak = %v", scheme.name, h.weak)
			}
			if !c.verify([]byte(pw)) {
				t.Errorf("%s #%d: the right password %q does not match %q", scheme.name, i, pw, out)
			}
			for _, wrong := range []string{pw + "x", "x" + pw, strings.ToUpper(pw) + "X"} {
				if c.verify([]byte(wrong)) {
					t.Errorf("%s #%d: wrong password %q matches", scheme.name, i, wrong)
				}
			}
			if len(pw) > 1 && c.verify([]byte(pw[:len(pw)-1])) {
				t.Errorf("%s #%d: a prefix matches", scheme.name, i)
			}
			// And htpasswd itself agrees on what matched (-v).
			file := filepath.Join(t.TempDir(), "h")
			os.WriteFile(file, out, 0o600)
			if err := exec.Command("htpasswd", "-vb", file, "user", pw).Run(); err != nil {
				t.Fatalf("htpasswd -v disagrees on its own entry: %v", err)
			}
		}
	}
	for _, flag := range []string{"-d", "-p"} {
		out, err := exec.Command("htpasswd", "-nb", flag, "user", "secret").Output()
		if err != nil {
			t.Fatalf("htpasswd %s: %v", flag, err)
		}
		if _, err := parseHtpasswd(out); err == nil || !strings.Contains(err.Error(), "htpasswd -B") {
			t.Errorf("htpasswd %s entry %q: %v; want refused, recommending htpasswd -B", flag, bytes.TrimSpace(out), err)
		}
	}
}

// TestHtpasswdWeakWarns: a file from nginx ($apr1$) loads, with a warning
// naming the users and the fix, which config check shows (through
// internal/preflight, which records the gateway's warnings).
func TestHtpasswdWeakWarns(t *testing.T) {
	file := filepath.Join(t.TempDir(), "h")
	os.WriteFile(file, []byte("alice:$apr1$zYe3sPXc$kV3a0O/ULVFAW58UxU7rB.\nbob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"), 0o600)
	var logs bytes.Buffer
	g := &Gateway{log: slog.New(slog.NewTextHandler(&logs, nil)), bcryptSlots: make(chan struct{}, 1), now: monoNow, metrics: newMetrics(nil)}
	b, err := newBasicAuth(&BasicAuth{Htpasswd: file, Realm: "x"}, g.bcryptSlots, g.now)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(b.weak, ",") != "alice,bob" && strings.Join(b.weak, ",") != "bob,alice" {
		t.Errorf("weak users %v", b.weak)
	}
	if !b.users["bob"].verify([]byte("password")) {
		t.Error("{SHA} of password does not match")
	}
	if b.dummy.scheme != "apr1" {
		t.Errorf("no bcrypt in the file, yet the unknown-user dummy is %s: a wrong name would be slower than a wrong password", b.dummy.scheme)
	}
	if b.dummy.verify([]byte("")) {
		t.Error("dummy matches the empty password")
	}
}
