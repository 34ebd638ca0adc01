package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/blocklist"
	"github.com/moat-sh/moat/internal/control"
	"github.com/moat-sh/moat/internal/lab"
)

type fakeBlockSink struct {
	mu    sync.Mutex
	last  []netip.Prefix
	loads int
}

func (f *fakeBlockSink) ReplaceBlocklist(_ context.Context, ps []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last, f.loads = ps, f.loads+1
	return nil
}

func (f *fakeBlockSink) get() (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprint(f.last), f.loads
}

// TestBlocklistsInDaemon: moat run loads guard.blocklists, carving out
// the admin source a list names, shows them in moat status, and after a
// restart with the list's origin gone enforces the cached copy.
func TestBlocklistsInDaemon(t *testing.T) {
	lab.RequireRoot(t) // the control socket answers root only
	dir := t.TempDir()
	list := filepath.Join(dir, "drop.txt")
	os.WriteFile(list, []byte("; SBL\n198.51.100.0/24 ; SBL1\n203.0.113.0/24\n2001:db8::/32\n"), 0o644)
	authLog := filepath.Join(dir, "auth.log")
	os.WriteFile(authLog, nil, 0o600)
	cfgPath := filepath.Join(dir, "moat.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`host:
  admin:
    sources: [203.0.113.9/32]
guard:
  jails:
    sshd:
      source: file
      paths: [%s]
  blocklists:
    - name: drop
      file: %s
`, authLog, list)), 0o600)
	reload := make(chan struct{}, 1)
	run := func(sink *fakeBlockSink) (Status, func()) {
		sock := filepath.Join(dir, "moat.sock")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Options{ConfigPath: cfgPath, Explicit: true, Socket: sock, StateDir: filepath.Join(dir, "state"),
				Log: slog.New(slog.DiscardHandler), Sets: &recordingSets{elems: map[netip.Prefix]bool{}},
				CheckEvery: time.Hour, AuditEvery: time.Hour, blockSink: sink, Reload: reload})
		}()
		var st Status
		waitUntil(t, 20*time.Second, "the blocklist in moat status", func() bool {
			cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer ccancel()
			st = Status{}
			return control.Call(cctx, sock, control.CmdStatus, nil, &st) == nil && st.Blocklists != nil &&
				len(st.Blocklists.Lists) == 1 && st.Blocklists.Lists[0].Loaded && !st.Blocklists.Loaded.IsZero()
		})
		return st, func() { cancel(); <-done }
	}
	sink := &fakeBlockSink{}
	st, stop := run(sink)
	got, _ := sink.get()
	if strings.Contains(got, "203.0.113.0/24") || !strings.Contains(got, "198.51.100.0/24") || !strings.Contains(got, "2001:db8::/32") {
		t.Errorf("loaded %s: want the lists without the admin source", got)
	}
	if st.Blocklists.CarvedTotal != 1 || st.Blocklists.Carved[0].Why != "admin" || st.Blocklists.Lists[0].Entries != 3 {
		t.Errorf("status: %+v", st.Blocklists)
	}
	var b bytes.Buffer
	writeBlocklists(&b, st.Blocklists, time.Now())
	if !strings.Contains(b.String(), "BLOCKLISTS") || !strings.Contains(b.String(), "drop") || !strings.Contains(b.String(), "carved out") {
		t.Errorf("status text:\n%s", b.String())
	}
	stop()

	// The origin is gone: the restart enforces the cached copy.
	os.Remove(list)
	sink2 := &fakeBlockSink{}
	st, stop = run(sink2)
	defer stop()
	if got2, _ := sink2.get(); got2 != got {
		t.Errorf("after restart without the origin: %s, want %s", got2, got)
	}
	waitUntil(t, 10*time.Second, "the failed refresh", func() bool {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		st = Status{}
		return control.Call(cctx, filepath.Join(dir, "moat.sock"), control.CmdStatus, nil, &st) == nil && st.Blocklists.Lists[0].LastError != ""
	})
	l := st.Blocklists.Lists[0]
	if !l.FromCache || l.Entries != 3 {
		t.Errorf("after restart: %+v", l)
	}
	var _ blocklist.Sink = sink

	// The lists removed from the config: a reload empties the sets.
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("guard:\n  jails:\n    sshd:\n      source: file\n      paths: [%s]\n", authLog)), 0o600)
	_, before := sink2.get()
	reload <- struct{}{}
	waitUntil(t, 10*time.Second, "the sets emptied", func() bool {
		last, n := sink2.get()
		return n > before && last == "[]"
	})
}
