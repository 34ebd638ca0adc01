package change

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	envConfig  = "MOAT_CHANGE_TEST_CONFIG"
	envHold    = "MOAT_CHANGE_TEST_HOLD"
	envNoTimer = "MOAT_CHANGE_TEST_NO_TIMER"
)

const configBefore = "# the operator's notes\nfirewall:\n  public: [80/tcp]   # web\n"
const configAfter = "# the operator's notes\nfirewall:\n  public: [80/tcp, 8080/tcp]   # web\n"

// configFixture writes moat.yaml (mode 0640, owned by uid 1234 when
// root) in its own directory and a symlink to it, as an operator who
// keeps the config in a checkout has; it returns the link and the file.
func configFixture(t *testing.T) (link, file string) {
	t.Helper()
	dir := t.TempDir()
	file = filepath.Join(dir, "checkout", "moat.yaml")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(configBefore), 0o640); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		os.Chown(file, 1234, 1234)
	}
	link = filepath.Join(dir, "moat.yaml")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	return link, file
}

func configEdit(link, file string) *ConfigEdit {
	return &ConfigEdit{Path: link, File: file, Before: []byte(configBefore), After: []byte(configAfter)}
}

// checkConfig asserts the link is still a link to file, and file holds
// data with its mode and owner.
func checkConfig(t *testing.T, link, file, data string) {
	t.Helper()
	if dst, err := os.Readlink(link); err != nil || dst != file {
		t.Errorf("%s is no longer a link to %s: %q %v", link, file, dst, err)
	}
	b, err := os.ReadFile(file)
	if err != nil || string(b) != data {
		t.Errorf("%s holds %q (%v), want %q", file, b, err, data)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("%s mode %v, want 0640", file, fi.Mode())
	}
	if os.Geteuid() == 0 {
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1234 || st.Gid != 1234 {
			t.Errorf("%s owned by %d:%d, want 1234:1234", file, st.Uid, st.Gid)
		}
	}
}

func asides(t *testing.T, file string) []string {
	t.Helper()
	m, _ := filepath.Glob(file + AsideSuffix + "*")
	return m
}

// TestConfigEditRolledBackWithTheChange: a quick edit's moat.yaml goes
// back with the host, through the link, keeping mode and owner, and the
// rollback says so.
func TestConfigEditRolledBackWithTheChange(t *testing.T) {
	root := fixture(t)
	link, file := configFixture(t)
	s := NewStore(root)
	var notes []Notice
	m, err := s.Apply(context.Background(), []*Step{fileStep(root)}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root),
		Window: time.Minute, ConfigEdit: configEdit(link, file)})
	if err != nil {
		t.Fatal(err)
	}
	checkConfig(t, link, file, configAfter)
	m, err = s.Rollback(context.Background(), m.ID, "no confirm within 2m0s", RollbackOptions{Handlers: testHandlers(root),
		Notify: func(n Notice) { notes = append(notes, n) }})
	if err != nil {
		t.Fatal(err)
	}
	checkConfig(t, link, file, configBefore)
	if a := asides(t, file); len(a) > 0 {
		t.Errorf("a version was put aside though nobody else edited: %v", a)
	}
	// Run again after a crash mid-rollback: nothing more happens.
	m.State = RollbackFailed
	s.save(m)
	if m2, err := s.Rollback(context.Background(), m.ID, "retry", RollbackOptions{Handlers: testHandlers(root)}); err != nil || m2.State != RolledBack {
		t.Fatalf("again: %v", err)
	}
	checkConfig(t, link, file, configBefore)
	if r := m.Report(); !strings.Contains(r, "restored "+link) || !strings.Contains(r, "quick edit is undone") {
		t.Errorf("report does not name moat.yaml:\n%s", r)
	}
	if len(notes) != 1 || !strings.Contains(notes[0].Text, link+" restored as it was before the quick edit") {
		t.Errorf("alert %+v", notes)
	}
	// A confirmed change keeps the edit.
	m, err = s.Apply(context.Background(), []*Step{fileStep(root)}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root),
		Window: time.Minute, ConfigEdit: configEdit(link, file)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Confirm(context.Background(), m.ID, ConfirmOptions{Unattended: true, Handlers: testHandlers(root)}); err != nil {
		t.Fatal(err)
	}
	checkConfig(t, link, file, configAfter)
}

// TestConfigEditKeepsTheOperatorsWork: the operator edits moat.yaml in
// the window; the rollback keeps their file, writes the version before
// the quick edit beside it (0600, atomically), and says where. A second
// rollback attempt changes nothing.
func TestConfigEditKeepsTheOperatorsWork(t *testing.T) {
	for _, how := range []string{"edited", "same-bytes-by-hand", "removed"} {
		t.Run(how, func(t *testing.T) {
			root := fixture(t)
			link, file := configFixture(t)
			s := NewStore(root)
			m, err := s.Apply(context.Background(), []*Step{fileStep(root)}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root),
				Window: time.Minute, ConfigEdit: configEdit(link, file)})
			if err != nil {
				t.Fatal(err)
			}
			theirs := configAfter + "ssh:\n  port: 2222\n"
			switch how {
			case "edited":
				// An editor writes a new file and renames it over.
				tmp := file + ".swp"
				os.WriteFile(tmp, []byte(theirs), 0o640)
				if os.Geteuid() == 0 {
					os.Chown(tmp, 1234, 1234)
				}
				if err := os.Rename(tmp, file); err != nil {
					t.Fatal(err)
				}
			case "same-bytes-by-hand":
				// Edited back to what it was: nothing of the edit is left.
				theirs = configBefore
				os.WriteFile(file, []byte(theirs), 0o640)
			case "removed":
				os.Remove(file)
			}
			var notes []Notice
			m, err = s.Rollback(context.Background(), m.ID, "no confirm within 1m0s", RollbackOptions{Handlers: testHandlers(root),
				Notify: func(n Notice) { notes = append(notes, n) }})
			if err != nil {
				t.Fatal(err)
			}
			if m.State != RolledBack {
				t.Fatalf("state %s", m.State)
			}
			switch how {
			case "removed":
				if _, err := os.Lstat(file); err == nil {
					t.Error("a removed moat.yaml came back")
				}
				if a := asides(t, file); len(a) != 1 {
					t.Fatalf("asides %v", a)
				}
				return
			case "same-bytes-by-hand":
				checkConfig(t, link, file, configBefore)
				if a := asides(t, file); len(a) != 0 {
					t.Errorf("asides %v", a)
				}
				return
			}
			checkConfig(t, link, file, theirs)
			a := asides(t, file)
			if len(a) != 1 {
				t.Fatalf("asides %v", a)
			}
			if b, _ := os.ReadFile(a[0]); string(b) != configBefore {
				t.Errorf("aside holds %q", b)
			}
			if fi, _ := os.Stat(a[0]); fi.Mode().Perm() != 0o600 {
				t.Errorf("aside mode %v", fi.Mode())
			}
			r := m.Report()
			if !strings.Contains(r, "kept     "+link) || !strings.Contains(r, a[0]) || !strings.Contains(r, "your version is kept") {
				t.Errorf("report:\n%s", r)
			}
			if len(notes) != 1 || !strings.Contains(notes[0].Text, "yours is kept") || !strings.Contains(notes[0].Text, a[0]) {
				t.Errorf("alert %+v", notes)
			}
			if n, _ := s.LastRollback(); n == nil || !strings.Contains(n.Reason, a[0]) {
				t.Errorf("last-rollback note %+v", n)
			}
			// A rollback cut short and run again (the boot guard after a
			// crash mid-rollback) changes nothing more.
			m.State = RollbackFailed
			if err := s.save(m); err != nil {
				t.Fatal(err)
			}
			if m, err = s.Rollback(context.Background(), m.ID, "retry", RollbackOptions{Handlers: testHandlers(root)}); err != nil || m.State != RolledBack {
				t.Fatalf("again: %v %+v", err, m)
			}
			checkConfig(t, link, file, theirs)
			if b := asides(t, file); len(b) != 1 || b[0] != a[0] {
				t.Errorf("asides after the retry: %v", b)
			}
		})
	}
}

// TestConfigEditRefusedWhenEditedFirst: moat.yaml changed between the
// quick edit's read and the change's write: the change fails before any
// step, and the operator's file stays.
func TestConfigEditRefusedWhenEditedFirst(t *testing.T) {
	root := fixture(t)
	before := treeHash(t, root)
	link, file := configFixture(t)
	theirs := configBefore + "# meanwhile\n"
	os.WriteFile(file, []byte(theirs), 0o640)
	s := NewStore(root)
	_, err := s.Apply(context.Background(), []*Step{fileStep(root)}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root),
		Window: time.Minute, ConfigEdit: configEdit(link, file)})
	if err == nil || !strings.Contains(err.Error(), "changed while the edit was prepared") {
		t.Fatalf("apply: %v", err)
	}
	checkConfig(t, link, file, theirs)
	sameTree(t, before, treeHash(t, root))
	if a := asides(t, file); len(a) > 0 {
		t.Errorf("asides %v", a)
	}
}

// applyConfigAndHold is the child of TestConfigEditSurvivesTheApplysDeath:
// it applies a quick edit and holds at the boundary it is told, to be
// killed there.
func applyConfigAndHold() {
	root, file, hold := os.Getenv(envRoot), os.Getenv(envConfig), os.Getenv(envHold)
	s := NewStore(root)
	say := func() {
		id, _ := s.Pending()
		fmt.Println(id)
		select {} // waits for its signal
	}
	window := time.Hour
	if hold == "waiting" {
		window = 1500 * time.Millisecond
	}
	var timer Timer = testWatchdog(root)
	if os.Getenv(envNoTimer) == "1" {
		timer = inlineTimer{} // the host lost power: no watchdog either
	}
	_, err := s.Apply(context.Background(), []*Step{fileStep(root)}, Options{Window: window, Timer: timer,
		Handlers: testHandlers(root), ConfigEdit: configEdit(file, file), AfterStep: func(l string) {
			if l == hold {
				say()
			}
		}})
	if err == nil && hold == "waiting" {
		say()
	}
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// TestConfigEditSurvivesTheApplysDeath: moat apply killed (SIGKILL,
// SIGTERM) right after it wrote moat.yaml, after the steps, and while
// waiting for confirm: the watchdog rolls the host back and moat.yaml
// with it, so the next apply does not apply what nobody confirmed.
func TestConfigEditSurvivesTheApplysDeath(t *testing.T) {
	for _, hold := range []string{"config", "files", "activated", "waiting"} {
		for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
			t.Run(hold+"/"+sig.String(), func(t *testing.T) {
				root := fixture(t)
				before := treeHash(t, root)
				link, file := configFixture(t)
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), envRole+"=apply-config", envRoot+"="+root, envConfig+"="+file, envHold+"="+hold)
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 64)
				n, _ := out.Read(buf)
				id := strings.TrimSpace(string(buf[:n]))
				if ValidID(id) != nil {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("applying process said %q", buf[:n])
				}
				if b, _ := os.ReadFile(file); string(b) != configAfter {
					t.Fatalf("moat.yaml not edited at %s: %q", hold, b)
				}
				cmd.Process.Signal(sig)
				cmd.Wait()
				s := NewStore(root)
				var m *Manifest
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					if m, _ = s.Load(id); m != nil && m.State == RolledBack {
						break
					}
				}
				if m == nil || m.State != RolledBack {
					t.Fatalf("not rolled back: %+v", m)
				}
				sameTree(t, before, treeHash(t, root))
				checkConfig(t, link, file, configBefore)
				waitGone(t, m)
			})
		}
	}
}

// TestConfigEditRecoveredAfterACrash: the apply and its timer both gone
// (a power cut right after moat.yaml was written): the next moat command
// (RecoverExpired, as at boot or start) rolls the change back, moat.yaml
// with it.
func TestConfigEditRecoveredAfterACrash(t *testing.T) {
	root := fixture(t)
	before := treeHash(t, root)
	link, file := configFixture(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"=apply-config", envRoot+"="+root, envConfig+"="+file, envHold+"=files", envNoTimer+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	id := strings.TrimSpace(string(buf[:n]))
	cmd.Process.Kill()
	cmd.Wait()
	if ValidID(id) != nil {
		t.Fatalf("applying process said %q", buf[:n])
	}
	checkConfig(t, link, file, configAfter)
	s := NewStore(root)
	m, err := s.RecoverExpired(context.Background(), RollbackOptions{Handlers: testHandlers(root)})
	if err != nil || m == nil || m.ID != id || m.State != RolledBack {
		t.Fatalf("recover: %+v %v", m, err)
	}
	sameTree(t, before, treeHash(t, root))
	checkConfig(t, link, file, configBefore)
}
