package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/term"
)

func TestPlanColour(t *testing.T) {
	var b bytes.Buffer
	w := colourWith(&b, term.Palette{On: true}, planLine)
	w.Write([]byte("== sshd: changes\n  warning: x\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-old\n+new\n same\npartial"))
	w.Flush()
	want := "\x1b[1m== sshd: changes\x1b[0m\n\x1b[33m  warning: x\x1b[0m\n\x1b[1m--- a/f\x1b[0m\n\x1b[1m+++ b/f\x1b[0m\n\x1b[36m@@ -1 +1 @@\x1b[0m\n\x1b[31m-old\x1b[0m\n\x1b[32m+new\x1b[0m\n same\npartial"
	if b.String() != want {
		t.Errorf("got  %q\nwant %q", b.String(), want)
	}
	// Off (NO_COLOR, a pipe): the very bytes.
	b.Reset()
	w = colourPlan(&b)
	w.Write([]byte("-old\n+new\n"))
	w.Flush()
	if b.String() != "-old\n+new\n" {
		t.Errorf("colour on a buffer: %q", b.String())
	}
}

func TestStatusColour(t *testing.T) {
	p := term.Palette{On: true}
	for in, want := range map[string]string{
		"FIREWALL  NOT LOADED (moat apply firewall --yes)":     "\x1b[1mFIREWALL\x1b[0m  \x1b[31mNOT LOADED\x1b[0m (moat apply firewall --yes)",
		"GUARD  3 active ban(s)":                               "\x1b[1mGUARD\x1b[0m  3 active ban(s)",
		"PENDING CHANGE  none":                                 "\x1b[1mPENDING CHANGE\x1b[0m  none",
		"HOST":                                                 "\x1b[1mHOST\x1b[0m",
		"loaded, 12 rules, NOT persisted for boot":             "loaded, 12 rules, \x1b[31mNOT persisted for boot\x1b[0m",
		"  sshd       10 lines, 2 failures, 0 bans, 1 tracked": "  sshd       10 lines, 2 failures, 0 bans, 1 tracked",
	} {
		if got := statusLine(p, in); got != want {
			t.Errorf("%q:\n got  %q\n want %q", in, got, want)
		}
	}
	if !strings.Contains(statusLine(p, "  critical: sshd allows passwords"), "\x1b[31m") {
		t.Error("critical finding not red")
	}
}

// TestApplyColourPassesProgress: a progress line rewritten in place goes
// through the colour filter at once (not held until a newline), and the
// filter says whether it writes to a terminal.
func TestApplyColourPassesProgress(t *testing.T) {
	var b bytes.Buffer
	w := colourWith(&b, term.Palette{On: true}, applyLine)
	w.Write([]byte("\rapt-get install unattended-upgrades… 2s"))
	if b.String() != "\rapt-get install unattended-upgrades… 2s" {
		t.Errorf("progress held back: %q", b.String())
	}
	w.Write([]byte("\rapt-get install unattended-upgrades: installed in 3s\nchange 42 applied in 3s, waiting for confirm (timer)\n"))
	if !strings.Contains(b.String(), "\x1b[33mchange 42 applied") {
		t.Errorf("%q", b.String())
	}
	if term.IsTerminal(w) {
		t.Error("a filter over a buffer claims a terminal")
	}
}

// TestApplyOutputOnAPTY: on a real terminal apply's output is coloured
// and progress rewrites itself in place; NO_COLOR drops the colour but
// not the terminal (progress still rewrites in place); TERM=dumb alike.
// (openPTY: logging_test.go.)
func TestApplyOutputOnAPTY(t *testing.T) {
	_, tty := openPTY(t)
	for _, env := range []struct {
		name, key, val string
		colour         bool
	}{
		{"plain", "TERM", "xterm", true},
		{"NO_COLOR", "NO_COLOR", "1", false},
		{"TERM=dumb", "TERM", "dumb", false},
	} {
		t.Run(env.name, func(t *testing.T) {
			t.Setenv("NO_COLOR", "")
			t.Setenv("TERM", "xterm")
			t.Setenv(env.key, env.val)
			w := colourApply(tty)
			if !term.IsTerminal(w) {
				t.Error("apply's writer over a pty does not say it is a terminal: progress would print plain lines")
			}
			_, coloured := w.(*lineColour)
			if coloured != env.colour {
				t.Errorf("colour %v, want %v", coloured, env.colour)
			}
		})
	}
	var b bytes.Buffer
	if term.IsTerminal(colourApply(&b)) {
		t.Error("a buffer counts as a terminal")
	}
}
