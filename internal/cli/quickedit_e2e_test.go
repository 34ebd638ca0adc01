package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/change"
)

// TestE2EQuickAllowAppliesThroughTheTransaction: moat allow edits
// moat.yaml, prints the plan and applies it through moat apply's
// transaction — waiting for confirm from a new session — and the port
// is open in the kernel after; an unconfirmed one is rolled back and
// moat.yaml is put back as it was.
func TestE2EQuickAllowAppliesThroughTheTransaction(t *testing.T) {
	x := newE2E(t)
	x.config(`ssh:
  permit_root_login: prohibit-password
firewall:
  public_interface: eth0
  public: [80/tcp]   # web
`, "198.51.100.2")
	pub := vpsPublic + ":22"
	op := x.mustClient(pub, "root", x.rootKey)
	defer op.Close()

	// SSH's own port is refused, with the reason.
	if o, c := x.run(op, "deny", "22/tcp", "-c", x.cfg); c != ExitUsage || !strings.Contains(o, "sshd's") {
		t.Errorf("moat deny 22/tcp: exit %d\n%s", c, o)
	}

	before, err := os.ReadFile(x.cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var out string
	var code int
	go func() {
		defer close(done)
		out, code = x.run(op, "allow", "8080/tcp", "-c", x.cfg, "--confirm", "30s")
	}()
	m := x.waiting(done, &out)
	second := x.mustClient(vpsVPN+":22", "root", x.rootKey)
	defer second.Close()
	if o, c := x.run(second, "confirm", m.ID, "-c", x.cfg); c != 0 {
		t.Fatalf("confirm from a new session: %d %s", c, o)
	}
	<-done
	if code != 0 || !strings.Contains(out, "+  public: [80/tcp, 8080/tcp]   # web") || !strings.Contains(out, "8080") {
		t.Errorf("moat allow: exit %d\n%s", code, out)
	}
	after, _ := os.ReadFile(x.cfg)
	if want := strings.Replace(string(before), "[80/tcp]", "[80/tcp, 8080/tcp]", 1); string(after) != want {
		t.Errorf("moat.yaml after:\n%s\nwant\n%s", after, want)
	}
	rules := string(x.vps.MustRun(t, "nft", "list", "table", "inet", "moat"))
	if !strings.Contains(rules, "8080") {
		t.Errorf("port 8080 is not in table inet moat:\n%s", rules)
	}
	if o, c := x.run(op, "allow", "8080/tcp", "-c", x.cfg); c != 0 || !strings.Contains(o, "already allowed") {
		t.Errorf("allowing it again: exit %d\n%s", c, o)
	}

	// Unconfirmed: rolled back, and moat.yaml says so again.
	before = after
	out, code = x.run(op, "allow", "9090/tcp", "-c", x.cfg, "--confirm", "3s")
	if code != ExitRollback {
		t.Errorf("unconfirmed moat allow: exit %d\n%s", code, out)
	}
	if after, _ := os.ReadFile(x.cfg); string(after) != string(before) {
		t.Errorf("moat.yaml after the rollback:\n%s\nwant it as it was:\n%s", after, before)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if rules = string(x.vps.MustRun(t, "nft", "list", "table", "inet", "moat")); !strings.Contains(rules, "9090") {
			break
		}
	}
	if strings.Contains(rules, "9090") {
		t.Errorf("port 9090 stayed open after the rollback:\n%s", rules)
	}
}

// TestE2EQuickEditKilledInTheWindow: moat allow's apply dies in the
// confirm window (kill -9, SIGTERM, the session's hang-up) or right after
// writing moat.yaml: the timer rolls the host back and moat.yaml with
// it, so the next moat apply has nothing of the unconfirmed edit to
// apply. An operator who edited moat.yaml meanwhile keeps their file,
// and the version before the edit is beside it.
func TestE2EQuickEditKilledInTheWindow(t *testing.T) {
	const window = 8 * time.Second
	cases := []struct {
		name, hold string
		sig        syscall.Signal
		theirs     bool
	}{
		{"waiting/SIGKILL", "", syscall.SIGKILL, false},
		{"waiting/SIGTERM", "", syscall.SIGTERM, false},
		{"waiting/SIGHUP", "", syscall.SIGHUP, false},
		{"config/SIGKILL", "config", syscall.SIGKILL, false},
		{"firewall/SIGKILL", "firewall", syscall.SIGKILL, false},
		{"waiting/SIGKILL/operator-edits", "", syscall.SIGKILL, true},
		{"unconfirmed", "", 0, false},
		{"unconfirmed/operator-edits", "", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := newE2E(t)
			x.config(`ssh:
  permit_root_login: prohibit-password
firewall:
  public_interface: eth0
  public: [80/tcp]   # web
`, "198.51.100.2")
			// The config lives in a checkout, linked from where moat reads it.
			file := filepath.Join(filepath.Dir(x.cfg), "checkout", "moat.yaml")
			os.MkdirAll(filepath.Dir(file), 0o755)
			if err := os.Rename(x.cfg, file); err != nil {
				t.Fatal(err)
			}
			os.Chmod(file, 0o640)
			if err := os.Symlink(file, x.cfg); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(file)
			pub := vpsPublic + ":22"
			op := x.mustClient(pub, "root", x.rootKey)
			defer op.Close()
			hold := filepath.Join(t.TempDir(), "hold")
			env := ""
			if tc.hold != "" {
				env = "MOAT_TEST_HOLD_AFTER=" + tc.hold + " MOAT_TEST_HOLD_FILE=" + hold + " "
			}
			done := make(chan struct{})
			var out string
			var code int
			go func() {
				defer close(done)
				out, code = x.runEnv(op, env, "allow", "8080/tcp", "-c", x.cfg, "--confirm", window.String())
			}()
			var pid int
			if tc.hold != "" {
				pid = x.held(hold, done, &out)
			} else {
				pid = x.waiting(done, &out).Applier
			}
			edited, _ := os.ReadFile(file)
			if !strings.Contains(string(edited), "8080/tcp") {
				t.Fatalf("moat.yaml not edited in the window:\n%s", edited)
			}
			theirs := string(edited) + "# the operator's own line, written in the window\n"
			if tc.theirs {
				tmp := file + ".tmp"
				os.WriteFile(tmp, []byte(theirs), 0o640)
				os.Rename(tmp, file)
			}
			if tc.sig != 0 {
				if err := syscall.Kill(pid, tc.sig); err != nil {
					t.Fatal(err)
				}
				os.Remove(hold)
			}
			m := x.final(x.pendingID(), window+45*time.Second)
			if m.State != change.RolledBack {
				t.Fatalf("state %s", m.State)
			}
			<-done
			t.Logf("moat allow (exit %d) printed:\n%s", code, out)
			// The note is written just after the state.
			note := func() *change.RollbackNote {
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					n, _ := change.NewStore(x.root).LastRollback()
					if n != nil && n.ID == m.ID || time.Now().After(deadline) {
						return n
					}
				}
			}
			if dst, err := os.Readlink(x.cfg); err != nil || dst != file {
				t.Errorf("moat.yaml is no longer a link: %q %v", dst, err)
			}
			if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("moat.yaml mode: %v %v", fi, err)
			}
			now, _ := os.ReadFile(file)
			asides, _ := filepath.Glob(file + change.AsideSuffix + "*")
			if tc.theirs {
				if string(now) != theirs {
					t.Errorf("the operator's moat.yaml was not kept:\n%s", now)
				}
				if len(asides) != 1 {
					t.Fatalf("the version before the edit is not beside moat.yaml: %v", asides)
				}
				if b, _ := os.ReadFile(asides[0]); string(b) != string(before) {
					t.Errorf("%s holds\n%s\nwant\n%s", asides[0], b, before)
				}
				if fi, _ := os.Stat(asides[0]); fi.Mode().Perm() != 0o600 {
					t.Errorf("%s mode %v", asides[0], fi.Mode())
				}
				if n := note(); n == nil || !strings.Contains(n.Reason, asides[0]) {
					t.Errorf("the rollback's note does not say where the version before is: %+v", n)
				}
				if tc.sig == 0 && (!strings.Contains(out, asides[0]) || !strings.Contains(out, "edited since")) {
					t.Errorf("moat allow did not say where the version before is:\n%s", out)
				}
			} else {
				if string(now) != string(before) {
					t.Errorf("moat.yaml after the rollback:\n%s\nwant it as it was:\n%s", now, before)
				}
				if len(asides) != 0 {
					t.Errorf("a version was put aside though nobody edited: %v", asides)
				}
				if n := note(); n == nil || !strings.Contains(n.Reason, "restored as it was before the quick edit") {
					t.Errorf("the rollback's note: %+v", n)
				}
			}
			if tables := string(x.vps.MustRun(t, "nft", "list", "tables")); strings.Contains(tables, "moat") {
				t.Errorf("table inet moat outlived the rollback: %s", tables)
			}
			if err := x.loginSoon(pub, 20*time.Second); err != nil {
				t.Fatalf("no fresh login after the rollback: %v", err)
			}
			// What the next apply would do: nothing of 8080 unless the
			// operator's kept file asks for it.
			plan, c := x.run(op, "plan", "-c", x.cfg)
			if c != 0 {
				t.Fatalf("plan: %d\n%s", c, plan)
			}
			if got := strings.Contains(plan, "8080"); got != tc.theirs {
				t.Errorf("the next plan mentions 8080: %v, want %v\n%s", got, tc.theirs, plan)
			}
		})
	}
}

// TestE2EQuickEditDryRun: --dry-run prints the edit and the plan of the
// edited config, and changes nothing: neither moat.yaml nor the host.
func TestE2EQuickEditDryRun(t *testing.T) {
	x := newE2E(t)
	x.config(`ssh:
  permit_root_login: prohibit-password
firewall:
  public_interface: eth0
  public: [80/tcp]   # web
`, "198.51.100.2")
	before, _ := os.ReadFile(x.cfg)
	tree := x.tree()
	op := x.mustClient(vpsPublic+":22", "root", x.rootKey)
	defer op.Close()
	out, code := x.run(op, "allow", "8080/tcp", "--dry-run", "-c", x.cfg)
	if code != 0 || !strings.Contains(out, "--dry-run: "+x.cfg+" is untouched") ||
		!strings.Contains(out, "== firewall: changes") || !strings.Contains(out, "proto-dst 8080 accept") {
		t.Errorf("moat allow --dry-run: exit %d\n%s", code, out)
	}
	if after, _ := os.ReadFile(x.cfg); string(after) != string(before) {
		t.Errorf("--dry-run changed moat.yaml:\n%s", after)
	}
	if got := x.tree(); got != tree {
		t.Errorf("--dry-run changed the host:\n%s", diffLines(tree, got))
	}
	if tables := string(x.vps.MustRun(t, "nft", "list", "tables")); strings.Contains(tables, "moat") {
		t.Errorf("--dry-run loaded table inet moat: %s", tables)
	}
}

// TestE2EQuickEditWithNothingToApply: with the firewall left to
// something else, opening a port changes no host layer: moat.yaml is
// written at once (nothing to roll back) and no change is made.
func TestE2EQuickEditWithNothingToApply(t *testing.T) {
	x := newE2E(t)
	x.config(`ssh:
  permit_root_login: prohibit-password
firewall:
  enabled: false
  public: [80/tcp]
`, "198.51.100.2")
	op := x.mustClient(vpsPublic+":22", "root", x.rootKey)
	defer op.Close()
	if out, code := x.run(op, "apply", "-c", x.cfg, "--yes"); code != 0 {
		t.Fatalf("apply --yes: %d\n%s", code, out)
	}
	all, _ := change.NewStore(x.root).List()
	out, code := x.run(op, "allow", "8080/tcp", "-c", x.cfg)
	if code != 0 || !strings.Contains(out, "nothing to change on the host") {
		t.Fatalf("moat allow: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(x.cfg); !strings.Contains(string(b), "public: [80/tcp, 8080/tcp]") {
		t.Errorf("moat.yaml not edited:\n%s", b)
	}
	if now, _ := change.NewStore(x.root).List(); len(now) != len(all) {
		t.Errorf("a change was made: %d changes, %d before", len(now), len(all))
	}
}
