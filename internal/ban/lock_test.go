package ban

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLockStateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, err := LockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A second holder, even in the same process, is refused at once and
	// told who holds it.
	_, err = LockStateDir(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second lock: %v", err)
	}
	// The store stays readable meanwhile, without the lock.
	if _, err := ReadActive(t.Context(), filepath.Join(dir, "moat.db"), t0); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := LockStateDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Release()
}

func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"192.0.2.1/32", "10.0.0.0/8", "2001:db8::/64", "::/0", "0.0.0.0/0", "255.255.255.255/32",
		"198.18.0.7/33", "10.0.0.1/8", "::ffff:1.2.3.4/128", "fe80::1%eth0/128", "1.2.3.4", "", "01.2.3.4/32", "2001:DB8::/64"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePrefix(s)
		if err != nil {
			return
		}
		// What it accepts is exactly what moat writes.
		if p.String() != s {
			t.Fatalf("accepted %q as %v", s, p)
		}
		if c, ok := CanonicalPrefix(p); !ok || c != p {
			t.Fatalf("accepted %q, not canonical", s)
		}
	})
}

func TestReadActiveWithoutDaemon(t *testing.T) {
	c := &clock{t: t0}
	path := filepath.Join(t.TempDir(), "moat.db")
	s := openTest(t, path, c)
	s.Ban(t.Context(), []Ban{auto("192.0.2.1/32", t0, time.Hour), auto("192.0.2.2/32", t0, -1)})
	// Beside the open store...
	got, err := ReadActive(t.Context(), path, t0)
	if err != nil || len(got) != 1 {
		t.Fatalf("read-only beside the store: %v %v", got, err)
	}
	s.Close()
	// ...and after it closed (no -wal, no -shm).
	got, err = ReadActive(t.Context(), path, t0)
	if err != nil || len(got) != 1 {
		t.Fatalf("read-only after close: %v %v", got, err)
	}
	// A missing store has no bans and is not created.
	missing := filepath.Join(t.TempDir(), "moat.db")
	if got, err := ReadActive(t.Context(), missing, t0); err != nil || len(got) != 0 {
		t.Fatalf("missing store: %v %v", got, err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("reading a missing store created it")
	}
}
