package daemon

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moat-sh/moat/internal/blocklist"
	"github.com/moat-sh/moat/internal/fleet"
)

// fleetLists shares the URL blocklists through the fleet's lists bucket:
// the host that fetches a list publishes the bytes that parsed, a host
// due to fetch takes a trusted member's copy younger than the refresh
// interval instead, and every trusted member's update is offered to the
// manager, which parses it like a fetch and refuses it whole when a line
// is malformed. File lists stay local. When the fleet is down (not
// connected, or no answer within listsTimeout) the host fetches itself.
type fleetLists struct {
	cfg     fleet.Config
	client  *fleet.Client
	log     *slog.Logger
	manager func() *blocklist.Manager // the running manager, nil when none

	// openWait bounds how long the fetches at start wait, together, for
	// the bucket to open (the fleet connects in the first seconds of moat
	// run); started is when that wait began.
	openWait time.Duration
	started  time.Time

	mu      sync.Mutex
	lists   *fleet.Lists
	opened  chan struct{} // closed once lists is set
	refused atomic.Uint64
	lastLog atomic.Int64
}

// listsTimeout bounds one read or write of the bucket.
const listsTimeout = 5 * time.Second

func newFleetLists(cfg fleet.Config, client *fleet.Client, log *slog.Logger, manager func() *blocklist.Manager) *fleetLists {
	return &fleetLists{cfg: cfg, client: client, log: log, manager: manager, openWait: 10 * time.Second, started: time.Now(), opened: make(chan struct{})}
}

// run opens the bucket once the fleet is ready and watches it until ctx
// ends, opening it again after a failure.
func (s *fleetLists) run(ctx context.Context) error {
	for backoff := 500 * time.Millisecond; ; backoff = min(backoff*2, 30*time.Second) {
		if s.client.Ready() {
			octx, cancel := context.WithTimeout(ctx, 10*time.Second)
			lists, err := s.client.Lists(octx)
			cancel()
			if err == nil {
				s.mu.Lock()
				if s.lists == nil {
					close(s.opened)
				}
				s.lists = lists
				s.mu.Unlock()
				backoff = 500 * time.Millisecond
				if err = lists.Watch(ctx, func(u fleet.ListUpdate) { s.offer(ctx, u) }); err == nil && ctx.Err() == nil {
					s.log.Debug("fleet: lists watch ended; watching again")
				}
			}
			if err != nil {
				s.log.Debug("fleet: lists bucket not ready", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// get is the bucket when the fleet is connected, else nil.
func (s *fleetLists) get() *fleet.Lists {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lists == nil || !s.client.Ready() || !s.client.Conn().IsConnected() {
		return nil
	}
	return s.lists
}

// offer hands a watched update to the manager: only from a trusted
// origin (never this host's own), only for a list configured here.
func (s *fleetLists) offer(ctx context.Context, u fleet.ListUpdate) {
	if u.Deleted || u.Origin == s.cfg.Origin() {
		return
	}
	if u.Err != nil {
		s.refuse(u, u.Err.Error())
		return
	}
	if !s.cfg.Trusts(u.Origin) {
		s.refuse(u, "origin not in fleet.trust")
		return
	}
	m := s.manager()
	if m == nil {
		return
	}
	ok, err := m.OfferShared(ctx, u.Name, blocklist.SharedCopy{From: "fleet:" + u.Origin, Data: u.Data, Time: u.Time})
	switch {
	case err != nil:
		s.refuse(u, err.Error())
	case ok:
		s.log.Info("blocklist taken from the fleet", "list", u.Name, "origin", u.Origin, "published", u.Time)
	}
}

// refuse counts a refused update and logs it, at most once a second: a
// hostile member could send many.
func (s *fleetLists) refuse(u fleet.ListUpdate, why string) {
	s.refused.Add(1)
	now := time.Now().Unix()
	if last := s.lastLog.Load(); now > last && s.lastLog.CompareAndSwap(last, now) {
		s.log.Warn("fleet: blocklist update refused, nothing of it applied", "list", u.Name, "origin", u.Origin, "why", why, "refused_total", s.refused.Load())
	}
}

// shared is the manager's Shared: the newest copy of list name that a
// trusted member published, if the fleet answers.
func (s *fleetLists) shared(ctx context.Context, name string) (blocklist.SharedCopy, bool) {
	if !fleet.ValidToken(name) {
		return blocklist.SharedCopy{}, false // a name the bucket cannot hold
	}
	if wait := s.openWait - time.Since(s.started); wait > 0 {
		select { // at start, give the fleet a moment to connect
		case <-s.opened:
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	l := s.get()
	if l == nil {
		return blocklist.SharedCopy{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, listsTimeout)
	defer cancel()
	u, ok, err := l.LatestFrom(ctx, name, s.cfg.Trusts)
	if err != nil {
		s.log.Debug("fleet: no shared copy; fetching", "list", name, "err", err)
		return blocklist.SharedCopy{}, false
	}
	if !ok || u.Deleted {
		return blocklist.SharedCopy{}, false
	}
	return blocklist.SharedCopy{From: "fleet:" + u.Origin, Data: u.Data, Time: u.Time}, true
}

// published is the manager's Published: a list this host fetched from
// its origin, parsed clean, goes to the bucket.
func (s *fleetLists) published(name string, data []byte, _ blocklist.Validators) {
	if !fleet.ValidToken(name) {
		s.log.Debug("fleet: list name not shareable ('.' in it); kept local", "list", name)
		return
	}
	if len(data) > fleet.MaxListSize {
		s.log.Info("fleet: list larger than a fleet distributes; each host fetches it", "list", name, "bytes", len(data))
		return
	}
	l := s.get()
	if l == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), listsTimeout)
	defer cancel()
	if err := l.Publish(ctx, name, data); err != nil {
		s.log.Warn("fleet: blocklist not shared; the other hosts fetch it themselves", "list", name, "err", err)
	}
}
