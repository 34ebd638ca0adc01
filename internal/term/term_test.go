package term

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestColourAllowed(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, true},
		{map[string]string{"NO_COLOR": "1"}, false},
		{map[string]string{"NO_COLOR": ""}, true}, // no-color.org: set and not empty
		{map[string]string{"TERM": "dumb"}, false},
		{map[string]string{"TERM": "xterm-256color"}, true},
	} {
		if got := colourAllowed(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.env, got, tc.want)
		}
	}
	var b bytes.Buffer
	if Colour(&b) || For(&b).Red("x") != "x" {
		t.Error("a buffer is not a terminal: no colour")
	}
	if got := (Palette{On: true}).Red("x"); got != "\x1b[31mx\x1b[0m" {
		t.Errorf("red %q", got)
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// TestProgress: quiet under the threshold; on a terminal one rewritten
// line; elsewhere exactly a start line and an end line, no carriage
// returns in a log.
func TestProgress(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var quick bytes.Buffer
	p := newProgress(&quick, "installing", true, c.now)
	c.t = c.t.Add(500 * time.Millisecond)
	p.tick()
	p.Done("done")
	if quick.Len() != 0 {
		t.Errorf("a quick step printed %q", quick.String())
	}

	var tty bytes.Buffer
	p = newProgress(&tty, "apt-get install unattended-upgrades", true, c.now)
	for i, d := range []string{"Unpacking unattended-upgrades", "Setting up", ""} {
		c.t = c.t.Add(time.Second)
		p.Update(d)
		p.tick()
		_ = i
	}
	p.Done("installed")
	out := tty.String()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") || strings.Count(out, "\r") != 4 {
		t.Errorf("terminal: want one line rewritten in place, got %q", out)
	}
	if !strings.Contains(out, "apt-get install unattended-upgrades… 2s  Setting up") || !strings.Contains(out, "installed in 3s") {
		t.Errorf("terminal: %q", out)
	}
	// A shorter line blanks what the longer one left.
	if !strings.Contains(out, "\rapt-get install unattended-upgrades… 3s        ") {
		t.Errorf("no padding over the longer line: %q", out)
	}

	var log bytes.Buffer
	p = newProgress(&log, "restoring bans", false, c.now)
	for range 5 {
		c.t = c.t.Add(time.Second)
		p.Update("1000 of 5000")
		p.tick()
	}
	p.Done("5000 bans")
	if got := log.String(); got != "restoring bans…\nrestoring bans: 5000 bans in 5s\n" {
		t.Errorf("not a terminal: %q", got)
	}
	p.Done("again") // harmless
}

// TestBeginWithoutOutput: a layer's slow step without an output on its
// context (the daemon under systemd, tests) shows nothing.
func TestBeginWithoutOutput(t *testing.T) {
	p := Begin(context.Background(), "apt-get install x")
	p.Update("y")
	p.Done("installed")
	var b bytes.Buffer
	q := Begin(WithOutput(context.Background(), &b), "quick")
	q.Done("done")
	if b.Len() != 0 {
		t.Errorf("a step under the threshold printed %q", b.String())
	}
}
