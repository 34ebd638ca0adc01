package logwatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// journaldHelperEnv, set to a journal namespace name, makes the test
// binary mount a tmpfs over /var/log (it runs in a private mount
// namespace its parent made) and become systemd-journald serving that
// namespace: a real journald without systemd as PID 1, whose files
// vanish with it.
const journaldHelperEnv = "MOAT_LOGWATCH_JOURNALD"

func journaldHelper(ns string) int {
	if err := unix.Mount("tmpfs", "/var/log", "tmpfs", 0, "mode=0755,size=64m"); err != nil {
		fmt.Fprintln(os.Stderr, "mount tmpfs on /var/log:", err)
		return 1
	}
	jd := journaldPath()
	err := syscall.Exec(jd, []string{"systemd-journald", ns}, os.Environ())
	fmt.Fprintln(os.Stderr, "exec", jd+":", err)
	return 1
}

func journaldPath() string {
	for _, p := range []string{"/usr/lib/systemd/systemd-journald", "/lib/systemd/systemd-journald"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// realJournald starts systemd-journald for a fresh namespace and returns
// the directory of its journal files (for journalctl --directory) and a
// function that logs an entry to it.
func realJournald(t *testing.T) (dir string, send func(fields ...string)) {
	dir, _, send = realJournaldNS(t)
	return dir, send
}

// realJournaldNS is realJournald that also returns the directory of
// journald's sockets (socket, dev-log).
func realJournaldNS(t *testing.T) (dir, runDir string, send func(fields ...string)) {
	require(t, os.Geteuid() == 0, "needs root to run systemd-journald in a private mount namespace")
	require(t, journaldPath() != "", "needs systemd-journald (Debian package systemd)")
	_, err := exec.LookPath("journalctl")
	require(t, err == nil, "needs journalctl (Debian package systemd)")
	mid, err := os.ReadFile("/etc/machine-id")
	require(t, err == nil && len(bytes.TrimSpace(mid)) == 32, "needs /etc/machine-id for journald")

	ns := fmt.Sprintf("moat-test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), journaldHelperEnv+"="+ns)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	var out tailBuffer
	out.max = 4096
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start journald: %v", err)
	}
	runDir = "/run/systemd/journal." + ns
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		os.RemoveAll(runDir)
		if t.Failed() {
			t.Logf("journald output:\n%s", out.bytes())
		}
	})
	sock := runDir + "/socket"
	dir = fmt.Sprintf("/proc/%d/root/var/log/journal/%s.%s", cmd.Process.Pid, bytes.TrimSpace(mid), ns)
	waitFor(t, 10*time.Second, "journald's socket and journal files", func() bool {
		_, err1 := os.Stat(sock)
		_, err2 := os.Stat(dir)
		return err1 == nil && err2 == nil
	})
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	send = func(fields ...string) {
		t.Helper()
		// journald's native protocol: KEY=VALUE lines, or KEY, a
		// little-endian length and the raw value for data with newlines
		// or binary bytes.
		var b bytes.Buffer
		for i := 0; i+1 < len(fields); i += 2 {
			k, v := fields[i], fields[i+1]
			if strings.ContainsAny(v, "\n") || !isText(v) {
				b.WriteString(k + "\n")
				binary.Write(&b, binary.LittleEndian, uint64(len(v)))
				b.WriteString(v + "\n")
			} else {
				b.WriteString(k + "=" + v + "\n")
			}
		}
		if _, err := conn.Write(b.Bytes()); err != nil {
			t.Fatalf("log to journald: %v", err)
		}
	}
	return dir, runDir, send
}

func isText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// TestJournalRealJournald follows a real systemd-journald through
// journalctl: matches, binary messages, fields, and resuming at the
// saved cursor after a restart. The entries come from the test process
// itself, so it matches on SYSLOG_IDENTIFIER (which the sender sets):
// what moat trusts is TestJournalForgedSSHD's subject.
func TestJournalRealJournald(t *testing.T) {
	dir, send := realJournald(t)
	store := NewMemStore()
	newSrc := func() *Journal {
		src, err := NewJournal(JournalConfig{Name: "sshd", Directory: dir, Matches: []string{"SYSLOG_IDENTIFIER=sshd", "+", "SYSLOG_IDENTIFIER=sshd-session"}, Store: store, Log: debugLog(t)})
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	// An entry journald stored before the first start is not replayed.
	// (Its time is when journald received it: wait until it has.)
	send("MESSAGE", "before the first start: not delivered", "SYSLOG_IDENTIFIER", "sshd")
	waitFor(t, 10*time.Second, "journald to store the first entry", func() bool {
		out, _ := exec.Command("journalctl", "--directory="+dir, "--quiet", "--output=cat", "SYSLOG_IDENTIFIER=sshd").Output()
		return bytes.Contains(out, []byte("before the first start"))
	})
	time.Sleep(5 * time.Millisecond)
	var c collector
	r := start(t, newSrc(), c.handle)
	// Entries count from when Run started: probe until one arrives.
	waitFor(t, 20*time.Second, "a probe entry", func() bool {
		send("MESSAGE", "probe", "SYSLOG_IDENTIFIER", "sshd")
		time.Sleep(20 * time.Millisecond)
		return c.len() > 0
	})
	var want []string
	for i := range 100 {
		ident := []string{"sshd", "sshd-session"}[i%2]
		msg := fmt.Sprintf("Failed password for root from 203.0.113.%d port 22 ssh2", i)
		send("MESSAGE", msg, "SYSLOG_IDENTIFIER", ident, "PRIORITY", "6")
		want = append(want, msg)
		send("MESSAGE", "noise", "SYSLOG_IDENTIFIER", "CRON")
	}
	binMsg := "user \x1b[31mroot\x1b[0m\xff from 1.2.3.4\nport 22"
	send("MESSAGE", binMsg, "SYSLOG_IDENTIFIER", "sshd")
	want = append(want, binMsg)
	var got []Line
	waitFor(t, 20*time.Second, "101 entries from journald", func() bool {
		got = got[:0]
		for _, l := range c.snapshot() {
			if string(l.Text) != "probe" {
				got = append(got, l)
			}
		}
		return len(got) >= len(want)
	})
	if len(got) != len(want) {
		for _, l := range c.snapshot() {
			t.Logf("%q %s", l.Text, l.Pos.Cursor)
		}
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i, l := range got {
		if string(l.Text) != want[i] {
			t.Fatalf("entry %d is %q, want %q", i, l.Text, want[i])
		}
	}
	l := got[1]
	if l.Fields["SYSLOG_IDENTIFIER"] != "sshd-session" || l.Fields["_PID"] != strconv.Itoa(os.Getpid()) ||
		l.Fields["PRIORITY"] != "6" || l.Pos.Cursor == "" || time.Since(l.Time) > time.Minute {
		t.Errorf("entry %+v: want journald's fields, a cursor and a time", l)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	// Logged while stopped: delivered after the saved cursor, once.
	var again []string
	for i := range 20 {
		again = append(again, fmt.Sprintf("while stopped %d", i))
		send("MESSAGE", again[i], "SYSLOG_IDENTIFIER", "sshd")
	}
	var c2 collector
	start(t, newSrc(), c2.handle)
	for deadline := time.Now().Add(20 * time.Second); c2.len() < len(again) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if c2.len() != len(again) {
		p, _, _ := store.Load("sshd")
		out, err := exec.Command("journalctl", "--directory="+dir, "--quiet", "--output=cat", "--after-cursor="+p.Cursor).CombinedOutput()
		t.Logf("stored %v; journalctl after it now: %v\n%s", p, err, out)
	}
	if got := c2.texts(); strings.Join(got, "|") != strings.Join(again, "|") {
		t.Fatalf("after restart got %q, want %q", got, again)
	}
}

// forgeHelperEnv, set to journald's native socket, makes the test binary
// log its arguments there as entries tagged sshd, then linger a while so
// that journald reads its process name (_COMM) from /proc.
const forgeHelperEnv = "MOAT_LOGWATCH_FORGE"

func forgeHelper(sock string, msgs []string) int {
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, m := range msgs {
		if _, err := conn.Write([]byte("MESSAGE=" + m + "\nSYSLOG_IDENTIFIER=sshd\nSYSLOG_PID=1\n")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	// Long enough for a loaded journald to get to the entries while the
	// process is still there to be read.
	time.Sleep(3 * time.Second)
	return 0
}

// TestJournalForgedSSHD: on a journald host any local user can log lines
// tagged sshd (`logger -t sshd`), even from a process named sshd (a copy
// of a program renamed sshd makes _COMM=sshd). None of them reaches the
// sshd jail's source: it selects by _COMM and _UID=0, fields journald
// sets from the kernel's view of the sender. Root's sshd-named process
// does.
func TestJournalForgedSSHD(t *testing.T) {
	logger, err := exec.LookPath("logger")
	require(t, err == nil, "needs logger (Debian package bsdutils)")
	dir, runDir, send := realJournaldNS(t)
	devLog, native := runDir+"/dev-log", runDir+"/socket"
	waitFor(t, 10*time.Second, "journald's syslog socket", func() bool { _, err := os.Stat(devLog); return err == nil })
	os.Chmod(runDir, 0o755)
	os.Chmod(devLog, 0o666)
	os.Chmod(native, 0o666)

	// A program named sshd that any user may run: this test binary,
	// copied under that name.
	bin, err := os.MkdirTemp("", "moat-forge-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	os.Chmod(bin, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	fakeSSHD := filepath.Join(bin, "sshd")
	if err := os.WriteFile(fakeSSHD, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	as := func(uid uint32, cmd *exec.Cmd) {
		t.Helper()
		if uid != 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v as uid %d: %v\n%s", cmd.Args, uid, err, out)
		}
	}
	sshdNamed := func(uid uint32, msg string) {
		t.Helper()
		cmd := exec.Command(fakeSSHD, msg)
		cmd.Env = append(os.Environ(), forgeHelperEnv+"="+native)
		as(uid, cmd)
	}

	var c collector
	src, err := NewJournal(JournalConfig{Name: "sshd", Directory: dir, Matches: sshdMatches, Store: NewMemStore(), Log: debugLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	start(t, src, c.handle)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("journalctl", "--directory="+dir, "--quiet", "-o", "json", "-n", "8", "--output-fields=MESSAGE,_COMM,_UID,SYSLOG_IDENTIFIER").CombinedOutput()
			t.Logf("the journal's last entries:\n%s", out)
		}
	})
	// Entries count from when Run started: probe (as root's sshd would
	// log) until one arrives.
	waitFor(t, 30*time.Second, "a probe entry from root's sshd", func() bool {
		sshdNamed(0, "probe")
		return c.len() > 0
	})
	forged := []string{
		"Invalid user a from 192.0.2.61 port 22", // logger -t sshd, as a user
		"Invalid user b from 192.0.2.62 port 22", // a user's process named sshd
		"Invalid user c from 192.0.2.63 port 22", // root, SYSLOG_IDENTIFIER=sshd, _COMM/_UID in the payload
		"Invalid user e from 192.0.2.65 port 22", // logger -t sshd, as root: not a process named sshd
	}
	as(nobody, exec.Command(logger, "-u", devLog, "-t", "sshd", forged[0]))
	sshdNamed(nobody, forged[1])
	send("MESSAGE", forged[2], "SYSLOG_IDENTIFIER", "sshd", "SYSLOG_PID", "1", "_COMM", "sshd", "_UID", "0")
	as(0, exec.Command(logger, "-u", devLog, "-t", "sshd", forged[3]))
	real := "Invalid user d from 192.0.2.64 port 22"
	sshdNamed(0, real)
	waitFor(t, 20*time.Second, "root's sshd entry", func() bool { return slices.Contains(c.texts(), real) })
	time.Sleep(100 * time.Millisecond)
	for _, l := range c.snapshot() {
		txt := string(l.Text)
		if slices.Contains(forged, txt) {
			t.Errorf("forged entry delivered as sshd's: %q fields %v", txt, l.Fields)
		}
		if l.Fields["_UID"] != "0" || l.Fields["_COMM"] != "sshd" {
			t.Errorf("entry %q delivered with _UID=%q _COMM=%q", txt, l.Fields["_UID"], l.Fields["_COMM"])
		}
	}
	// The forged entries are in the journal all the same, tagged sshd:
	// what a match on SYSLOG_IDENTIFIER would have read.
	out, _ := exec.Command("journalctl", "--directory="+dir, "--quiet", "--output=cat", "SYSLOG_IDENTIFIER=sshd").Output()
	for _, f := range forged {
		if !bytes.Contains(out, []byte(f)) {
			t.Errorf("forged entry %q not in the journal: the test did not forge", f)
		}
	}
	// And the user's process named sshd is _COMM=sshd: only _UID tells.
	out, _ = exec.Command("journalctl", "--directory="+dir, "--quiet", "--output=cat", "_COMM=sshd").Output()
	if !bytes.Contains(out, []byte(forged[1])) {
		t.Errorf("the user's sshd-named process was not logged as _COMM=sshd: the test did not forge it")
	}
}
