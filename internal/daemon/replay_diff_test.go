package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/control"
	"github.com/moat-sh/moat/internal/filter/filtertest"
	"github.com/moat-sh/moat/internal/guard"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/lab"
)

// recordingSets are kernel sets in memory that remember what was added.
type recordingSets struct {
	mu    sync.Mutex
	elems map[netip.Prefix]bool
}

func (s *recordingSets) Add(_ context.Context, es []ban.SetElement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range es {
		s.elems[e.Prefix] = true
	}
	return nil
}

func (s *recordingSets) Delete(_ context.Context, ps []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		delete(s.elems, p)
	}
	return nil
}

func (s *recordingSets) List(context.Context) ([]ban.SetElement, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ban.SetElement
	for p := range s.elems {
		out = append(out, ban.SetElement{Prefix: p})
	}
	return out, nil
}

// TestReplayPredictsRun is the differential test of the guard's one
// pipeline: a realistic sshd log (brute force over IPv4 and IPv6, probes,
// scanners, logins, other daemons' noise) appended to the file `moat run`
// follows, and `moat jail replay` of the same file with the same config,
// must make exactly the same bans: same prefixes, same failure counts,
// same offences.
func TestReplayPredictsRun(t *testing.T) {
	// The control socket answers root only.
	lab.RequireRoot(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "auth.log")
	if err := os.WriteFile(logPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The log's times end now: bans (a day long) are all still active
	// when the daemon checks its store, as they are in the replay.
	var buf bytes.Buffer
	const lines, rate = 30000, 200.0
	start := time.Now().Add(-time.Duration(float64(lines)/rate*float64(time.Second)) - time.Minute).Truncate(time.Second)
	if _, err := (filtertest.SSHDLog{Lines: lines, Attackers: 400, Start: start, Seed: 18, Rate: rate}).Write(&buf); err != nil {
		t.Fatal(err)
	}
	// Failures from sources never banned, whatever the log says: the
	// host's own addresses, loopback, the operator's SSH client.
	t.Setenv("SSH_CONNECTION", "198.51.100.77 50022 192.0.2.1 22")
	never := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"), netip.MustParseAddr("198.51.100.77")}
	if ifs, err := host.New("").Interfaces(); err == nil {
		for _, i := range ifs {
			for _, a := range i.Addrs {
				if !a.Addr().IsLoopback() {
					never = append(never, a.Addr())
				}
			}
		}
	}
	at := time.Now().Add(-30 * time.Second)
	for _, a := range never {
		for i := range 6 {
			fmt.Fprintf(&buf, "%s vps sshd[%d]: Failed password for root from %s port %d ssh2\n", at.Format(time.Stamp), 900000+i, a, 40000+i)
		}
	}
	// A burst at the end: 200 attackers, 20 failures each, in one write,
	// so that a source's failures after its decision arrive before the
	// decision reached the store.
	var burst bytes.Buffer
	for k := range 20 {
		for i := range 200 {
			fmt.Fprintf(&burst, "%s vps sshd[%d]: Failed password for root from 198.19.%d.%d port 4242 ssh2\n", time.Now().Format(time.Stamp), 500000+k*200+i, i>>8, i&255)
		}
	}
	cfgPath := filepath.Join(dir, "moat.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`guard:
  jails:
    sshd:
      source: file
      paths: [%s]
      mode: aggressive
      maxretry: 4
      findtime: 10m
      bantime: 1d
`, logPath)), 0o600)

	sock := filepath.Join(dir, "moat.sock")
	sets := &recordingSets{elems: map[netip.Prefix]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: cfgPath, Explicit: true, Socket: sock, StateDir: filepath.Join(dir, "state"),
			Log: slog.New(slog.DiscardHandler), Sets: sets, CheckEvery: time.Hour, AuditEvery: time.Hour})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("moat run: %v", err)
		}
	}()
	jails := func() []jailStatus {
		var js []jailStatus
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		if err := control.Call(cctx, sock, control.CmdJails, nil, &js); err != nil {
			return nil
		}
		return js
	}
	waitUntil(t, 20*time.Second, "the sshd jail to start", func() bool { return len(jails()) == 1 })
	base, primers := sourceReading(t, logPath, "sshd", jails)

	// Appended in pieces, as a log grows.
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	for len(data) > 0 {
		n := min(len(data), 64<<10)
		if i := bytes.LastIndexByte(data[:n], '\n'); i >= 0 && n < len(data) {
			n = i + 1
		}
		f.Write(data[:n])
		data = data[n:]
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	f.Write(burst.Bytes())
	f.Close()
	buf.Write(burst.Bytes())
	want := bytes.Count(buf.Bytes(), []byte("\n"))
	waitUntil(t, 60*time.Second, "moat run to read every line", func() bool {
		js := jails()
		return len(js) == 1 && js[0].Lines >= base+uint64(want)
	})
	// Beyond the test's lines, only those appended to see the source
	// open, some of them perhaps still on their way at base.
	if js := jails(); len(js) != 1 || js[0].Lines > base+uint64(want+primers) {
		t.Fatalf("moat run read more lines than were written: %+v, want %d + at most %d", js, base+uint64(want), primers)
	}
	cfg, err := config.Load(cfgPath, true)
	if err != nil {
		t.Fatal(err)
	}
	res, n, err := guard.Replay(cfg, nil, "sshd", logPath)
	if err != nil || n != want+primers {
		t.Fatalf("replay: %d lines, %v, want %d and %d that match no filter", n, err, want, primers)
	}
	// The replay says how many bans to wait for: a count, not a quiet spell.
	var got []ban.Ban
	waitUntil(t, 60*time.Second, "the bans to reach the store", func() bool {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		got = nil
		if err := control.Call(cctx, sock, control.CmdBans, nil, &got); err != nil {
			return false
		}
		return len(got) >= len(res.Bans)
	})

	// Each ban decided once, as in the replay: not again for the
	// failures that followed it before it reached the store.
	if js := jails(); len(js) != 1 || js[0].Stats.Decisions != uint64(len(res.Bans)) {
		t.Errorf("moat run decided %+v times, the replay %d", js, len(res.Bans))
	}
	type key struct {
		p                 netip.Prefix
		failures, offence int
	}
	var run, replay []key
	for _, b := range got {
		run = append(run, key{b.Prefix, b.Failures, b.Offence})
	}
	for _, d := range res.Bans {
		replay = append(replay, key{d.Prefix, d.Failures, d.Offence})
	}
	less := func(s []key) func(i, j int) bool {
		return func(i, j int) bool { return s[i].p.String() < s[j].p.String() }
	}
	sort.Slice(run, less(run))
	sort.Slice(replay, less(replay))
	if len(replay) < 50 {
		t.Fatalf("the replay made only %d bans: the log does not exercise the jail", len(replay))
	}
	if !slices.Equal(run, replay) {
		t.Errorf("moat run made %d bans, the replay predicted %d", len(run), len(replay))
		for i := 0; i < max(len(run), len(replay)) && i < 10; i++ {
			var r, p key
			if i < len(run) {
				r = run[i]
			}
			if i < len(replay) {
				p = replay[i]
			}
			if r != p {
				t.Errorf("  run %v, replay %v", r, p)
			}
		}
	}
	for _, k := range replay {
		for _, a := range never {
			if k.p.Contains(a) {
				t.Errorf("%s banned: it is never to be banned", k.p)
			}
		}
	}
	// And the kernel sets hold what the store holds.
	sets.mu.Lock()
	defer sets.mu.Unlock()
	for _, k := range run {
		if !sets.elems[k.p] {
			t.Errorf("%s banned in the store, not in the sets", k.p)
		}
	}
	t.Logf("%d lines, %d bans, run and replay agree", want, len(run))
}

// sourceReading appends lines matching no filter to log until the jail
// named name counts one more line than it had: a source opens its file at
// the end, so only then is what the test appends next sure to be read. It
// returns the jail's count then and how many lines it appended, of which
// those written before the source opened are never read.
func sourceReading(t *testing.T, log, name string, jails func() []jailStatus) (lines uint64, appended int) {
	t.Helper()
	count := func() uint64 {
		for _, j := range jails() {
			if j.Name == name {
				return j.Lines
			}
		}
		return 0
	}
	base := count()
	waitUntil(t, 30*time.Second, "jail "+name+" to read "+log, func() bool {
		if lines = count(); lines > base {
			return true
		}
		f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "moat test: the source reads %d\n", appended)
		f.Close()
		appended++
		return false
	})
	return lines, appended
}

func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
