package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/lab"
)

// envAsMoat makes the test binary act as moat itself: the watchdog a
// transaction starts is os.Executable(), which in a test is this binary.
const envAsMoat = "MOAT_TEST_AS_MOAT"

func TestMain(m *testing.M) {
	if os.Getenv(envAsMoat) == "1" {
		os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const changeYAML = `
host:
  admin:
    user: deploy
    keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmE3MtVoBHX3dIGZXUb6gU8Z3c3fFqQ0sSPuV1Wqv2F deploy@laptop"]
  swap:
    size: 16MiB
vpn:
  interfaces: [wg0]
  ranges: [10.8.0.0/24]
ssh:
  port: 2222
  exposure: vpn+public
firewall:
  enabled: false
`

// changeFixture copies the harden fixture host to a temporary root.
func changeFixture(t testing.TB) (root, cfg string) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "root")
	src := "../harden/testdata/hosts/debian12"
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(root, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "moat.yaml")
	if err := os.WriteFile(cfg, []byte(changeYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	return root, cfg
}

func hashTree(t testing.TB, root string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "var/lib/moat" {
			return filepath.SkipDir
		}
		if rel == "var" || rel == "var/lib" {
			return nil
		}
		fi, _ := os.Lstat(p)
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%s %v %d:%d", rel, fi.Mode(), st.Uid, st.Gid)
		if fi.Mode().IsRegular() {
			f, _ := os.Open(p)
			h := sha256.New()
			io.Copy(h, f)
			f.Close()
			b.WriteString(" " + hex.EncodeToString(h.Sum(nil)))
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

func moat(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

// TestChangeUnderRoot runs plan, apply (rolled back for want of a
// confirm), apply --yes and rollback against a fixture tree, checking the
// tree byte for byte after each rollback.
func TestChangeUnderRoot(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "sshd", "useradd", "fallocate", "mkswap")
	t.Setenv(envAsMoat, "1")
	t.Setenv("SSH_CONNECTION", "")
	t.Setenv("MOAT_TEST_MIN_WINDOW", "1s")
	root, cfg := changeFixture(t)
	before := hashTree(t, root)

	code, out, errs := moat("plan", "-c", cfg, "--root", root)
	if code != ExitOK || !strings.Contains(out, "== sshd: changes") || !strings.Contains(out, "+Port 2222") || strings.Contains(out, "apply would refuse") {
		t.Fatalf("plan: %d\n%s\n%s", code, out, errs)
	}
	if got := hashTree(t, root); got != before {
		t.Fatal("plan changed the tree")
	}

	code, out, errs = moat("apply", "-c", cfg, "--root", root, "--confirm", "1500ms")
	if code != ExitRollback || !strings.Contains(errs, "no confirm within 1.5s") {
		t.Fatalf("unconfirmed apply: exit %d\n%s\n%s", code, out, errs)
	}
	if got := hashTree(t, root); got != before {
		t.Fatalf("not restored byte for byte:\n%s", diffLines(before, got))
	}

	code, out, errs = moat("apply", "-c", cfg, "--root", root, "--yes")
	if code != ExitOK || !strings.Contains(out, "applied and confirmed") {
		t.Fatalf("apply --yes: %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = moat("plan", "-c", cfg, "--root", root)
	if code != ExitOK || strings.Contains(out, ": changes") {
		t.Errorf("plan after apply --yes still has changes:\n%s", out)
	}
	code, out, errs = moat("change", "list", "--root", root)
	if code != ExitOK || !strings.Contains(out, "confirmed") || !strings.Contains(out, "rolled-back") {
		t.Errorf("change list: %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = moat("rollback", "--root", root)
	if code != ExitOK {
		t.Fatalf("rollback: %d\n%s\n%s", code, out, errs)
	}
	if got := hashTree(t, root); got != before {
		t.Fatalf("rollback of the confirmed change: not restored:\n%s", diffLines(before, got))
	}
}

// TestConfirmNeedsARealSSHSession: SSH_CONNECTION is the user's to set.
// A process with no sshd above it (this test, like a tmux server that
// outlived its login) cannot confirm, whatever its environment claims —
// the applying session's, another port's, the new port's; the change
// stays waiting, and moat rollback ends it.
func TestConfirmNeedsARealSSHSession(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "sshd", "useradd", "fallocate", "mkswap")
	t.Setenv(envAsMoat, "1")
	root, cfg := changeFixture(t)
	before := hashTree(t, root)
	t.Setenv("SSH_CONNECTION", "198.51.100.7 40000 203.0.113.10 22")
	var wg sync.WaitGroup
	var code int
	var out, errs string
	wg.Go(func() { code, out, errs = moat("apply", "-c", cfg, "--root", root, "--confirm", "30s") })
	store := change.NewStore(root)
	var id string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if p, _ := store.Pending(); p != "" {
			if m, _ := store.Load(p); m != nil && m.State == change.Waiting {
				id = p
				break
			}
		}
	}
	if id == "" {
		wg.Wait()
		t.Fatalf("no change waiting: %d\n%s\n%s", code, out, errs)
	}
	for _, sess := range []string{"198.51.100.7 40000 203.0.113.10 22", "198.51.100.7 40001 203.0.113.10 22", "198.51.100.7 40002 203.0.113.10 2222", ""} {
		t.Setenv("SSH_CONNECTION", sess)
		c, o, e := moat("confirm", "--root", root, id)
		if c != ExitUsage || !strings.Contains(e, "not running inside an SSH session") {
			t.Errorf("confirm claiming %q: %d %s %s", sess, c, o, e)
		}
	}
	if m, _ := store.Load(id); m.State != change.Waiting {
		t.Fatalf("state %s after refused confirms", m.State)
	}
	// Another change is refused while this one waits, naming it.
	if c, _, e := moat("apply", "-c", cfg, "--root", root, "--yes"); c != ExitUsage || !strings.Contains(e, id) {
		t.Errorf("second apply: %d %s", c, e)
	}
	if c, o, e := moat("rollback", "--root", root, id); c != ExitOK {
		t.Fatalf("rollback: %d %s %s", c, o, e)
	}
	wg.Wait()
	if code != ExitRollback || !strings.Contains(out, "NEW ssh connection") {
		t.Errorf("apply: %d\n%s\n%s", code, out, errs)
	}
	if got := hashTree(t, root); got != before {
		t.Fatalf("not restored:\n%s", diffLines(before, got))
	}
}

// TestConfirmWindowBounds: outside 30s..30m, apply refuses with exit 2
// and names the range; nothing is planned or changed.
func TestConfirmWindowBounds(t *testing.T) {
	root, cfg := changeFixture(t)
	before := hashTree(t, root)
	for _, w := range []string{"0s", "-5s", "29s", "31m", "720h"} {
		code, _, errs := moat("apply", "-c", cfg, "--root", root, "--confirm", w)
		if code != ExitUsage || !strings.Contains(errs, "between 30s and 30m") {
			t.Errorf("--confirm %s: exit %d: %s", w, code, errs)
		}
	}
	if got := hashTree(t, root); got != before {
		t.Fatal("a refused apply changed the tree")
	}
}

// TestApplyFirewallRefusedWhilePending: moat apply firewall would load
// and persist a table the pending change's rollback then deletes.
func TestApplyFirewallRefusedWhilePending(t *testing.T) {
	lab.RequireRoot(t)
	root, cfg := changeFixture(t)
	store := change.NewStore(root)
	m, err := store.Apply(t.Context(), []*change.Step{{Layer: "x", Files: []change.File{{Path: "/etc/x", Data: []byte("x")}}}},
		change.Options{Timer: noTimer{}, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	before := hashTree(t, root)
	code, out, errs := moat("apply", "firewall", "--yes", "-c", cfg, "--root", root)
	if code != ExitUsage || !strings.Contains(errs, m.ID) || !strings.Contains(errs, "nothing was changed") {
		t.Fatalf("apply firewall while %s waits: %d\n%s\n%s", m.ID, code, out, errs)
	}
	if got := hashTree(t, root); got != before {
		t.Fatal("the refused apply changed the tree")
	}
}

// noTimer arms nothing.
type noTimer struct{}

func (noTimer) Arm(context.Context, *change.Store, *change.Manifest) (change.TimerInfo, error) {
	return change.TimerInfo{Kind: "test"}, nil
}

func TestApplyRefusesAndChangesNothing(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "sshd")
	root, cfg := changeFixture(t)
	os.WriteFile(cfg, []byte(strings.Replace(changeYAML, "exposure: vpn+public", "exposure: vpn", 1)), 0o600)
	t.Setenv("SSH_CONNECTION", "198.51.100.7 40000 203.0.113.10 22")
	before := hashTree(t, root)
	code, out, errs := moat("apply", "-c", cfg, "--root", root)
	if code != ExitUsage || !strings.Contains(errs, "no login over the VPN has been seen") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	_, out, _ = moat("plan", "-c", cfg, "--root", root)
	if !strings.Contains(out, "apply would refuse") {
		t.Errorf("plan does not show the refusal:\n%s", out)
	}
	if got := hashTree(t, root); got != before {
		t.Fatal("a refused apply changed the tree")
	}
	if code, _, errs := moat("plan", "nosuchlayer"); code != ExitUsage || !strings.Contains(errs, "unknown layer") {
		t.Errorf("plan nosuchlayer: %d %s", code, errs)
	}
}

func TestFlagsFirst(t *testing.T) {
	f := newFlags(&env{stderr: io.Discard}, "x", "x").withRoot()
	f.Bool("yes", false, "")
	got := strings.Join(flagsFirst(f, []string{"ID", "--root", "/r", "--yes", "-c=x", "extra", "--", "-z"}), " ")
	if want := "--root /r --yes -c=x -- ID extra -z"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	in := map[string]bool{}
	for _, l := range al {
		in[l] = true
	}
	var out []string
	for _, l := range bl {
		if !in[l] {
			out = append(out, "+ "+l)
		}
	}
	in = map[string]bool{}
	for _, l := range bl {
		in[l] = true
	}
	for _, l := range al {
		if !in[l] {
			out = append(out, "- "+l)
		}
	}
	return strings.Join(out, "\n")
}
