package daemon

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moat-sh/moat/internal/audit"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/statuspage"
)

// statusPage is the daemon's side of the status page: the page's data
// source, and the generation that moves with every ban event so the page
// is rebuilt when, and only when, something changed (or a refresh
// interval passed: the audit and the host's conditions change without
// a ban).
type statusPage struct {
	d   *Daemon
	gen atomic.Uint64
	geo statuspage.Country

	mu     sync.Mutex
	win    *statuspage.Window // the last week of bans, followed entry by entry
	lastID int64              // the last history entry in win

	auditVersion int // of d.audits, that audit was derived from
	audit        statuspage.AuditView
}

// bump marks the ban data changed; nil-safe for a daemon without a page.
func (p *statusPage) bump() {
	if p != nil {
		p.gen.Add(1)
	}
}

// Generation implements statuspage.Source.
func (p *statusPage) Generation() uint64 { return p.gen.Load() }

// Snapshot implements statuspage.Source: the status `moat status --json`
// prints, the ban history of the last week, and the audit's history.
func (p *statusPage) Snapshot(ctx context.Context, now time.Time) (*statuspage.Data, error) {
	st := p.d.statusWith(ctx, p.firewall)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.follow(ctx, now); err != nil {
		return nil, err
	}
	data := &statuspage.Data{Status: st, Bans: p.win.View(now), VPN: statusPageVPN(&st)}
	h, version, err := p.d.audits.versioned(p.d.o.StateDir)
	if err != nil {
		// The rest of the page stands; the status carries the error.
		p.d.log.Debug("status page: audit history", "err", err)
	}
	if version != p.auditVersion {
		p.audit, p.auditVersion = auditView(h), version
	}
	data.Audit = p.audit
	return data, nil
}

// firewall reads the firewall's status through the metrics' cache (at
// most once per fwCacheTTL): it runs nft, the dearest part of a page.
func (p *statusPage) firewall(ctx context.Context) (*firewall.Status, string) {
	if p.d.met == nil {
		return readFirewall(ctx)
	}
	fw, err := p.d.met.fw.get()
	if err != nil {
		return nil, err.Error()
	}
	return fw, ""
}

// follow adds the history entries recorded since the last look to the
// window and lets the old ones go. The first look reads the whole week.
func (p *statusPage) follow(ctx context.Context, now time.Time) error {
	if p.win == nil {
		p.win = statuspage.NewWindow(p.geo)
	}
	entries, err := p.d.store.HistoryAfter(ctx, p.lastID, now.Add(-statuspage.Span))
	if err != nil {
		return err
	}
	for _, e := range entries {
		p.win.Add(statuspage.Record{Prefix: e.Prefix, Jail: e.Jail, Reason: e.Reason, Origin: string(e.Origin),
			Created: e.Created, Expires: e.Expires})
		p.lastID = e.ID
	}
	p.win.Advance(now)
	return nil
}

// statusPageVPN is the WireGuard interface and peers of the status, as the
// page shows them; nil ("no VPN layer data") when moat manages none.
func statusPageVPN(st *Status) *statuspage.VPNView {
	if st == nil || st.VPN == nil {
		return nil
	}
	v := &statuspage.VPNView{Interface: st.VPN.Interface, Peers: []statuspage.Peer{}}
	for _, p := range st.VPN.Peers {
		v.Peers = append(v.Peers, statuspage.Peer{
			Name: p.Name, Addresses: p.Addresses, Endpoint: p.Endpoint, LastHandshake: p.LastHandshake,
			RxBytes: uint64(max(p.RxBytes, 0)), TxBytes: uint64(max(p.TxBytes, 0)),
		})
	}
	return v
}

// auditView is the drift audit's history for the page: the score over
// time (thinned to what a chart shows) and the last run's high and
// critical findings.
func auditView(h auditHistory) statuspage.AuditView {
	v := statuspage.AuditView{Points: []statuspage.ScorePoint{}, Findings: []statuspage.Finding{}}
	for _, r := range h.Runs {
		v.Points = append(v.Points, statuspage.ScorePoint{Time: r.Time, Score: r.Score})
	}
	v.Points = statuspage.Thin(v.Points)
	if n := len(h.Runs); n > 0 {
		for _, f := range h.Runs[n-1].Urgent {
			v.Findings = append(v.Findings, statuspage.Finding{ID: f.ID, Severity: f.Severity.String(),
				Title: f.Title, Subject: f.Subject, Fix: f.Fix})
		}
		// Critical first, as the terminal shows them.
		sortFindings(v.Findings)
	}
	return v
}

func sortFindings(fs []statuspage.Finding) {
	rank := func(s string) int {
		if s == audit.Critical.String() {
			return 0
		}
		return 1
	}
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && rank(fs[j].Severity) < rank(fs[j-1].Severity); j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// startStatusPage serves the page when moat.yaml has a status_page
// section. Its address was checked with the config (loopback or
// vpn.ranges); each connection's source is checked again against the
// same rule.
func (d *Daemon) startStatusPage(ctx context.Context, cfg *config.Config) error {
	c := cfg.StatusPage
	if c == nil {
		return nil
	}
	var token string
	if c.TokenFile != "" {
		t, err := statuspage.ReadToken(c.TokenFile)
		if err != nil {
			return err
		}
		token = t
	}
	p := &statusPage{d: d}
	if db := geoDB(cfg, d.log); db != nil {
		go func() {
			<-ctx.Done()
			db.Close()
		}()
		p.geo = db
	}
	vpnCfg := cfg.VPN
	srv, err := statuspage.New(statuspage.Options{Config: *c, Token: token, Source: p, Allow: vpnCfg.AllowedSource, Log: d.log})
	if err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	d.page = p
	// Read the week's history now, not on the first visit.
	d.goRun(ctx, "status page history", func(ctx context.Context) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.follow(ctx, time.Now())
	})
	d.goRun(ctx, "status page", srv.Run)
	return nil
}

// statusPageReloaded says, on a reload, that a changed status_page
// section waits for a restart: the listener and the token are set up
// once.
func (d *Daemon) statusPageReloaded(old, cur *config.Config) {
	a, b := old.StatusPage, cur.StatusPage
	if (a == nil) == (b == nil) && (a == nil || *a == *b) {
		return
	}
	d.log.Warn("status_page changed: the running page keeps its old settings until moat run restarts")
}
