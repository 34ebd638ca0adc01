package logwatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
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
	runDir := "/run/systemd/journal." + ns
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
	return dir, send
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
// saved cursor after a restart.
func TestJournalRealJournald(t *testing.T) {
	dir, send := realJournald(t)
	store := NewMemStore()
	newSrc := func() *Journal {
		src, err := NewJournal(JournalConfig{Name: "sshd", Directory: dir, Matches: sshdMatches, Store: store, Log: debugLog(t)})
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
