package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/filter"
	"github.com/moat-sh/moat/internal/jail"
	"github.com/moat-sh/moat/internal/logwatch"
)

// pipeline is one jail's data path:
// logwatch.Line → filter.Failure → jail.Decision → ban.Store → kernel sets.
// One goroutine runs it; the filter keeps per-connection state and is not
// shared.
type pipeline struct {
	name   string
	source logwatch.Source
	where  string // for status: "journal: SYSLOG_IDENTIFIER=sshd" or the paths
	filt   filter.Filter
	eng    *jail.Engine
	enf    *ban.Enforcer
	notify func(alert.Event)
	logins *loginBook
	log    *slog.Logger

	lines, matched, unattributable atomic.Uint64

	// per-batch scratch, reused so a steady stream allocates nothing
	res  filter.Result
	evs  []jail.Event
	decs []jail.Decision
	bans []ban.Ban
}

func (p *pipeline) run(ctx context.Context) error {
	return p.source.Run(ctx, func(batch []logwatch.Line) error {
		return p.handle(ctx, batch)
	})
}

// handle processes one batch. Its position is saved only after it returns
// nil, so a crash re-reads at most this batch; a failed enforcement is
// retried by the reconcile loop from the store, so it is not an error
// here.
func (p *pipeline) handle(ctx context.Context, batch []logwatch.Line) error {
	p.evs = p.evs[:0]
	for i := range batch {
		l := &batch[i]
		e := filter.EntryFromFields(l.Text, l.Time, l.Fields)
		e.Truncated = l.Truncated
		p.res.Reset()
		p.filt.Process(e, &p.res)
		for _, f := range p.res.Failures {
			if !f.Attributable() {
				p.unattributable.Add(1)
				continue
			}
			p.evs = append(p.evs, jail.Event{Addr: f.Addr, Time: f.Time, Attempts: f.Attempts})
		}
		for _, s := range p.res.Successes {
			p.loginSeen(s)
		}
	}
	p.lines.Add(uint64(len(batch)))
	p.matched.Add(uint64(len(p.evs)))
	if len(p.evs) == 0 {
		return nil
	}
	p.decs = p.eng.ObserveAll(p.evs, p.decs[:0])
	if len(p.decs) == 0 {
		return nil
	}
	p.bans = p.bans[:0]
	for _, d := range p.decs {
		p.bans = append(p.bans, ban.Ban{
			Prefix: d.Prefix, Jail: d.Jail, Origin: ban.OriginAuto,
			Reason:  fmt.Sprintf("%d failures", d.Failures),
			Created: d.At, Expires: d.At.Add(d.BanTime),
			Failures: d.Failures, Offence: d.Offence,
		})
	}
	if _, err := p.enf.Apply(ctx, p.bans); err != nil {
		p.log.Warn("enforce bans", "jail", p.name, "bans", len(p.bans), "err", err)
	}
	return nil
}

func (p *pipeline) loginSeen(s filter.Success) {
	if p.notify == nil {
		return
	}
	first := p.logins.first(s.User, s.Addr)
	p.notify(alert.Login{
		Service: "ssh", User: s.User, Addr: s.Addr.String(), Method: s.Method,
		Fingerprint: s.KeyFingerprint, NewSource: first, Time: s.Time,
	}.Event())
}

// jailStatus is what `moat jail status` shows per jail.
type jailStatus struct {
	Name           string     `json:"name"`
	Filter         string     `json:"filter"`
	Mode           string     `json:"mode"`
	Source         string     `json:"source"`
	Lines          uint64     `json:"lines"`
	Matched        uint64     `json:"failures_matched"`
	Unattributable uint64     `json:"unattributable"`
	MaxRetry       int        `json:"maxretry"`
	FindTime       string     `json:"findtime"`
	BanTime        string     `json:"bantime"`
	Stats          jail.Stats `json:"stats"`
}

func (p *pipeline) status() jailStatus {
	c := p.eng.Config()
	return jailStatus{
		Name: p.name, Filter: p.filt.Name(), Mode: p.filt.Mode(), Source: p.where,
		Lines: p.lines.Load(), Matched: p.matched.Load(), Unattributable: p.unattributable.Load(),
		MaxRetry: c.MaxRetry, FindTime: c.FindTime.String(), BanTime: c.BanTime.String(),
		Stats: p.eng.Stats(),
	}
}

// loginBook remembers which sources each user logged in from, to flag a
// login from a new one. Bounded: past the cap it forgets everything, which
// at worst flags a known source as new once.
type loginBook struct {
	mu   sync.Mutex
	seen map[string]bool
}

const maxLoginBook = 10000

func (b *loginBook) first(user string, addr netip.Addr) bool {
	key := user + " " + addr.String()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil || len(b.seen) >= maxLoginBook {
		b.seen = map[string]bool{}
	}
	if b.seen[key] {
		return false
	}
	b.seen[key] = true
	return true
}

// gatewayFailures feeds the gateway's failures to the gateway jail as
// events of the gateway filter's line format: the same pipeline as log
// lines, without a log round-trip.
type gatewayFailures struct{ ev *logwatch.Events }

func (g gatewayFailures) push(addr netip.Addr, at time.Time, kind, detail string) {
	f := filter.GatewayFailure(addr, at, filter.Kind(kind), detail)
	g.ev.Push(filter.AppendGatewayEvent(nil, f), nil)
}
