package fleet

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/lab"
)

func obBan(addr string, created time.Time) Decision {
	return Decision{Op: OpBan, Prefix: netip.MustParsePrefix(addr), Jail: "sshd", Origin: "h0", Created: created, Expires: created.Add(time.Hour)}
}

func tombOf(d Decision) Decision { d.Op = OpUnban; return d }

// TestOutboxJournal: what is queued is on disk after each put, without a
// close (what kill -9 leaves); reopening gives the latest decision per
// subject whatever order they were queued in, skips a record cut short
// and another host's or fleet's records, and an acknowledged decision
// is not replayed once the journal is compacted.
func TestOutboxJournal(t *testing.T) {
	dir := t.TempDir()
	m := NewMetrics(nil)
	ob, err := openOutbox(dir, "test", "h0", 0, m)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	a, b, c := obBan("203.0.113.1/32", t0), obBan("203.0.113.2/32", t0), obBan("203.0.113.3/32", t0)
	ob.put(a.Subject("test"), a)
	ob.put(b.Subject("test"), b)
	ob.put(b.Subject("test"), tombOf(b))
	if ob.put(b.Subject("test"), b) {
		t.Fatal("a ban replaced its own tombstone in the outbox")
	}
	ob.put(c.Subject("test"), c)
	ob.done(c.Subject("test"), c.ID())
	// A crash in the middle of a write, and records that are not ours.
	f, err := os.OpenFile(filepath.Join(dir, OutboxFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	other := obBan("203.0.113.4/32", t0)
	other.Origin = "h9"
	fmt.Fprintf(f, "{\"s\":%q,\"d\":{\"op\":\"ban\",\"prefix\":\"203.0.113.4/32\",\"origin\":\"h9\",\"created\":\"2026-06-01T12:00:00Z\"}}\n", other.Subject("test"))
	f.WriteString(`{"s":"moat.test.decision.h0.203-0-113-5_32","d":{"op":"ba`)
	f.Close()
	// No close, no sync: reopen as the next run does.
	ob2, err := openOutbox(dir, "test", "h0", 0, NewMetrics(nil))
	if err == nil || !strings.Contains(err.Error(), "1 unreadable") {
		t.Fatalf("torn record: err %v", err)
	}
	if ob2.Err() != nil {
		t.Fatalf("a torn record made the outbox non-durable: %v", ob2.Err())
	}
	got := ob2.snapshot(100)
	if len(got) != 3 || got[a.Subject("test")].Op != OpBan || got[b.Subject("test")].Op != OpUnban {
		t.Fatalf("replayed %v", got)
	}
	// c was acknowledged but the journal not yet compacted: replayed
	// (the stream de-duplicates it); once compacted it is gone.
	ob2.done(c.Subject("test"), c.ID())
	ob2.done(a.Subject("test"), a.ID())
	ob2.done(b.Subject("test"), tombOf(b).ID())
	ob3, err := openOutbox(dir, "test", "h0", 0, NewMetrics(nil))
	if err != nil || ob3.len() != 0 {
		t.Fatalf("after all were acknowledged: %d queued, %v", ob3.len(), err)
	}
}

// TestOutboxFull: a full outbox drops bans (the ban store republishes
// them) before tombstones, counting each drop.
func TestOutboxFull(t *testing.T) {
	m := NewMetrics(nil)
	ob, _ := openOutbox("", "test", "h0", 3, m)
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	var ds []Decision
	for i := range 6 {
		ds = append(ds, obBan(fmt.Sprintf("203.0.113.%d/32", i+1), t0))
	}
	ob.put(ds[0].Subject("test"), tombOf(ds[0]))
	ob.put(ds[1].Subject("test"), tombOf(ds[1]))
	ob.put(ds[2].Subject("test"), ds[2])
	if !ob.put(ds[3].Subject("test"), tombOf(ds[3])) {
		t.Fatal("a tombstone was refused while a ban could make room")
	}
	if _, ok := ob.snapshot(10)[ds[2].Subject("test")]; ok {
		t.Fatal("the ban was kept and not a tombstone")
	}
	if ob.put(ds[4].Subject("test"), ds[4]) {
		t.Fatal("a ban evicted a tombstone")
	}
	if !ob.put(ds[5].Subject("test"), tombOf(ds[5])) || ob.len() != 3 {
		t.Fatalf("a tombstone in an outbox of tombstones: %d queued", ob.len())
	}
	if n := counterValue(t, m.OutboxDropped); n != 3 {
		t.Fatalf("dropped %v, want 3", n)
	}
}

// TestOutboxUnwritable: a state dir that cannot hold the journal (a
// file where the dir should be) gives a clear error and a working
// in-memory outbox.
func TestOutboxUnwritable(t *testing.T) {
	f := filepath.Join(t.TempDir(), "state")
	os.WriteFile(f, nil, 0o600)
	m := NewMetrics(nil)
	ob, err := openOutbox(filepath.Join(f, "fleet"), "test", "h0", 0, m)
	if err == nil || !strings.Contains(err.Error(), "in memory only") || ob.Err() == nil {
		t.Fatalf("unwritable dir: %v", err)
	}
	d := obBan("203.0.113.1/32", time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	if !ob.put(d.Subject("test"), d) || ob.len() != 1 {
		t.Fatal("the in-memory outbox does not queue")
	}
	if counterValue(t, m.OutboxDurable) != 0 || counterValue(t, m.OutboxWriteErrors) == 0 {
		t.Fatal("metrics do not say the outbox is not durable")
	}
}

// TestOutboxDiskFull: on a full filesystem (a 256 KiB tmpfs) writes fail,
// the outbox says so and keeps queuing in memory; once space is back,
// the next sync writes everything and a reopen finds it all.
func TestOutboxDiskFull(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "mount")
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		lab.Require(t, false, fmt.Sprintf("mount tmpfs: %v %s", err, out))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	m := NewMetrics(nil)
	ob, err := openOutbox(dir, "test", "h0", 0, m)
	if err != nil {
		t.Fatal(err)
	}
	fill := filepath.Join(dir, "fill")
	exec.Command("dd", "if=/dev/zero", "of="+fill, "bs=4k", "count=64").Run() // fills it: ENOSPC expected
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for i := range 100 {
		d := obBan(fmt.Sprintf("203.0.113.%d/32", 1+i), t0)
		ob.put(d.Subject("test"), d)
	}
	ob.sync()
	if ob.Err() == nil || !strings.Contains(ob.Err().Error(), "no space") || ob.len() != 100 {
		t.Fatalf("full disk: err %v, %d queued", ob.Err(), ob.len())
	}
	if counterValue(t, m.OutboxWriteErrors) == 0 || counterValue(t, m.OutboxDurable) != 0 {
		t.Fatal("metrics do not report the full disk")
	}
	os.Remove(fill)
	ob.sync()
	if ob.Err() != nil || counterValue(t, m.OutboxDurable) != 1 {
		t.Fatalf("space back, still: %v", ob.Err())
	}
	ob2, err := openOutbox(dir, "test", "h0", 0, NewMetrics(nil))
	if err != nil || ob2.len() != 100 {
		t.Fatalf("reopened after the disk was full: %d of 100, %v", ob2.len(), err)
	}
	ob.close()
	ob2.close()
}

// TestOutboxSurvivesKill: during a partition (h1 and h2 down, so h0's
// node has no quorum for the R3 stream) h0 queues a ban and the
// tombstone of a ban the others applied, then dies without closing
// anything (the journal as kill -9 leaves it); all come back, and h1
// and h2 converge: the new ban applied, the lifted one gone. The ban
// store no longer knows the lifted ban: only the journal holds its
// tombstone.
func TestOutboxSurvivesKill(t *testing.T) {
	cfgs := testFleet(t, 3)
	dir := t.TempDir()
	ob0 := filepath.Join(dir, "h0-outbox")
	ms := make([]*member, 3)
	for i, c := range cfgs {
		o := memberOpts{}
		if i == 0 {
			o.outbox = ob0
		}
		ms[i] = startMemberOpts(t, c, filepath.Join(dir, c.Host), o)
	}
	for _, m := range ms {
		waitFor(t, 30*time.Second, m.cfg.Host+" ready", m.client.Ready)
	}
	lifted := ban("h0", "203.0.113.10/32", time.Hour)
	ms[0].client.Publish(lifted)
	for _, m := range ms[1:] {
		waitFor(t, 10*time.Second, m.cfg.Host+" applies the ban", func() bool { return m.has(lifted.Prefix) })
	}
	applied := []map[netip.Prefix]Decision{nil, ms[1].applied, ms[2].applied}
	ms[1].stop() // the partition
	ms[2].stop()
	fresh := ban("h0", "203.0.113.11/32", time.Hour)
	ms[0].client.Publish(fresh, tombOf(lifted))
	if n := ms[0].client.Pending(); n != 2 {
		t.Fatalf("outbox holds %d during the partition, want 2", n)
	}
	ms[0].kill()

	for i, c := range cfgs {
		o := memberOpts{applied: applied[i]}
		if i == 0 {
			o.outbox = ob0
		}
		ms[i] = startMemberOpts(t, c, filepath.Join(dir, c.Host), o)
		defer ms[i].stop()
	}
	for _, m := range ms[1:] {
		waitFor(t, 60*time.Second, m.cfg.Host+" converges", func() bool { return m.has(fresh.Prefix) && !m.has(lifted.Prefix) })
	}
	waitFor(t, 10*time.Second, "h0's outbox empties", func() bool { return ms[0].client.Pending() == 0 })
}
