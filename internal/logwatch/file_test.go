package logwatch

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func newFileSource(t testing.TB, cfg FileConfig) *File {
	t.Helper()
	if cfg.Poll == 0 {
		cfg.Poll = 50 * time.Millisecond
	}
	s, err := NewFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startResumed starts src and returns once it has chosen where to start
// reading: a line appended before that may rightly be skipped.
func startResumed(t *testing.T, src *File, h Handler) *running {
	t.Helper()
	ready := make(chan struct{})
	src.resumed = func() { close(ready) }
	r := start(t, src, h)
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the source did not start within 30s")
	}
	return r
}

func TestFilePartialLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendFile(t, path, "one\ntw")
	var c collector
	start(t, newFileSource(t, FileConfig{Path: path, Start: StartAtBeginning}), c.handle)
	waitFor(t, 5*time.Second, "first line", func() bool { return c.len() == 1 })
	time.Sleep(100 * time.Millisecond)
	if got := c.texts(); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("before the newline: got %q, want only the complete line", got)
	}
	appendFile(t, path, "o\n\nthree\n")
	waitFor(t, 5*time.Second, "rest", func() bool { return c.len() == 4 })
	if got, want := c.texts(), []string{"one", "two", "", "three"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, l := range c.snapshot() {
		if l.Source != path || !l.Time.IsZero() || l.Fields != nil || l.Truncated {
			t.Errorf("line %+v: want Source=path, zero Time, nil Fields, not truncated", l)
		}
	}
	if last := c.snapshot()[3].Pos; last.Offset != int64(len("one\ntwo\n\nthree\n")) || last.Ino == 0 {
		t.Errorf("last position %+v: want offset at end of file and an inode", last)
	}
}

func TestFileLongLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	const max = 64
	long := strings.Repeat("x", 1000)
	appendFile(t, path, "short\n"+long+"\nafter\n"+strings.Repeat("y", max)+"\n")
	var c collector
	src := newFileSource(t, FileConfig{Path: path, Start: StartAtBeginning, MaxLine: max})
	start(t, src, c.handle)
	waitFor(t, 5*time.Second, "4 lines", func() bool { return c.len() == 4 })

	// A long line arriving in pieces, each read seeing part of it.
	appendFile(t, path, strings.Repeat("a", 40))
	time.Sleep(60 * time.Millisecond)
	appendFile(t, path, strings.Repeat("b", 40))
	time.Sleep(60 * time.Millisecond)
	appendFile(t, path, strings.Repeat("c", 400))
	time.Sleep(60 * time.Millisecond)
	appendFile(t, path, "c\nend\n")
	waitFor(t, 5*time.Second, "6 lines", func() bool { return c.len() == 6 })

	got := c.snapshot()
	want := []struct {
		text string
		cut  bool
	}{
		{"short", false},
		{long[:max], true},
		{"after", false},
		{strings.Repeat("y", max), false},
		{(strings.Repeat("a", 40) + strings.Repeat("b", 40))[:max], true},
		{"end", false},
	}
	for i, w := range want {
		if string(got[i].Text) != w.text || got[i].Truncated != w.cut {
			t.Errorf("line %d: got %q truncated=%v, want %q truncated=%v", i, got[i].Text, got[i].Truncated, w.text, w.cut)
		}
	}
	// Positions stay on line boundaries even for cut lines.
	if off, want := got[1].Pos.Offset, int64(len("short\n"+long+"\n")); off != want {
		t.Errorf("cut line position %d, want %d (after its newline)", off, want)
	}
	if st := src.Stats(); st.Long != 2 || st.Lines != 6 {
		t.Errorf("stats %+v: want Long=2 Lines=6", st)
	}
}

func TestFileCreatedLater(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later", "logs") // the directory does not exist either
	path := filepath.Join(dir, "app.log")
	var c collector
	// StartAtEnd does not apply to a file that appears after the start.
	startResumed(t, newFileSource(t, FileConfig{Path: path}), c.handle)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "first\nsecond\n")
	waitFor(t, 5*time.Second, "lines of the new file", func() bool { return c.len() == 2 })
	appendFile(t, path, "third\n")
	waitFor(t, 5*time.Second, "third line", func() bool { return c.len() == 3 })
	if got, want := c.texts(), []string{"first", "second", "third"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestFileStartAtEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendFile(t, path, "old 1\nold 2\npart")
	var c collector
	startResumed(t, newFileSource(t, FileConfig{Path: path, Store: NewMemStore()}), c.handle)
	appendFile(t, path, "ial\nnew\n")
	waitFor(t, 5*time.Second, "new lines", func() bool { return c.len() == 2 })
	// The partial last line is taken whole once it ends.
	if got, want := c.texts(), []string{"partial", "new"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestFileTruncationDetected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendFile(t, path, "a1\na2\na3\n")
	var c collector
	src := newFileSource(t, FileConfig{Path: path, Start: StartAtBeginning})
	start(t, src, c.handle)
	waitFor(t, 5*time.Second, "3 lines", func() bool { return c.len() == 3 })
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "b1\n")
	waitFor(t, 5*time.Second, "line after truncation", func() bool { return c.len() == 4 })
	// Truncated and regrown past the old offset, with other first bytes.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "c1 longer than before\nc2\n")
	waitFor(t, 5*time.Second, "lines after regrowth", func() bool { return c.len() == 6 })
	if got, want := c.texts(), []string{"a1", "a2", "a3", "b1", "c1 longer than before", "c2"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if st := src.Stats(); st.Truncations != 2 {
		t.Errorf("Truncations = %d, want 2", st.Truncations)
	}
}

func TestFileHandlerErrorStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendFile(t, path, "x\n")
	store := NewMemStore()
	boom := errors.New("boom")
	src := newFileSource(t, FileConfig{Path: path, Start: StartAtBeginning, Store: store})
	r := start(t, src, func([]Line) error { return boom })
	select {
	case err := <-r.done:
		if !errors.Is(err, boom) {
			t.Fatalf("Run = %v, want the handler's error", err)
		}
		r.done <- err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return the handler's error")
	}
	// Only where reading started is recorded.
	if p, _, _ := store.Load(path); p.Offset != 0 {
		t.Fatalf("position %v saved for an unacknowledged batch", p)
	}
}

func TestFileStopIsPrompt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	var c collector
	r := start(t, newFileSource(t, FileConfig{Path: path, Poll: time.Hour}), c.handle)
	time.Sleep(20 * time.Millisecond)
	// stop fails after 10 s: prompt against the hour's poll, without
	// timing a loaded machine.
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
}
