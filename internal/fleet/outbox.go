package fleet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// OutboxFile is the outbox journal's name in ClientOptions.OutboxDir.
const OutboxFile = "outbox.jsonl"

// DefaultOutboxMax bounds the outbox (decisions, one per origin and
// prefix).
const DefaultOutboxMax = 100_000

// outbox holds this host's decisions until the stream has stored them:
// the latest per subject (origin and prefix) in memory, and a journal in
// the state dir so that a decision queued while NATS is unreachable
// survives moat stopping, crashing or being killed. Each decision is
// appended (one write, so it survives the process dying at once; fsync
// follows within a second, so a power loss costs at most that second),
// the journal is truncated once everything is stored, and rewritten
// atomically (temporary file, fsync, rename) with what is still queued
// whenever it holds much more than that. A journal that cannot be
// written (full disk, unwritable state dir) leaves the outbox in memory:
// publishing and local banning go on, and the error is reported (Err,
// the write-errors metric).
//
// When full (max decisions), a ban makes room before a tombstone: the
// ban store republishes a host's bans in force (Local), while an unban
// lost is a ban that lives on the other hosts until it expires. Each
// decision dropped is counted.
type outbox struct {
	mu      sync.Mutex
	m       map[string]Decision
	bans    int // bans in m (the rest are tombstones)
	max     int
	path    string   // "" : memory only
	f       *os.File // the journal, appended to; nil when it failed
	records int      // records in the journal
	dirty   bool     // written, not yet fsynced
	err     error    // the last journal error, nil once it works again
	metrics *Metrics
}

type outboxRecord struct {
	Subject  string   `json:"s"`
	Decision Decision `json:"d"`
}

// openOutbox opens (or creates) the journal in dir and returns the
// outbox with what it holds for fleet and origin (records for another
// are stale config, dropped). dir "" is memory only. An error leaves a
// working in-memory outbox, with the error also kept in Err.
func openOutbox(dir, fleet, origin string, max int, m *Metrics) (*outbox, error) {
	if max <= 0 {
		max = DefaultOutboxMax
	}
	o := &outbox{m: map[string]Decision{}, max: max, metrics: m}
	if dir == "" {
		return o, nil
	}
	o.path = filepath.Join(dir, OutboxFile)
	skipped, err := o.load(fleet, origin)
	if err == nil {
		err = o.rewrite()
	}
	if err != nil {
		o.fail(err)
		return o, o.err
	}
	if skipped > 0 {
		return o, fmt.Errorf("fleet outbox %s: %d unreadable records skipped (a write cut short by a crash)", o.path, skipped)
	}
	return o, nil
}

// load reads the journal: the latest decision per subject wins.
func (o *outbox) load(fleet, origin string) (skipped int, err error) {
	if err := os.MkdirAll(filepath.Dir(o.path), 0o700); err != nil {
		return 0, err
	}
	data, err := os.ReadFile(o.path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 2*MaxDecisionSize)
	for sc.Scan() {
		var r outboxRecord
		if json.Unmarshal(sc.Bytes(), &r) != nil || !r.Decision.Prefix.IsValid() {
			skipped++
			continue
		}
		if r.Decision.Origin != origin || r.Subject != r.Decision.Subject(fleet) {
			continue
		}
		o.putLocked(r.Subject, r.Decision)
	}
	if sc.Err() != nil {
		skipped++
	}
	return skipped, nil
}

// Err is the journal's last error (nil: durable).
func (o *outbox) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

func (o *outbox) fail(err error) {
	o.err = fmt.Errorf("fleet outbox %s: %w (decisions waiting for NATS are kept in memory only: lost if moat stops before NATS is back; free space or fix the state dir)", o.path, err)
	o.metrics.outboxWriteError()
	o.metrics.setOutboxDurable(false)
}

// put queues d under subj unless what is queued there is newer; it
// reports whether d was queued.
func (o *outbox) put(subj string, d Decision) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.putLocked(subj, d) {
		return false
	}
	if o.path != "" {
		o.append(outboxRecord{subj, d})
	}
	o.metrics.setOutbox(len(o.m))
	return true
}

func (o *outbox) putLocked(subj string, d Decision) bool {
	cur, ok := o.m[subj]
	if ok && d.Before(cur) {
		return false
	}
	if !ok && len(o.m) >= o.max && !o.evict(d) {
		return false
	}
	if ok && cur.Op == OpBan {
		o.bans--
	}
	if d.Op == OpBan {
		o.bans++
	}
	o.m[subj] = d
	return true
}

// evict makes room for d, a new subject, in a full outbox: a ban goes
// first; a ban is dropped itself rather than a tombstone evicted.
func (o *outbox) evict(d Decision) bool {
	o.metrics.outboxDropped()
	if o.bans == 0 && d.Op == OpBan {
		return false
	}
	for s, q := range o.m {
		if q.Op == OpBan || o.bans == 0 {
			if q.Op == OpBan {
				o.bans--
			}
			delete(o.m, s)
			return true
		}
	}
	return false
}

// done removes the decision with id from subj (unless a newer one
// replaced it).
func (o *outbox) done(subj, id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if cur, ok := o.m[subj]; ok && cur.ID() == id {
		if cur.Op == OpBan {
			o.bans--
		}
		delete(o.m, subj)
	}
	switch {
	case o.path == "":
	case len(o.m) == 0 && o.records > 0 && o.f != nil:
		// Drained, the usual case: truncate (cheap, no fsync here; the
		// sync tick follows). Either the old records or none survive a
		// crash, and the old ones were all stored: republished, they
		// are de-duplicated.
		if err := o.f.Truncate(0); err != nil {
			o.f.Close()
			o.f = nil
			o.fail(err)
		}
		o.records, o.dirty = 0, true
	case o.records > 2*len(o.m)+1024:
		if err := o.rewrite(); err != nil {
			o.fail(err)
		}
	}
	o.metrics.setOutbox(len(o.m))
}

// snapshot returns up to n queued decisions.
func (o *outbox) snapshot(n int) map[string]Decision {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]Decision, min(n, len(o.m)))
	for s, d := range o.m {
		if len(out) == n {
			break
		}
		out[s] = d
	}
	return out
}

func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.m)
}

// append writes one record; a failure switches to a rewrite at the
// next sync (which also tells when the disk works again).
func (o *outbox) append(r outboxRecord) {
	if o.f == nil {
		o.dirty = true // sync retries the rewrite
		return
	}
	b, err := json.Marshal(r)
	if err == nil {
		_, err = o.f.Write(append(b, '\n'))
	}
	if err != nil {
		o.f.Close()
		o.f = nil
		o.fail(err)
	} else {
		o.records++
	}
	o.dirty = true
}

// sync makes the journal durable (fsync), rewriting it whole after a
// failed write.
func (o *outbox) sync() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.path == "" || !o.dirty {
		return
	}
	var err error
	if o.f == nil {
		err = o.rewrite()
	} else {
		err = o.f.Sync()
	}
	if err != nil {
		o.fail(err)
		return
	}
	o.dirty = false
}

// rewrite replaces the journal atomically with the queued decisions and
// reopens it for appending.
func (o *outbox) rewrite() error {
	if o.f != nil {
		o.f.Close()
		o.f = nil
	}
	var buf bytes.Buffer
	for s, d := range o.m {
		b, err := json.Marshal(outboxRecord{s, d})
		if err != nil {
			return err
		}
		buf.Write(append(b, '\n'))
	}
	if err := writeAtomic(o.path, buf.Bytes()); err != nil {
		return err
	}
	f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	o.f, o.records, o.dirty = f, len(o.m), false
	if o.err != nil {
		o.err = nil
		o.metrics.setOutboxDurable(true)
	}
	return nil
}

// close syncs and closes the journal.
func (o *outbox) close() {
	o.sync()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f != nil {
		o.f.Close()
		o.f = nil
	}
}

// writeAtomic writes data to path through a temporary file, fsync and
// rename, then fsyncs the directory: path holds the old or the new data,
// never a part.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
