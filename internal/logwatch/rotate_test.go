package logwatch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logWriter appends numbered lines to a file, one write(2) per line, the
// way a logger does, and rotates it the ways logrotate does.
type logWriter struct {
	t    testing.TB
	path string
	f    *os.File
	log  *slog.Logger
	next atomic.Int64 // lines completely written
	// rotated counts the rotated files path.1…path.N.
	rotated int
	mu      sync.Mutex // held while writing a line, so a rotation can pause the writer
}

func newLogWriter(t testing.TB, path string) *logWriter {
	w := &logWriter{t: t, path: path, log: slog.New(slog.DiscardHandler)}
	w.f = w.open(os.O_CREATE)
	t.Cleanup(func() { w.f.Close() })
	return w
}

func (w *logWriter) open(flag int) *os.File {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|flag, 0o644)
	if err != nil {
		w.t.Error(err)
		return nil
	}
	return f
}

// write appends the next n lines.
func (w *logWriter) write(n int) {
	for range n {
		w.mu.Lock()
		i := w.next.Load()
		_, err := w.f.WriteString(numbered(int(i)) + "\n")
		w.next.Store(i + 1)
		w.mu.Unlock()
		if err != nil {
			w.t.Error(err)
			return
		}
	}
}

// shift renames path.N to path.N+1, ..., path.1 to path.2, as logrotate
// does before a rotation; none is deleted.
func (w *logWriter) shift() {
	for k := w.rotated; k >= 1; k-- {
		if err := os.Rename(fmt.Sprintf("%s.%d", w.path, k), fmt.Sprintf("%s.%d", w.path, k+1)); err != nil {
			w.t.Error(err)
		}
	}
	w.rotated++
}

// renameCreate rotates like logrotate's default "create" mode with a
// syslog daemon that reopens its file only when told to: the file is
// renamed to path.1, the writer goes on writing
// to the renamed file for a moment, the new file is created, and only
// then does the writer switch.
func (w *logWriter) renameCreate() {
	w.log.Debug("writer: rename+create", "next", w.next.Load())
	w.shift()
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		w.t.Error(err)
		return
	}
	w.write(3)
	nf := w.open(os.O_CREATE | os.O_EXCL)
	w.write(2)
	w.mu.Lock()
	w.f.Close()
	w.f = nf
	w.mu.Unlock()
}

// copyTruncate rotates like logrotate's copytruncate. With pause the
// writer is held for the copy and the truncate, so nothing falls into
// logrotate's own gap; it returns the range of lines written during the
// rotation, the only lines that may be lost without pause.
func (w *logWriter) copyTruncate(pause bool) (lo, hi int) {
	if pause {
		w.mu.Lock()
		defer w.mu.Unlock()
	}
	w.shift()
	lo = int(w.next.Load())
	w.log.Debug("writer: copytruncate", "next", lo)
	defer func() { w.log.Debug("writer: copytruncate done", "next", hi) }()
	src, err := os.Open(w.path)
	if err != nil {
		w.t.Error(err)
		return
	}
	defer src.Close()
	dst, err := os.Create(w.path + ".1")
	if err != nil {
		w.t.Error(err)
		return
	}
	if _, err := io.Copy(dst, src); err != nil {
		w.t.Error(err)
	}
	dst.Close()
	if err := os.Truncate(w.path, 0); err != nil {
		w.t.Error(err)
	}
	return lo, int(w.next.Load())
}

// startAnchored starts src and waits until it recorded where it starts
// reading: only then do rotations of the file concern it.
func startAnchored(t testing.TB, src *File, store Store, name string, h Handler) *running {
	t.Helper()
	r := start(t, src, h)
	waitFor(t, 5*time.Second, "the start position", func() bool { _, ok, _ := store.Load(name); return ok })
	return r
}

// checkExact fails unless lines are numbered 0..total-1, each once, in
// order.
func checkExact(t testing.TB, lines []Line, total int) {
	t.Helper()
	for i, l := range lines {
		n, ok := number(string(l.Text))
		if !ok || n != i {
			lo, hi := max(0, i-2), min(len(lines), i+3)
			var ctx []string
			for _, l := range lines[lo:hi] {
				ctx = append(ctx, string(l.Text))
			}
			t.Fatalf("line %d is %q, want %q (around it: %q)", i, l.Text, numbered(i), ctx)
		}
	}
	if len(lines) != total {
		t.Fatalf("got %d lines, want %d", len(lines), total)
	}
}

func TestFileRotationUnderWrites(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rotate func(w *logWriter)
		poll   bool // no inotify: rotations come faster than the polls
	}{
		{"rename+create", (*logWriter).renameCreate, false},
		{"rename+create polling", (*logWriter).renameCreate, true},
		{"copytruncate", func(w *logWriter) { w.copyTruncate(true) }, false},
		{"mixed", func(w *logWriter) {
			if w.next.Load()/10_000%2 == 0 {
				w.renameCreate()
			} else {
				w.copyTruncate(true)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			w := newLogWriter(t, path)
			const total, every = 120_000, 10_000
			var batches atomic.Int64
			c := collector{delay: func([]Line) {
				// A reader that falls behind now and then, so rotations
				// also happen while it is busy.
				if batches.Add(1)%40 == 0 {
					time.Sleep(3 * time.Millisecond)
				}
			}}
			log := debugLog(t)
			w.log = log
			store := NewMemStore()
			src := newFileSource(t, FileConfig{Path: path, Start: StartAtBeginning, Store: store, Log: log, Poll: 30 * time.Millisecond})
			src.noWatch = tc.poll
			startAnchored(t, src, store, path, c.handle)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for int(w.next.Load()) < total-every {
					w.write(every - int(w.next.Load())%every)
					tc.rotate(w)
				}
				w.write(total - int(w.next.Load()))
			}()
			<-done
			for deadline := time.Now().Add(20 * time.Second); c.len() < total && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // anything extra would show now
			checkExact(t, c.snapshot(), total)
			st := src.Stats()
			t.Logf("stats %+v", st)
			if st.Rotations+st.Recovered < 10 {
				t.Errorf("stats %+v: want at least 10 files finished", st)
			}
		})
	}
}

// TestFileCopyTruncateRace rotates by copytruncate while the writer keeps
// writing: lines written between the copy and the truncate may be lost
// (they are in neither file), but nothing else is, and nothing is
// delivered twice or out of order.
func TestFileCopyTruncateRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w := newLogWriter(t, path)
	const total = 150_000
	var c collector
	log := debugLog(t)
	w.log = log
	store := NewMemStore()
	src := newFileSource(t, FileConfig{Path: path, Start: StartAtBeginning, Log: log, Store: store})
	startAnchored(t, src, store, path, c.handle)
	var windows [][2]int
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.write(total)
	}()
	lastLine := func() int {
		l := c.snapshot()
		for i := len(l) - 1; i >= 0; i-- {
			if n, ok := number(string(l[i].Text)); ok {
				return n
			}
		}
		return -1
	}
	for rot := 0; rot < 8; rot++ {
		// The guarantee holds while truncations are further apart than
		// the reader's lag: wait until it has read past the last one.
		hi := 0
		if len(windows) > 0 {
			hi = windows[len(windows)-1][1]
		}
		waitFor(t, 10*time.Second, "the reader to catch up", func() bool {
			select {
			case <-done:
				return true
			default:
				return lastLine() > hi
			}
		})
		select {
		case <-done:
			rot = 8
			continue
		case <-time.After(10 * time.Millisecond):
		}
		lo, hi := w.copyTruncate(false)
		windows = append(windows, [2]int{lo, hi})
	}
	<-done
	waitFor(t, 20*time.Second, "the last line", func() bool { return lastLine() == total-1 })
	inWindow := func(n int) bool {
		for _, w := range windows {
			if n >= w[0] && n <= w[1] {
				return true
			}
		}
		return false
	}
	prev, fragments, lost := -1, 0, 0
	for _, l := range c.snapshot() {
		n, ok := number(string(l.Text))
		if !ok {
			// A copy taken in the middle of a write ends in a fragment.
			fragments++
			continue
		}
		if n <= prev {
			t.Fatalf("line %d after line %d: duplicate or out of order", n, prev)
		}
		for m := prev + 1; m < n; m++ {
			if !inWindow(m) {
				t.Fatalf("line %d lost outside logrotate's copy-to-truncate windows %v", m, windows)
			}
			lost++
		}
		prev = n
	}
	if fragments > len(windows) {
		t.Errorf("%d fragments for %d rotations", fragments, len(windows))
	}
	t.Logf("%d rotations, %d lines lost inside their windows, %d fragments; stats %+v", len(windows), lost, fragments, src.Stats())
}

// TestFileRestartResumes stops and restarts the source repeatedly while
// the writer writes and rotates: the lines acknowledged across all runs
// are every line once, in order.
func TestFileRestartResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w := newLogWriter(t, path)
	log := debugLog(t)
	w.log = log
	store := NewMemStore()
	const total = 100_000
	var c collector
	// A first run records where reading starts before anything is
	// written; a source that never ran cannot know about rotations.
	r0 := start(t, newFileSource(t, FileConfig{Path: path, Store: store, Start: StartAtBeginning}), c.handle)
	waitFor(t, 5*time.Second, "the start position", func() bool { _, ok, _ := store.Load(path); return ok })
	r0.stop(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; int(w.next.Load()) < total; i++ {
			w.write(min(7_000, total-int(w.next.Load())))
			switch i % 3 {
			case 0:
				w.renameCreate()
			case 1:
				w.copyTruncate(true)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for run := 0; ; run++ {
		src := newFileSource(t, FileConfig{Path: path, Store: store, Start: StartAtBeginning, Log: log})
		p, _, _ := store.Load(path)
		log.Debug("run", "n", run, "stored", p.String(), "delivered", c.len())
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- src.Run(ctx, c.handle) }()
		select {
		case <-done:
			deadline := time.Now().Add(20 * time.Second)
			for c.len() < total && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			cancel()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			checkExact(t, c.snapshot(), total)
			t.Logf("%d runs", run+1)
			return
		case <-time.After(time.Duration(5+run%4*7) * time.Millisecond):
		}
		cancel()
		t0 := time.Now()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		log.Debug("stopped", "in", time.Since(t0))
	}
}

// TestFileRestartAfterRotation rotates while the source is stopped: the
// rest of the old file is read from its rotated name first.
func TestFileRestartAfterRotation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rotate func(w *logWriter)
	}{
		{"rename+create", (*logWriter).renameCreate},
		{"copytruncate", func(w *logWriter) { w.copyTruncate(true) }},
		{"copytruncate and regrow", func(w *logWriter) { w.copyTruncate(true); w.write(3_000) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			w := newLogWriter(t, path)
			store := NewMemStore()
			var c collector
			w.write(1_000)
			r := start(t, newFileSource(t, FileConfig{Path: path, Store: store, Start: StartAtBeginning}), c.handle)
			waitFor(t, 5*time.Second, "first lines", func() bool { return c.len() == 1_000 })
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			w.write(500)
			tc.rotate(w)
			w.write(500)
			src := newFileSource(t, FileConfig{Path: path, Store: store, Start: StartAtBeginning})
			start(t, src, c.handle)
			total := int(w.next.Load())
			waitFor(t, 5*time.Second, "all lines", func() bool { return c.len() >= total })
			time.Sleep(50 * time.Millisecond)
			checkExact(t, c.snapshot(), total)
			if st := src.Stats(); st.Recovered != 1 {
				t.Errorf("stats %+v: want the rotated file recovered once", st)
			}
		})
	}
}

// TestFileCrashRedelivers models a crash: the store is copied as it stood
// at some moment during the run (no final save), and a new source starts
// from that copy. Every line is delivered; the only duplicates are lines
// acknowledged after the copied position.
func TestFileCrashRedelivers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w := newLogWriter(t, path)
	w.write(50_000)
	store := NewMemStore()
	var crashed Position
	var c1 collector
	c1.fail = func(batch []Line) error {
		if n, _ := number(string(batch[0].Text)); n > 20_000 && crashed.IsZero() {
			crashed, _, _ = store.Load(path) // what a crash would leave on disk
		}
		return nil
	}
	r := start(t, newFileSource(t, FileConfig{Path: path, Store: store, Start: StartAtBeginning, SaveInterval: time.Nanosecond}), c1.handle)
	waitFor(t, 5*time.Second, "all lines", func() bool { return c1.len() == 50_000 })
	r.stop(t)
	if crashed.IsZero() {
		t.Fatal("no position saved before the crash point")
	}
	after := NewMemStore()
	after.Save(path, crashed)
	first := firstAfter(t, c1.snapshot(), crashed)
	var c2 collector
	start(t, newFileSource(t, FileConfig{Path: path, Store: after}), c2.handle)
	waitFor(t, 5*time.Second, "redelivery", func() bool { return c2.len() >= 50_000-first })
	time.Sleep(50 * time.Millisecond)
	checkExact(t, append(c1.snapshot()[:first:first], c2.snapshot()...), 50_000)
	t.Logf("crash at line %d: %d lines delivered again", first, 50_000-first)
}

// firstAfter returns the number of the first line past pos.
func firstAfter(t testing.TB, lines []Line, pos Position) int {
	for i, l := range lines {
		if l.Pos == pos {
			return i + 1
		}
	}
	t.Fatalf("position %v is no line's", pos)
	return 0
}
