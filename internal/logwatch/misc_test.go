package logwatch

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/host"
)

func TestPositionText(t *testing.T) {
	for _, p := range []Position{
		{},
		{Dev: 65024, Ino: 9977989, Offset: 329000, HeadLen: 512, HeadSum: 0x930fd5c4},
		{Dev: 1, Ino: 2},
		{Cursor: "s=5197c4deb13149b884182a758ea18184;i=2;b=eae5;m=5d968b69;t=660c2fe5be18a;x=60393cdb2cc8e584"},
	} {
		b, err := p.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var q Position
		if err := q.UnmarshalText(b); err != nil {
			t.Fatalf("UnmarshalText(%q): %v", b, err)
		}
		if q != p {
			t.Errorf("round trip of %+v gave %+v (text %q)", p, q, b)
		}
	}
	for _, bad := range []string{"x", "file:1:2:3", "file:1:2:-3:0:0", "file:1:2:3:4096:0", "file:a:2:3:0:0", "journal:", "journal:a\nb", "file:1:2:3:4:zz"} {
		var q Position
		if err := q.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) = %+v, want an error", bad, q)
		}
	}
}

func TestFileStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "positions.json")
	s, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Load("a"); ok {
		t.Fatal("empty store has a position")
	}
	pa := Position{Dev: 1, Ino: 2, Offset: 3, HeadLen: 4, HeadSum: 5}
	pb := Position{Cursor: "s=1;i=2"}
	if err := s.Save("a", pa); err != nil {
		t.Fatal(err)
	}
	if err := s.Save("b", pb); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok, _ := s2.Load("a"); !ok || p != pa {
		t.Errorf("reloaded a = %+v, %v", p, ok)
	}
	if p, ok, _ := s2.Load("b"); !ok || p != pb {
		t.Errorf("reloaded b = %+v, %v", p, ok)
	}
	var doc map[string]any
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &doc); err != nil || doc["generator"] != "moat logwatch" {
		t.Errorf("file %s: want JSON naming moat", b)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	os.WriteFile(path, []byte("{"), 0o644)
	if _, err := OpenFileStore(path); err == nil || !strings.Contains(err.Error(), "delete the file") {
		t.Errorf("corrupt store: %v, want an error with a hint", err)
	}
	// A failed save leaves the old value in place.
	ro := &FileStore{path: filepath.Join(t.TempDir(), "missing", "p.json"), m: map[string]Position{"a": pa}}
	if err := ro.Save("a", pb); err == nil {
		t.Fatal("save into a missing directory succeeded")
	}
	if p, _, _ := ro.Load("a"); p != pa {
		t.Errorf("after a failed save a = %+v, want the old position", p)
	}
}

func TestEvents(t *testing.T) {
	ev := NewEvents("gateway", 4)
	buf := []byte("first")
	for i := range 6 {
		ok := ev.Push(buf, map[string]string{"n": string(rune('0' + i))})
		if want := i < 4; ok != want {
			t.Errorf("push %d = %v, want %v", i, ok, want)
		}
		copy(buf, "XXXXX") // the producer reuses its buffer
	}
	if ev.Dropped() != 2 {
		t.Errorf("Dropped = %d, want 2", ev.Dropped())
	}
	long := make([]byte, DefaultMaxLine+10)
	var c collector
	r := start(t, ev, c.handle)
	waitFor(t, 5*time.Second, "4 events", func() bool { return c.len() == 4 })
	ev.Push(long, nil)
	waitFor(t, 5*time.Second, "the long event", func() bool { return c.len() == 5 })
	got := c.snapshot()
	if string(got[0].Text) != "first" || got[0].Fields["n"] != "0" || got[0].Source != "gateway" || got[0].Time.IsZero() {
		t.Errorf("first event %+v", got[0])
	}
	if l := got[4]; len(l.Text) != DefaultMaxLine || !l.Truncated {
		t.Errorf("long event: %d bytes, truncated=%v", len(l.Text), l.Truncated)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	boom := errors.New("boom")
	ev.Push([]byte("x"), nil)
	if err := ev.Run(context.Background(), func([]Line) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Run = %v, want the handler's error", err)
	}
}

// BenchmarkEventsPush measures the producer's side: it must never block.
func BenchmarkEventsPush(b *testing.B) {
	ev := NewEvents("gateway", 1024)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ev.Run(ctx, func([]Line) error { return nil })
	msg := []byte("auth failure from 203.0.113.7 host example.com")
	b.ReportAllocs()
	for b.Loop() {
		ev.Push(msg, nil)
	}
}

func TestChooseSSHD(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		kind  Kind
		paths []string
	}{
		{"journald only (Debian 12)", []string{"run/systemd/journal/socket", "usr/bin/journalctl"}, KindJournal, nil},
		// The journal proves who wrote an entry, auth.log does not: with
		// both, the journal is read (and auth.log's copy is not).
		{"journald and rsyslog", []string{"run/systemd/journal/socket", "usr/bin/journalctl", "var/log/auth.log"}, KindJournal, nil},
		{"rsyslog, no journald", []string{"var/log/auth.log"}, KindFile, []string{"/var/log/auth.log"}},
		{"RHEL without journald", []string{"var/log/secure"}, KindFile, []string{"/var/log/secure"}},
		{"RHEL with journald", []string{"run/systemd/journal/socket", "bin/journalctl", "var/log/secure"}, KindJournal, nil},
		{"journald socket but no journalctl", []string{"run/systemd/journal/socket"}, KindFile, []string{"/var/log/auth.log"}},
		{"nothing", nil, KindFile, []string{"/var/log/auth.log"}},
		// journald that keeps nothing (forwarding to rsyslog only) has
		// no entries to read: the file is all there is.
		{"journald with Storage=none", []string{"run/systemd/journal/socket", "usr/bin/journalctl", "var/log/auth.log",
			"etc/systemd/journald.conf.d/10-forward.conf=[Journal]\nStorage=none\nForwardToSyslog=yes\n"}, KindFile, []string{"/var/log/auth.log"}},
		{"Storage=none undone by a later drop-in", []string{"run/systemd/journal/socket", "usr/bin/journalctl", "var/log/auth.log",
			"etc/systemd/journald.conf=[Journal]\nStorage=none\n", "run/systemd/journald.conf.d/50-keep.conf=[Journal]\n# keep\nStorage=volatile\n"}, KindJournal, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tc.files {
				f, content, _ := strings.Cut(f, "=")
				p := filepath.Join(root, f)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c := ChooseSSHD(host.New(root))
			if c.Kind != tc.kind || !slices.Equal(c.Paths, tc.paths) || c.Reason == "" {
				t.Fatalf("ChooseSSHD = %+v, want %s %v", c, tc.kind, tc.paths)
			}
			if c.Kind == KindJournal {
				if !slices.Contains(c.Matches, "_COMM=sshd-session") || !slices.Contains(c.Matches, "_UID=0") {
					t.Errorf("matches %q lack sshd-session or root", c.Matches)
				}
				for _, m := range c.Matches {
					if !strings.HasPrefix(m, "_") {
						t.Errorf("match %q is on a field the sender sets", m)
					}
				}
				if _, err := NewJournal(JournalConfig{Matches: c.Matches}); err != nil {
					t.Errorf("the chosen matches do not make a source: %v", err)
				}
			}
		})
	}
}

func TestReadFileSplitsAsFollowing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	long := strings.Repeat("x", 100)
	os.WriteFile(p, []byte("one\ntwo\r\n"+long+"\n\nlast"), 0o644)
	var texts []string
	var cut []bool
	n, err := ReadFile(p, 50, func(b []Line) error {
		for _, l := range b {
			texts = append(texts, string(l.Text))
			cut = append(cut, l.Truncated)
		}
		return nil
	})
	if err != nil || n != 5 {
		t.Fatalf("ReadFile: %d lines, %v", n, err)
	}
	want := []string{"one", "two\r", long[:50], "", "last"}
	if !slices.Equal(texts, want) || !slices.Equal(cut, []bool{false, false, true, false, false}) {
		t.Fatalf("lines %q cut %v, want %q with the third cut", texts, cut, want)
	}
}
