package logwatch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultJournalFields are the fields asked of journalctl (besides the
// cursor and timestamps it always writes): what the filters use, and no
// more, since every field costs parsing.
var DefaultJournalFields = []string{
	"MESSAGE", "_PID", "_UID", "SYSLOG_PID", "SYSLOG_IDENTIFIER", "_SYSTEMD_UNIT", "_COMM", "_HOSTNAME", "PRIORITY",
}

const (
	defaultRestartMin = 100 * time.Millisecond
	defaultRestartMax = 30 * time.Second
	// stableRun: a journalctl that ran this long was healthy, so the
	// next restart starts from the shortest backoff again.
	stableRun = 10 * time.Second
	// maxJSONLine bounds one line of journalctl output; a longer entry
	// is skipped and counted.
	maxJSONLine = 1 << 20
	// maxJournalBatch bounds a batch while journalctl has more buffered.
	maxJournalBatch = 1024
)

// JournalConfig configures a Journal source.
type JournalConfig struct {
	// Name is Line.Source and the Store key; "journal" when empty.
	Name string
	// Matches are journalctl match terms, FIELD=VALUE, combined as
	// journalctl does: terms on the same field are ORed, terms on
	// different fields ANDed, and a "+" term ORs the groups either side,
	// e.g. {"_SYSTEMD_UNIT=ssh.service", "+", "SYSLOG_IDENTIFIER=sshd"}.
	Matches []string
	// Namespace selects a journal namespace (journalctl --namespace).
	Namespace string
	// Directory reads the journal files in a directory instead of the
	// system journal (journalctl --directory).
	Directory string
	// Fields are the fields to fetch; DefaultJournalFields when nil.
	Fields []string
	// Journalctl is the program to run; "journalctl" from PATH when empty.
	Journalctl string
	// Store keeps the cursor between runs; nil keeps none.
	Store Store
	// MaxLine bounds MESSAGE and every field value; DefaultMaxLine when 0.
	MaxLine int
	// SaveInterval is the least time between Saves; DefaultSaveInterval
	// when 0.
	SaveInterval time.Duration
	// RestartMin and RestartMax bound the backoff between restarts of a
	// journalctl that exited; 100ms and 30s when 0.
	RestartMin, RestartMax time.Duration
	// Log receives restarts and skipped entries; nil discards them.
	Log *slog.Logger
}

// Journal follows the systemd journal by running
// `journalctl --follow --output=json` and restarting it, with backoff,
// after the last cursor it delivered whenever it exits.
//
// First start: without a stored cursor the source does not replay the
// journal; it asks for entries from the moment Run started
// (--since=@UNIXTIME), so nothing logged while journalctl starts up is
// missed. A stored cursor resumes right after it (--after-cursor). If
// journalctl keeps failing on a stored cursor (journal files vacuumed or
// corrupt), the source falls back to the cursor's own timestamp.
type Journal struct {
	cfg   JournalConfig
	stats journalCounters
}

type journalCounters struct {
	entries, skipped, restarts atomic.Uint64
}

// JournalStats counts what a Journal source did.
type JournalStats struct {
	Entries uint64
	// Skipped counts output lines that were not valid entries or were
	// longer than 1 MiB.
	Skipped uint64
	// Restarts counts journalctl restarts.
	Restarts uint64
}

// NewJournal checks cfg and returns a Journal source. journalctl is
// looked up when Run starts.
func NewJournal(cfg JournalConfig) (*Journal, error) {
	if cfg.Name == "" {
		cfg.Name = "journal"
	}
	if err := checkMatches(cfg.Matches); err != nil {
		return nil, err
	}
	if cfg.Fields == nil {
		cfg.Fields = DefaultJournalFields
	}
	for _, f := range cfg.Fields {
		if !fieldName(f) {
			return nil, fmt.Errorf("journal field %q: want upper-case letters, digits and _", f)
		}
	}
	if cfg.Namespace != "" && (strings.ContainsAny(cfg.Namespace, "/\x00\n") || strings.HasPrefix(cfg.Namespace, "-")) {
		return nil, fmt.Errorf("journal namespace %q: not a valid name", cfg.Namespace)
	}
	if cfg.Journalctl == "" {
		cfg.Journalctl = "journalctl"
	}
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = DefaultMaxLine
	}
	if cfg.RestartMin <= 0 {
		cfg.RestartMin = defaultRestartMin
	}
	if cfg.RestartMax < cfg.RestartMin {
		cfg.RestartMax = max(defaultRestartMax, cfg.RestartMin)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Journal{cfg: cfg}, nil
}

// checkMatches accepts FIELD=VALUE terms and "+" between them.
func checkMatches(m []string) error {
	for i, t := range m {
		if t == "+" {
			if i == 0 || i == len(m)-1 || m[i-1] == "+" {
				return fmt.Errorf("journal matches %q: \"+\" must stand between two terms", m)
			}
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok || !fieldName(k) {
			return fmt.Errorf("journal match %q: want FIELD=VALUE with an upper-case field name", t)
		}
		if strings.ContainsAny(v, "\x00\n") {
			return fmt.Errorf("journal match %q: control character in value", t)
		}
	}
	return nil
}

// fieldName reports whether s is a journal field name.
func fieldName(s string) bool {
	if s == "" || len(s) > 64 || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Stats returns the counters so far.
func (j *Journal) Stats() JournalStats {
	return JournalStats{Entries: j.stats.entries.Load(), Skipped: j.stats.skipped.Load(), Restarts: j.stats.restarts.Load()}
}

// args is journalctl's argument list: after cursor, or since the given
// time when there is no cursor.
func (j *Journal) args(cursor string, since time.Time) []string {
	a := []string{"--follow", "--output=json", "--all", "--no-pager", "--quiet",
		"--output-fields=" + strings.Join(j.cfg.Fields, ",")}
	if j.cfg.Namespace != "" {
		a = append(a, "--namespace="+j.cfg.Namespace)
	}
	if j.cfg.Directory != "" {
		a = append(a, "--directory="+j.cfg.Directory)
	}
	if cursor != "" {
		a = append(a, "--after-cursor="+cursor)
	} else {
		us := since.UnixMicro()
		a = append(a, fmt.Sprintf("--since=@%d.%06d", us/1e6, us%1e6))
	}
	if len(j.cfg.Matches) > 0 {
		a = append(a, "--")
		a = append(a, j.cfg.Matches...)
	}
	return a
}

// errHandler marks an error that came from the handler.
type errHandler struct{ err error }

func (e errHandler) Error() string { return e.err.Error() }

// Run follows the journal until ctx is cancelled.
func (j *Journal) Run(ctx context.Context, h Handler) (err error) {
	com := newCommitter(j.cfg.Store, j.cfg.Name, j.cfg.SaveInterval)
	defer func() {
		if ferr := com.flush(); err == nil {
			err = ferr
		}
	}()
	path, err := exec.LookPath(j.cfg.Journalctl)
	if err != nil {
		return fmt.Errorf("journal source: %w (install systemd's journalctl, or read a log file instead)", err)
	}
	var cursor string
	if st := j.cfg.Store; st != nil {
		pos, ok, err := st.Load(j.cfg.Name)
		if err != nil {
			return fmt.Errorf("load cursor of %s: %w", j.cfg.Name, err)
		}
		if ok {
			cursor = pos.Cursor
		}
	}
	since := time.Now()
	backoff := j.cfg.RestartMin
	cursorFails := 0
	for {
		started := time.Now()
		before := cursor
		n, err := j.runOnce(ctx, path, &cursor, since, com, h)
		if ctx.Err() != nil {
			return nil
		}
		var he errHandler
		if errors.As(err, &he) {
			return he.err
		}
		if n == 0 && before != "" && cursor == before {
			if cursorFails++; cursorFails >= 2 {
				// journalctl may be refusing the cursor itself: go on
				// from the time it names.
				j.cfg.Log.Warn("journalctl fails after the saved cursor; resuming from its time",
					"source", j.cfg.Name, "cursor", cursor)
				since = cursorTime(cursor, since)
				cursor, cursorFails = "", 0
			}
		} else if n > 0 {
			cursorFails = 0
		}
		if time.Since(started) >= stableRun {
			backoff = j.cfg.RestartMin
		}
		j.cfg.Log.Warn("journalctl exited; restarting", "source", j.cfg.Name, "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, j.cfg.RestartMax)
		j.stats.restarts.Add(1)
	}
}

// runOnce runs journalctl until it exits, ctx is done or the handler
// fails. It returns how many entries were delivered.
func (j *Journal) runOnce(ctx context.Context, path string, cursor *string, since time.Time, com *committer, h Handler) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, j.args(*cursor, since)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "SYSTEMD_COLORS=0")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 2 * time.Second
	stderr := &tailBuffer{max: 2048}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, fmt.Errorf("journalctl: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start journalctl: %w", err)
	}
	n, rerr := j.read(stdout, cursor, com, h)
	if rerr != nil {
		cancel()
	}
	werr := cmd.Wait()
	if rerr != nil {
		return n, rerr
	}
	if werr == nil {
		werr = errors.New("exit status 0")
	}
	return n, fmt.Errorf("journalctl: %w: %s", werr, bytes.TrimSpace(stderr.bytes()))
}

// read parses journalctl's output and delivers batches: as many entries
// as are buffered, so a burst goes in large batches and a single entry at
// once.
func (j *Journal) read(out io.Reader, cursor *string, com *committer, h Handler) (int, error) {
	rd := bufio.NewReaderSize(out, 64<<10)
	var sc entryScanner
	var batch []Line
	delivered := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := h(batch); err != nil {
			return errHandler{err}
		}
		last := batch[len(batch)-1].Pos
		delivered += len(batch)
		j.stats.entries.Add(uint64(len(batch)))
		clear(batch)
		batch = batch[:0]
		*cursor = last.Cursor
		return com.ack(last)
	}
	var long []byte   // a line longer than the reader's buffer, so far
	skipping := false // the current line is over maxJSONLine
	for {
		line, err := rd.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if !skipping && len(long)+len(line) <= maxJSONLine {
				long = append(long, line...)
			} else {
				skipping, long = true, long[:0]
			}
			continue
		}
		switch {
		case skipping:
			skipping, line = false, nil
			j.stats.skipped.Add(1)
		case len(long) > 0:
			if len(long)+len(line) <= maxJSONLine {
				line = append(long, line...)
			} else {
				line = nil
				j.stats.skipped.Add(1)
			}
		}
		if len(bytes.TrimSpace(line)) > 0 {
			// parseEntry copies what it keeps, so line may be reused.
			if e, perr := sc.parse(line, j.cfg.MaxLine); perr == nil {
				batch = append(batch, Line{
					Source: j.cfg.Name, Time: e.realtime, Text: e.message, Fields: e.fields,
					Pos: Position{Cursor: e.cursor}, Truncated: e.cut,
				})
			} else {
				j.stats.skipped.Add(1)
			}
		}
		long = long[:0]
		if err != nil {
			// Entries already read are complete: deliver them before
			// reporting the exit.
			return delivered, flush()
		}
		if rd.Buffered() == 0 || len(batch) >= maxJournalBatch {
			if err := flush(); err != nil {
				return delivered, err
			}
		}
	}
}

// cursorTime returns the realtime a journal cursor names (its t= field,
// microseconds in hex), or def.
func cursorTime(cursor string, def time.Time) time.Time {
	for _, kv := range strings.Split(cursor, ";") {
		if v, ok := strings.CutPrefix(kv, "t="); ok {
			if us, err := strconv.ParseInt(v, 16, 64); err == nil && us > 0 {
				return time.UnixMicro(us)
			}
		}
	}
	return def
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.b...)
}
