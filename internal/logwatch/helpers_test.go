package logwatch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// strict mirrors lab.Require without importing the lab (it needs root
// tooling this package's tests do not).
func require(t testing.TB, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("MOAT_TEST_STRICT") == "1" {
		t.Fatalf("%s (MOAT_TEST_STRICT=1: not skipping)", reason)
	}
	t.Skip(reason)
}

// collector keeps copies of the lines it acknowledged.
type collector struct {
	mu    sync.Mutex
	lines []Line
	// fail, when set, is asked about every batch before it is kept; a
	// non-nil error is returned instead of acknowledging.
	fail  func(batch []Line) error
	delay func(batch []Line)
}

func (c *collector) handle(batch []Line) error {
	if c.delay != nil {
		c.delay(batch)
	}
	if c.fail != nil {
		if err := c.fail(batch); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range batch {
		l.Text = append([]byte(nil), l.Text...)
		if l.Fields != nil {
			m := make(map[string]string, len(l.Fields))
			for k, v := range l.Fields {
				m[k] = v
			}
			l.Fields = m
		}
		c.lines = append(c.lines, l)
	}
	return nil
}

func (c *collector) snapshot() []Line {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Line(nil), c.lines...)
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

func (c *collector) texts() []string {
	var s []string
	for _, l := range c.snapshot() {
		s = append(s, string(l.Text))
	}
	return s
}

// running is a source started in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, src Source, h Handler) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- src.Run(ctx, h) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the source and returns what Run returned.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // stop is idempotent
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("source did not stop within 10s of cancel")
		return nil
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// numbered lines: "L00000042 <padding>".
func numbered(i int) string { return fmt.Sprintf("L%08d some padding to look like a log line", i) }

// number parses a numbered line; ok is false for anything else.
func number(s string) (int, bool) {
	if len(s) != len(numbered(0)) || s[0] != 'L' {
		return 0, false
	}
	n, err := strconv.Atoi(s[1:9])
	return n, err == nil && s == numbered(n)
}

func appendFile(t testing.TB, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// debugLog returns a debug logger whose output is shown only when the
// test fails.
func debugLog(t testing.TB) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("debug log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
