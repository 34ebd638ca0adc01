package change

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/lab"
)

// accountsFixture is a host with account databases, a config file of
// several lines and an existing user's home.
func accountsFixture(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"etc/passwd":   "root:x:0:0:root:/root:/bin/bash\nbob:x:1234:1234::/home/bob:/bin/bash\n",
		"etc/shadow":   "root:*:19000:0:99999:7:::\nbob:!:19000:0:99999:7:::\n",
		"etc/group":    "root:x:0:\nsudo:x:27:alice\nbob:x:1234:\n",
		"etc/gshadow":  "root:*::\nsudo:*::alice\nbob:!::\n",
		"etc/app.conf": "# app\nlisten=127.0.0.1\nport=80\nworkers=2\nlog=info\n",
	}
	for p, data := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "etc/shadow"), 0o640)
	os.MkdirAll(filepath.Join(root, "home/bob/.ssh"), 0o755)
	os.WriteFile(filepath.Join(root, "home/bob/.ssh/authorized_keys"), []byte("ssh-ed25519 AAAA bob\n"), 0o600)
	if os.Geteuid() == 0 {
		for _, p := range []string{"home/bob", "home/bob/.ssh", "home/bob/.ssh/authorized_keys"} {
			os.Chown(filepath.Join(root, p), 1234, 1234)
		}
	}
	return root
}

// appendTo appends a line to root/p, the way a command run by someone
// else would (in place, keeping the file's mode).
func appendTo(t *testing.T, root, p, line string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(root, p), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
}

func replaceIn(t *testing.T, root, p, old, new string) {
	t.Helper()
	full := filepath.Join(root, p)
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s lacks %q", p, old)
	}
	if err := os.WriteFile(full, bytes.Replace(b, []byte(old), []byte(new), 1), 0); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// adminStep is what the admin layer does: a user, its group, sudo
// membership, a home from a skeleton, a key; and an edit of a config file.
func adminStep(root string) *Step {
	home := "/home/ops"
	return &Step{
		Layer: "admin",
		Touch: []string{"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"},
		Dirs:  []Dir{{Path: home, Mode: 0o750}, {Path: home + "/.ssh", Mode: 0o700}},
		Files: []File{
			{Path: home + "/.ssh/authorized_keys", Data: []byte("ssh-ed25519 AAAA ops\n"), Mode: 0o600},
			{Path: "/etc/app.conf", Data: []byte("# app\nlisten=0.0.0.0\nport=80\nworkers=2\nlog=info\n"), Mode: 0o644},
		},
		Apply: func(ctx context.Context, w *Writer) error {
			// What useradd and usermod do.
			edits := []struct{ p, line string }{
				{"etc/passwd", "ops:x:1500:1500::/home/ops:/bin/bash"},
				{"etc/shadow", "ops:!:19000:0:99999:7:::"},
				{"etc/group", "ops:x:1500:"},
				{"etc/gshadow", "ops:!::"},
			}
			for _, e := range edits {
				f, err := os.OpenFile(filepath.Join(root, e.p), os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					return err
				}
				f.WriteString(e.line + "\n")
				f.Close()
			}
			for _, p := range []string{"etc/group", "etc/gshadow"} {
				b, _ := os.ReadFile(filepath.Join(root, p))
				b = bytes.Replace(b, []byte(":alice\n"), []byte(":alice,ops\n"), 1)
				os.WriteFile(filepath.Join(root, p), b, 0)
			}
			for _, d := range []Dir{{Path: home, Mode: 0o750}, {Path: home + "/.ssh", Mode: 0o700}} {
				if err := w.Mkdir(d); err != nil {
					return err
				}
			}
			// /etc/skel.
			os.WriteFile(filepath.Join(root, "home/ops/.bashrc"), []byte("# skel\n"), 0o644)
			return w.WriteAll(adminStep(root).Files)
		},
	}
}

// TestRollbackKeepsOthersEdits: during the window someone adds a system
// user, sets passwords (bob's, which existed, and ops's, which moat
// created), edits another line of a file moat edited, and writes a file
// in the new admin's home. The rollback removes moat's own edits and
// nothing else, and says what it kept.
func TestRollbackKeepsOthersEdits(t *testing.T) {
	root := accountsFixture(t)
	s := NewStore(root)
	m, err := s.Apply(context.Background(), []*Step{adminStep(root)}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root), Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(readFile(t, root, "etc/passwd"), "ops:") || !strings.Contains(readFile(t, root, "etc/group"), "alice,ops") {
		t.Fatal("the step did not run")
	}
	// The window: useradd --system svcapp, passwd bob, passwd ops, an
	// edit of app.conf, a file in ops's home.
	appendTo(t, root, "etc/passwd", "svcapp:x:999:999::/nonexistent:/usr/sbin/nologin")
	appendTo(t, root, "etc/shadow", "svcapp:!:19001::::::")
	appendTo(t, root, "etc/group", "svcapp:x:999:")
	appendTo(t, root, "etc/gshadow", "svcapp:!::")
	replaceIn(t, root, "etc/shadow", "bob:!:19000:", "bob:$6$bobnew:19001:")
	replaceIn(t, root, "etc/shadow", "ops:!:19000:", "ops:$6$opsnew:19001:")
	replaceIn(t, root, "etc/app.conf", "log=info", "log=debug")
	notes := bytes.Repeat([]byte("operator's notes\n"), 6000) // ~100 KB
	if err := os.WriteFile(filepath.Join(root, "home/ops/notes.txt"), notes, 0o600); err != nil {
		t.Fatal(err)
	}

	m, err = s.Rollback(context.Background(), m.ID, "test", RollbackOptions{Handlers: testHandlers(root)})
	if err != nil {
		t.Fatal(err)
	}
	if m.State != RolledBack {
		t.Fatalf("state %s", m.State)
	}
	want := map[string]string{
		"etc/passwd":   "root:x:0:0:root:/root:/bin/bash\nbob:x:1234:1234::/home/bob:/bin/bash\nsvcapp:x:999:999::/nonexistent:/usr/sbin/nologin\n",
		"etc/shadow":   "root:*:19000:0:99999:7:::\nbob:$6$bobnew:19001:0:99999:7:::\nsvcapp:!:19001::::::\n",
		"etc/group":    "root:x:0:\nsudo:x:27:alice\nbob:x:1234:\nsvcapp:x:999:\n",
		"etc/gshadow":  "root:*::\nsudo:*::alice\nbob:!::\nsvcapp:!::\n",
		"etc/app.conf": "# app\nlisten=127.0.0.1\nport=80\nworkers=2\nlog=debug\n",
	}
	for p, w := range want {
		if got := readFile(t, root, p); got != w {
			t.Errorf("%s:\n%s\nwant\n%s", p, got, w)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "etc/shadow")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("shadow mode: %v %v", fi.Mode(), err)
	}
	if got, err := os.ReadFile(filepath.Join(root, "home/ops/notes.txt")); err != nil || !bytes.Equal(got, notes) {
		t.Errorf("the operator's file in ops's home is gone or changed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "home/ops/.ssh")); err == nil {
		t.Error("the .ssh moat created (holding only moat's key) was kept")
	}
	report := m.Report()
	for _, w := range []string{"svcapp added since", "bob: password set since, kept", "ops: the password set during the window", "/home/ops", "notes.txt", "log=", "kept"} {
		if w == "log=" {
			w = "/etc/app.conf"
		}
		if !strings.Contains(report, w) {
			t.Errorf("report lacks %q:\n%s", w, report)
		}
	}
	if strings.Contains(report, "every path") {
		t.Errorf("report claims a full restore:\n%s", report)
	}
	t.Log("\n" + report)
}

// TestRollbackRestoresWholeWhenNobodyElseWrote: with no edits in the
// window, the rollback is byte for byte, and says so.
func TestRollbackRestoresWholeWhenNobodyElseWrote(t *testing.T) {
	root := accountsFixture(t)
	before := treeHash(t, root)
	s := NewStore(root)
	m, err := s.Apply(context.Background(), []*Step{adminStep(root)}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root), Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	m, err = s.Rollback(context.Background(), m.ID, "test", RollbackOptions{Handlers: testHandlers(root)})
	if err != nil || m.State != RolledBack {
		t.Fatalf("%v %s", err, m.State)
	}
	sameTree(t, before, treeHash(t, root))
	if r := m.Report(); !strings.Contains(r, "every path moat changed restored byte for byte") {
		t.Errorf("report:\n%s", r)
	}
}

// TestRollbackSymlinkSwap: before an unconfirmed change rolls back, the
// user whose home moat touched swaps ~/.ssh for a symlink to a directory
// of root's. Nothing outside the captured directory changes owner, mode
// or bytes, and the rollback says what it refused.
func TestRollbackSymlinkSwap(t *testing.T) {
	lab.RequireRoot(t)
	for _, created := range []bool{false, true} {
		t.Run(map[bool]string{false: "existing-ssh-dir", true: "created-ssh-dir"}[created], func(t *testing.T) {
			root := accountsFixture(t)
			if created {
				os.RemoveAll(filepath.Join(root, "home/bob/.ssh"))
			}
			// root's own directory, which the swap points at.
			victim := filepath.Join(root, "etc/victim")
			os.MkdirAll(victim, 0o755)
			os.WriteFile(filepath.Join(victim, "authorized_keys"), []byte("root's\n"), 0o644)
			step := &Step{
				Layer: "admin",
				Dirs:  []Dir{{Path: "/home/bob/.ssh", Mode: 0o700, Owner: "bob"}},
				Files: []File{{Path: "/home/bob/.ssh/authorized_keys", Data: []byte("ssh-ed25519 AAAA bob\nssh-ed25519 BBBB moat\n"), Mode: 0o600, Owner: "bob"}},
				Apply: func(ctx context.Context, w *Writer) error {
					if err := w.Mkdir(Dir{Path: "/home/bob/.ssh", Mode: 0o700, Owner: "bob"}); err != nil {
						return err
					}
					// A mode change of the directory, so that a rollback has
					// a chmod and a chown to make there.
					os.Chmod(filepath.Join(root, "home/bob/.ssh"), 0o711)
					return w.WriteAll([]File{{Path: "/home/bob/.ssh/authorized_keys", Data: []byte("ssh-ed25519 AAAA bob\nssh-ed25519 BBBB moat\n"), Mode: 0o600, Owner: "bob"}})
				},
			}
			s := NewStore(root)
			m, err := s.Apply(context.Background(), []*Step{step}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root), Window: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			// The swap, as bob could do it in his own home.
			ssh := filepath.Join(root, "home/bob/.ssh")
			if err := os.Rename(ssh, filepath.Join(root, "home/bob/.ssh-old")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, ssh); err != nil {
				t.Fatal(err)
			}
			os.Lchown(ssh, 1234, 1234)
			beforeVictim := treeHash(t, victim)
			etc := treeHash(t, filepath.Join(root, "etc"))
			m, err = s.Rollback(context.Background(), m.ID, "test", RollbackOptions{Handlers: testHandlers(root)})
			var rf *RollbackFailedError
			if !errors.As(err, &rf) || m.State != RollbackFailed {
				t.Fatalf("rollback through a swapped directory: %v, state %s", err, m.State)
			}
			sameTree(t, beforeVictim, treeHash(t, victim))
			after := treeHash(t, filepath.Join(root, "etc"))
			for k, v := range etc {
				if after[k] != v {
					t.Errorf("etc/%s: %s -> %s", k, v, after[k])
				}
			}
			var st syscall.Stat_t
			if err := syscall.Stat(victim, &st); err != nil || st.Uid != 0 || st.Mode&0o7777 != 0o755 {
				t.Errorf("the symlink's target changed: uid %d mode %o", st.Uid, st.Mode&0o7777)
			}
			if r := m.Report(); !strings.Contains(r, "refused") || !strings.Contains(r, "INCOMPLETE") {
				t.Errorf("report:\n%s", r)
			}
			if id, _ := s.Pending(); id != m.ID {
				t.Errorf("a failed rollback is no longer pending (%q)", id)
			}
			// Once the link is gone, the retry finishes.
			os.Remove(ssh)
			os.Rename(filepath.Join(root, "home/bob/.ssh-old"), ssh)
			m, err = s.Rollback(context.Background(), m.ID, "retry", RollbackOptions{Handlers: testHandlers(root)})
			if err != nil || m.State != RolledBack {
				t.Fatalf("retry: %v, state %s\n%s", err, m.State, m.Report())
			}
			if created {
				if _, err := os.Lstat(ssh); err == nil {
					t.Error("the .ssh moat created is still there")
				}
			} else if got := readFile(t, root, "home/bob/.ssh/authorized_keys"); got != "ssh-ed25519 AAAA bob\n" {
				t.Errorf("authorized_keys: %q", got)
			}
		})
	}
}

// TestApplyRefusesASymlinkedHome: moat never writes a key through a
// directory its owner swapped for a symlink to root's.
func TestApplyRefusesASymlinkedHome(t *testing.T) {
	lab.RequireRoot(t)
	root := accountsFixture(t)
	victim := filepath.Join(root, "root/.ssh")
	os.MkdirAll(victim, 0o700)
	os.WriteFile(filepath.Join(victim, "authorized_keys"), []byte("root's key\n"), 0o600)
	ssh := filepath.Join(root, "home/bob/.ssh")
	os.RemoveAll(ssh)
	os.Symlink(victim, ssh)
	os.Lchown(ssh, 1234, 1234)
	step := &Step{Layer: "admin", Files: []File{{Path: "/home/bob/.ssh/authorized_keys", Data: []byte("bob's key\n"), Mode: 0o600, Owner: "bob"}}}
	_, err := NewStore(root).Apply(context.Background(), []*Step{step}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root)})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("apply through a symlink bob placed: %v", err)
	}
	if got := readFile(t, root, "root/.ssh/authorized_keys"); got != "root's key\n" {
		t.Fatalf("root's authorized_keys: %q", got)
	}
}

// envROChild runs TestRollbackReadOnlyEtcChild inside a private mount
// namespace (unshare -m), where it may mount the fixture's /etc
// read-only without touching the host's mounts.
const envROChild = "MOAT_CHANGE_TEST_RO_CHILD"

// TestRollbackReadOnlyEtc: a rollback that meets a read-only /etc fails
// honestly (state rollback-failed, still pending, a note that says so),
// and the watchdog's retry restores everything once /etc is writable.
func TestRollbackReadOnlyEtc(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "unshare")
	root := accountsFixture(t)
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", os.Args[0], "-test.run=^TestRollbackReadOnlyEtcChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envROChild+"=1", envRoot+"="+root)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestRollbackReadOnlyEtcChild") {
		if strings.Contains(string(out), "unshare failed") {
			lab.Require(t, false, "unshare --mount: "+string(out))
		}
		t.Fatalf("%v\n%s", err, out)
	}
	t.Log(string(out))
}

func TestRollbackReadOnlyEtcChild(t *testing.T) {
	if os.Getenv(envROChild) != "1" {
		t.Skip("run by TestRollbackReadOnlyEtc in a mount namespace")
	}
	root := os.Getenv(envRoot)
	before := treeHash(t, root)
	s := NewStore(root)
	m, err := s.Apply(context.Background(), []*Step{adminStep(root)}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root), Window: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(root, "etc")
	if err := syscall.Mount(etc, etc, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("", etc, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	// The watchdog's loop, retrying every 20ms at first.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan *Manifest, 1)
	go func() {
		m, err := s.Watch(ctx, m.ID, RollbackOptions{Handlers: testHandlers(root), FromTimer: true, RetryEvery: 20 * time.Millisecond})
		if err != nil {
			t.Error(err)
		}
		done <- m
	}()
	for {
		cur, err := s.Load(m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.State == RollbackFailed && cur.Attempts >= 2 {
			if id, _ := s.Pending(); id != m.ID {
				t.Errorf("pending %q while the rollback is incomplete", id)
			}
			n, _ := s.LastRollback()
			if n == nil || n.State != RollbackFailed || !strings.Contains(n.Reason, "INCOMPLETE") {
				t.Errorf("last-rollback note %+v", n)
			}
			r := cur.Report()
			if !strings.Contains(r, "INCOMPLETE") || strings.Contains(r, "every path") || !strings.Contains(r, "read-only") {
				t.Errorf("report of the failed rollback:\n%s", r)
			}
			failed, _ := s.FailedRollbacks()
			if len(failed) != 1 {
				t.Errorf("FailedRollbacks: %d", len(failed))
			}
			t.Log("\n" + r)
			break
		}
		if cur.State.Final() {
			t.Fatalf("rolled back on a read-only /etc: %s\n%s", cur.State, cur.Report())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Unmount(etc, 0); err != nil {
		t.Fatal(err)
	}
	var got *Manifest
	select {
	case got = <-done:
	case <-ctx.Done():
		t.Fatal("the watchdog did not finish the rollback")
	}
	if got == nil || got.State != RolledBack {
		t.Fatalf("after the retry: %+v", got)
	}
	sameTree(t, before, treeHash(t, root))
	if id, _ := s.Pending(); id != "" {
		t.Errorf("still pending: %s", id)
	}
	if n, _ := s.LastRollback(); n == nil || n.State != RolledBack {
		t.Errorf("last-rollback note %+v", n)
	}
}

// TestRollbackOfAConfirmedChangeKeepsLaterWork: confirm writes a Final
// file and a confirm action appends a line to a file that existed (the
// swap line in fstab). Weeks later someone adds a user and a line of
// their own to that file; rolling the change back removes moat's line
// and moat's user, and keeps theirs.
func TestRollbackOfAConfirmedChangeKeepsLaterWork(t *testing.T) {
	root := accountsFixture(t)
	os.WriteFile(filepath.Join(root, "etc/fstab"), []byte("/dev/vda1 / ext4 defaults 0 1\n"), 0o644)
	st := adminStep(root)
	st.Touch = append(st.Touch, "/etc/fstab")
	st.Final = []File{{Path: "/etc/sysctl.d/60-moat.conf", Data: []byte("net.ipv4.tcp_syncookies = 1\n")}}
	st.Confirm = []Action{NewAction("fstab", nil)}
	h := testHandlers(root)
	h["fstab"] = func(_ context.Context, env Env, _ json.RawMessage) error {
		f, err := os.OpenFile(filepath.Join(env.Root, "etc/fstab"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteString("/swapfile none swap sw 0 0\n")
		return err
	}
	s := NewStore(root)
	ctx := context.Background()
	m, err := s.Apply(ctx, []*Step{st}, Options{Timer: inlineTimer{}, Handlers: h, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Confirm(ctx, m.ID, ConfirmOptions{Unattended: true, Handlers: h}); err != nil {
		t.Fatal(err)
	}
	appendTo(t, root, "etc/fstab", "/dev/vdb1 /data ext4 defaults 0 2")
	appendTo(t, root, "etc/passwd", "later:x:2000:2000::/home/later:/bin/sh")
	m, err = s.Rollback(ctx, m.ID, "changed my mind", RollbackOptions{Handlers: h})
	if err != nil || m.State != RolledBack {
		t.Fatalf("%v %s", err, m.State)
	}
	if got := readFile(t, root, "etc/fstab"); got != "/dev/vda1 / ext4 defaults 0 1\n/dev/vdb1 /data ext4 defaults 0 2\n" {
		t.Errorf("fstab: %q", got)
	}
	if got := readFile(t, root, "etc/passwd"); got != "root:x:0:0:root:/root:/bin/bash\nbob:x:1234:1234::/home/bob:/bin/bash\nlater:x:2000:2000::/home/later:/bin/sh\n" {
		t.Errorf("passwd: %q", got)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/sysctl.d")); err == nil {
		t.Error("the directory confirm created for its Final file is still there")
	}
	t.Log("\n" + m.Report())
}

const envPwdChild = "MOAT_CHANGE_TEST_PWD_CHILD"

// TestRollbackWaitsForUseradd: a process that holds lckpwdf's lock (as
// useradd does) read /etc/passwd and writes it back with a user added
// after a pause. The rollback waits for it, so neither loses the other's
// edit: moat's user is gone and theirs stays.
func TestRollbackWaitsForUseradd(t *testing.T) {
	root := accountsFixture(t)
	s := NewStore(root)
	ctx := context.Background()
	m, err := s.Apply(ctx, []*Step{adminStep(root)}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root), Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRollbackWaitsForUseraddChild$", "-test.v")
	cmd.Env = append(os.Environ(), envPwdChild+"=1", envRoot+"="+root)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var seen string
	for !strings.Contains(seen, "locked\n") {
		n, err := stdout.Read(buf)
		if err != nil {
			cmd.Wait()
			t.Fatalf("child: %v %s", err, seen)
		}
		seen += string(buf[:n])
	}
	m, err = s.Rollback(ctx, m.ID, "test", RollbackOptions{Handlers: testHandlers(root)})
	if err != nil || m.State != RolledBack {
		t.Fatalf("%v %s", err, m.State)
	}
	go func() {
		for {
			if _, err := stdout.Read(buf); err != nil {
				return
			}
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if got := readFile(t, root, "etc/passwd"); got != "root:x:0:0:root:/root:/bin/bash\nbob:x:1234:1234::/home/bob:/bin/bash\nlate:x:3000:3000::/home/late:/bin/sh\n" {
		t.Errorf("passwd:\n%s", got)
	}
}

func TestRollbackWaitsForUseraddChild(t *testing.T) {
	if os.Getenv(envPwdChild) != "1" {
		t.Skip("run by TestRollbackWaitsForUseradd")
	}
	root := os.Getenv(envRoot)
	f, err := os.OpenFile(filepath.Join(root, "etc/.pwd.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLKW, &lk); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("locked\n")
	time.Sleep(300 * time.Millisecond) // a slow useradd; the rollback must wait, whatever the pause
	tmp := filepath.Join(root, "etc/passwd+")
	os.WriteFile(tmp, append(old, "late:x:3000:3000::/home/late:/bin/sh\n"...), 0o644)
	if err := os.Rename(tmp, filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestRollbackDirAttrs: moat changed a directory's mode; someone changed
// its owner since. The mode reverts, their owner stays.
func TestRollbackDirAttrs(t *testing.T) {
	lab.RequireRoot(t)
	root := accountsFixture(t)
	dir := filepath.Join(root, "srv/data")
	os.MkdirAll(dir, 0o755)
	os.Chmod(dir, 0o755)
	step := &Step{Layer: "x", Dirs: []Dir{{Path: "/srv/data"}}, Apply: func(context.Context, *Writer) error { return os.Chmod(dir, 0o700) }}
	s := NewStore(root)
	m, err := s.Apply(context.Background(), []*Step{step}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root)})
	if err != nil {
		t.Fatal(err)
	}
	os.Chown(dir, 1234, 1234)
	if m, err = s.Rollback(context.Background(), m.ID, "test", RollbackOptions{Handlers: testHandlers(root)}); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	syscall.Stat(dir, &st)
	if st.Mode&0o7777 != 0o755 || st.Uid != 1234 {
		t.Errorf("mode %o owner %d, want 755 and 1234\n%s", st.Mode&0o7777, st.Uid, m.Report())
	}
}
