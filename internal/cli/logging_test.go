package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/moat-sh/moat/internal/lab"
)

// openPTY opens a pseudo-terminal pair: what a daemon started by hand in
// an SSH session writes to.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		lab.Require(t, false, fmt.Sprintf("needs /dev/ptmx: %v", err))
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		lab.Require(t, false, fmt.Sprintf("TIOCGPTN: %v", e))
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		lab.Require(t, false, fmt.Sprintf("TIOCSPTLCK: %v", e))
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		lab.Require(t, false, fmt.Sprintf("open pts: %v", err))
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// TestDaemonLogFormat: a daemon logs text for people on a terminal and
// JSON elsewhere, unless --log-format says which.
func TestDaemonLogFormat(t *testing.T) {
	_, pts := openPTY(t)
	if !isTerminal(pts) {
		t.Fatal("a pty is not seen as a terminal")
	}
	var buf bytes.Buffer
	for _, tc := range []struct {
		format string
		w      *os.File // nil: the buffer
		json   bool
	}{
		{"auto", nil, true},
		{"auto", pts, false},
		{"text", nil, false},
		{"json", pts, true},
	} {
		var w interface{ Write([]byte) (int, error) } = &buf
		if tc.w != nil {
			w = tc.w
		}
		log, err := daemonLogger(w, tc.format)
		if err != nil {
			t.Fatal(err)
		}
		_, isJSON := log.Handler().(*slog.JSONHandler)
		if isJSON != tc.json {
			t.Errorf("--log-format %s to a terminal=%v: JSON %v, want %v", tc.format, tc.w != nil, isJSON, tc.json)
		}
	}
	if _, err := daemonLogger(&buf, "xml"); err == nil {
		t.Error("--log-format xml accepted")
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"run", "--log-format", "xml", "--state", t.TempDir()}, nil, &out, &errb); code != ExitUsage || !strings.Contains(errb.String(), "expected text, json or auto") {
		t.Errorf("moat run --log-format xml: exit %d, %q", code, errb.String())
	}
}

// TestHumanLogLines: the text handler writes one line per record, and a
// value from outside (a log line's user name) can neither start a new
// line nor slip in a terminal escape.
func TestHumanLogLines(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(newHumanHandler(&b, slog.LevelInfo, false)).With("jail", "sshd")
	log.Warn("ban", "addr", "203.0.113.7", "user", "root\n12:00:00 ERROR forged\x1b[2J", "err", errors.New("no such file"), slog.Group("g", "n", 3))
	got := b.String()
	want := `WARN ban jail=sshd addr=203.0.113.7 user="root\n12:00:00 ERROR forged\x1b[2J" err="no such file" g.n=3` + "\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if json.Valid([]byte(got)) || strings.Count(got, "\n") != 1 {
		t.Errorf("not one human line: %q", got)
	}
}

// TestCommandsNeverLogJSON attacks "no JSON in human output": a command
// that is not a daemon (config check here, with a warning from the
// gateway's build) writes no JSON line and no info-level noise.
func TestCommandsNeverLogJSON(t *testing.T) {
	var b bytes.Buffer
	log := commandLogger(&b)
	log.Info("change step applied", "id", "x")
	log.Warn("reconcile", "err", "x")
	if got := b.String(); got != "WARN reconcile err=x\n" {
		t.Errorf("command log %q", got)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "moat.yaml")
	os.WriteFile(path, []byte("gateway:\n  http: 127.0.0.1:0\n  https: 127.0.0.1:0\n  acme:\n    storage: "+dir+"/certs\n  sites:\n    - host: a.example.com\n      routes:\n        - upstream: http://127.0.0.1:1\n          allow: [vpn]\n"), 0o600)
	var out, errb bytes.Buffer
	Main([]string{"config", "check", path}, nil, &out, &errb)
	for _, l := range strings.Split(out.String()+errb.String(), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "{") {
			t.Errorf("a JSON line in a command's output: %s", l)
		}
	}
}
