package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/fleet"
	"github.com/moat-sh/moat/internal/guard"
)

// fleetRun is the daemon's part in a fleet: the embedded node (nil with
// an external NATS), the client, and the guard on what others send.
type fleetRun struct {
	cfg     fleet.Config
	node    *fleet.Node
	client  *fleet.Client
	guard   *fleet.Guard
	refused atomic.Uint64
	lists   *fleetLists                // the blocklists bucket
	last    atomic.Pointer[fleetCheck] // the monitor's last status
	logged  refusalLog
}

// refusalLog rate-limits the refusal log: one line per origin a minute
// (a hostile member, or a forger, could send many).
type refusalLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (l *refusalLog) allow(origin string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil || len(l.last) > 1024 {
		l.last = map[string]time.Time{} // forged origins are unbounded
	}
	if t, ok := l.last[origin]; ok && now.Sub(t) < time.Minute {
		return false
	}
	l.last[origin] = now
	return true
}

type fleetCheck struct {
	st fleet.Status
	at time.Time
}

// startFleet joins the fleet when cfg has one: the node and the client
// start, decisions of trusted hosts go through the ban queue like the
// jails' (origin fleet:<host>), and this host's shared bans are
// published from the ban events (fleetEvent).
func (d *Daemon) startFleet(ctx context.Context, cfg *config.Config) error {
	if cfg.Fleet == nil {
		return nil
	}
	f := &fleetRun{cfg: *cfg.Fleet}
	if f.cfg.NATS.Embedded != nil {
		var err error
		f.node, err = fleet.StartNode(f.cfg, fleet.NodeOptions{Dir: filepath.Join(d.o.StateDir, "fleet"), Log: d.log})
		if err != nil {
			return err
		}
	}
	f.guard = fleet.NewGuard(f.cfg, guard.Ignore(cfg, d.h))
	client, err := fleet.Dial(f.cfg, fleet.ClientOptions{
		Node: f.node, Guard: f.guard, Log: d.log, Metrics: fleet.NewMetrics(d.reg),
		Apply: d.applyFleet, Local: d.localDecisions,
		// The outbox journal: decisions waiting for NATS survive a
		// restart, a crash or kill -9.
		OutboxDir: filepath.Join(d.o.StateDir, "fleet"),
		Refused: func(dec fleet.Decision, err error) {
			f.refused.Add(1)
			if f.logged.allow(dec.Origin, time.Now()) {
				d.log.Warn("fleet: decision refused", "origin", dec.Origin, "prefix", dec.Prefix, "reason", fleet.RefusalReason(err), "err", err, "refused_total", f.refused.Load())
			}
		},
	})
	if err != nil {
		if f.node != nil {
			f.node.Shutdown()
		}
		return err
	}
	f.client = client
	f.lists = newFleetLists(f.cfg, client, d.log.With("component", "blocklist"), d.blocklistManager)
	d.fleet = f
	d.goRun(ctx, "fleet", func(ctx context.Context) error {
		err := client.Run(ctx)
		client.Close()
		if f.node != nil {
			f.node.Shutdown()
			f.node.WaitForShutdown()
		}
		return err
	})
	d.goRun(ctx, "fleet monitor", d.fleetMonitor)
	d.goRun(ctx, "fleet lists", f.lists.run)
	return nil
}

// applyFleet applies decisions from the fleet in their order: bans
// through the ban queue (the jails' path to the kernel and the store),
// tombstones by lifting the ban of exactly that prefix if, and only if,
// the host that sent the tombstone is the one that decided it.
func (d *Daemon) applyFleet(ctx context.Context, ds []fleet.Decision) {
	now := time.Now()
	var bans []ban.Ban
	flush := func() {
		if len(bans) == 0 {
			return
		}
		select {
		case <-d.queue.push(bans):
		case <-ctx.Done():
		}
		bans = nil
	}
	for _, dec := range ds {
		if !dec.Expires.IsZero() && !dec.Expires.After(now) {
			continue // ended while in the stream
		}
		switch dec.Op {
		case fleet.OpBan:
			bans = append(bans, ban.Ban{Prefix: dec.Prefix, Jail: dec.Jail, Reason: dec.Reason,
				Origin: ban.FleetOrigin(dec.Origin), Created: dec.Created, Expires: dec.Expires, Failures: dec.Failures})
		case fleet.OpUnban:
			flush()
			origin := dec.Origin
			if _, err := d.enf.Lift(ctx, dec.Prefix, func(b ban.Ban) bool {
				h, ok := b.Origin.FleetHost()
				return ok && h == origin
			}); err != nil {
				d.log.Warn("fleet: lift ban", "prefix", dec.Prefix, "origin", origin, "err", err)
			}
		}
	}
	flush()
}

// shareKey is the name fleet.share uses for b's decider: its jail, or
// "manual" for moat ban; "" for bans that are not this host's own.
func shareKey(b ban.Ban) string {
	switch b.Origin {
	case ban.OriginAuto:
		return b.Jail
	case ban.OriginManual:
		return "manual"
	}
	return ""
}

func decisionOf(op fleet.Op, b ban.Ban) fleet.Decision {
	return fleet.Decision{Op: op, Prefix: b.Prefix, Jail: b.Jail, Reason: b.Reason,
		Created: b.Created, Expires: b.Expires, Failures: b.Failures}
}

// fleetEvent publishes this host's own shared decisions: bans and their
// extensions, and the operator's unbans as tombstones. Bans from the
// fleet or adopted from the kernel are never published again.
func (d *Daemon) fleetEvent(ev ban.Event) {
	f := d.fleet
	if f == nil {
		return
	}
	k := shareKey(ev.Ban)
	if k == "" || !f.cfg.Shares(k) {
		return
	}
	switch ev.Kind {
	case ban.EventBan, ban.EventExtend:
		f.client.Publish(decisionOf(fleet.OpBan, ev.Ban))
	case ban.EventUnban:
		f.client.Publish(decisionOf(fleet.OpUnban, ev.Ban))
	}
}

// localDecisions are this host's shared bans in force, republished at
// start and now and then: the ban store is the outbox that survives a
// restart.
func (d *Daemon) localDecisions(ctx context.Context) ([]fleet.Decision, error) {
	f := d.fleet
	if f == nil {
		return nil, nil
	}
	active, err := d.store.Active(ctx)
	if err != nil {
		return nil, err
	}
	var out []fleet.Decision
	for _, b := range active {
		if k := shareKey(b); k != "" && f.cfg.Shares(k) {
			out = append(out, decisionOf(fleet.OpBan, b))
		}
	}
	return out, nil
}

// fleetMonitor refreshes the never-ban list (the operator's sessions come
// and go), republishes after dropped ban events, and raises the lag and
// quorum conditions.
func (d *Daemon) fleetMonitor(ctx context.Context) error {
	f := d.fleet
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	fast := time.NewTicker(2 * time.Second)
	defer fast.Stop()
	dropped := d.enf.Dropped()
	maxLag := uint64(f.cfg.MaxLag)
	if maxLag == 0 {
		maxLag = 10000
	}
	var noQuorumSince time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-fast.C:
			if n := d.enf.Dropped(); n != dropped {
				dropped = n
				f.client.Resync()
			}
			continue
		case <-t.C:
		}
		d.mu.Lock()
		cfg := d.cfg
		d.mu.Unlock()
		f.guard.SetNever(guard.Ignore(cfg, d.h))
		if !f.client.Ready() {
			continue
		}
		now := time.Now()
		st := f.client.Status(ctx, f.node)
		f.last.Store(&fleetCheck{st: st, at: now})
		if d.mon == nil {
			continue
		}
		var qLevel, lagLevel int
		noQuorumSince, qLevel, lagLevel = fleetLevels(st, noQuorumSince, now, maxLag)
		d.mon.set(alert.KindFleet, "quorum", qLevel, now, func() alert.Event {
			return alert.Fleet{Fleet: f.cfg.Name, Problem: "quorum", Time: now,
				Detail: fmt.Sprintf("the decisions stream has had no quorum since %s (%s): bans are decided and enforced locally, and published once it is back", noQuorumSince.Format(time.RFC3339), st.StreamError)}.Event()
		})
		d.mon.set(alert.KindFleet, "lag", lagLevel, now, func() alert.Event {
			return alert.Fleet{Fleet: f.cfg.Name, Problem: "lag", Time: now,
				Detail: fmt.Sprintf("%d decisions of other hosts are not applied here yet (fleet.max_lag %d)", st.Lag, maxLag)}.Event()
		})
	}
}

// fleetLevels turns a status into the quorum and lag conditions' levels
// (0 clear, 1 warning, 2 critical). A lost quorum counts only once it has
// lasted 30 s (a leader election takes seconds); since is when it was
// first seen lost (zero: it is not), returned updated.
func fleetLevels(st fleet.Status, since, now time.Time, maxLag uint64) (time.Time, int, int) {
	switch {
	case st.Stream != nil && st.Stream.Quorum:
		since = time.Time{}
	case since.IsZero():
		since = now
	}
	q, lag := 0, 0
	if !since.IsZero() && now.Sub(since) >= 30*time.Second {
		q = 2
	}
	if st.Lag > maxLag {
		lag = 1
	}
	return since, q, lag
}

// fleetStatus answers `moat fleet status`.
func (d *Daemon) fleetStatus(ctx context.Context) (any, error) {
	f := d.fleet
	if f == nil {
		return nil, fmt.Errorf("this host is in no fleet: add a fleet section to %s (see the README's three-host recipe)", d.cfg.File)
	}
	st := f.client.Status(ctx, f.node)
	return st, nil
}

// isFleet: the ban came from another host; its alert is summarised with
// the automatic ones, not sent at once like the operator's.
func isFleet(o ban.Origin) bool { _, ok := o.FleetHost(); return ok }

// FleetSummary is `moat status`'s fleet block.
type FleetSummary struct {
	Fleet  string `json:"fleet"`
	Origin string `json:"origin"`
	Ready  bool   `json:"ready"`
	Nodes  int    `json:"nodes"`
	Quorum bool   `json:"quorum"`
	Lag    uint64 `json:"lag"`
	Outbox int    `json:"outbox"`
	// OutboxError says why the outbox is in memory only ("": it is
	// journaled in the state dir).
	OutboxError string `json:"outbox_error,omitempty"`
	Refused     uint64 `json:"refused"`
	// ListsRefused counts blocklist updates refused (untrusted origin,
	// a list not configured here, a copy that does not parse).
	ListsRefused uint64 `json:"lists_refused"`
	// Checked is when the figures were read (the monitor's last check).
	Checked time.Time `json:"checked,omitzero"`
}

func (d *Daemon) fleetSummary() *FleetSummary {
	f := d.fleet
	if f == nil {
		return nil
	}
	s := &FleetSummary{Fleet: f.cfg.Name, Origin: f.cfg.Origin(), Ready: f.client.Ready(),
		Outbox: f.client.Pending(), Refused: f.refused.Load()}
	if f.lists != nil {
		s.ListsRefused = f.lists.refused.Load()
	}
	if err := f.client.OutboxErr(); err != nil {
		s.OutboxError = err.Error()
	}
	if last := f.last.Load(); last != nil {
		s.Nodes, s.Lag, s.Checked = len(last.st.Nodes), last.st.Lag, last.at
		s.Quorum = last.st.Stream != nil && last.st.Stream.Quorum
	}
	return s
}

func (s *FleetSummary) writeText(w io.Writer) {
	if s == nil {
		return
	}
	state := "connecting"
	switch {
	case !s.Ready:
	case s.Checked.IsZero():
		state = "connected"
	case s.Quorum:
		state = "healthy"
	default:
		state = "NO QUORUM (bans stay local until it is back)"
	}
	fmt.Fprintf(w, "\nFLEET  %s as %s: %s\n", s.Fleet, s.Origin, state)
	fmt.Fprintf(w, "  nodes %d, lag %d, outbox %d, refused %d (moat fleet status for more)\n", s.Nodes, s.Lag, s.Outbox, s.Refused)
	if s.OutboxError != "" {
		fmt.Fprintf(w, "  OUTBOX NOT DURABLE: %s\n", s.OutboxError)
	}
	if s.ListsRefused > 0 {
		fmt.Fprintf(w, "  blocklist updates refused %d (see the log)\n", s.ListsRefused)
	}
}

// fleetReloadable refuses a reload that changes the fleet section: the
// node, the connection and the guard's trust are set up once.
func fleetReloadable(old, cfg *config.Config) error {
	if !reflect.DeepEqual(old.Fleet, cfg.Fleet) {
		return errors.New("fleet: changing the fleet section needs a restart of moat run")
	}
	return nil
}
