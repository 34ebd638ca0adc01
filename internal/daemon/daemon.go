// Package daemon wires the layers into `moat run`: the guard (log sources,
// filters, jails, the ban store and the kernel sets), the gateway, alerts,
// metrics and the control socket. It is the only package that imports
// every layer; the layers meet here through the small interfaces they
// declare.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/blocklist"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/control"
	"github.com/moat-sh/moat/internal/gateway"
	"github.com/moat-sh/moat/internal/geo"
	"github.com/moat-sh/moat/internal/guard"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/jail"
	"github.com/moat-sh/moat/internal/logwatch"
	"github.com/moat-sh/moat/internal/term"
)

// Options configure a daemon run.
type Options struct {
	// ConfigPath is moat.yaml; Explicit makes a missing file an error.
	ConfigPath string
	Explicit   bool
	// Socket is the control socket (control.DefaultPath when empty).
	Socket string
	// StateDir holds moat.db (/var/lib/moat when empty).
	StateDir string
	Version  string
	Log      *slog.Logger
	// Reload, when not nil, delivers reload requests (SIGHUP).
	Reload <-chan struct{}
	// Sets replaces the kernel sets (tests); nil uses table inet moat's.
	Sets ban.Sets
	// CheckEvery and AuditEvery space the monitors' host checks and drift
	// audits (DefaultCheckEvery, DefaultAuditEvery when zero).
	CheckEvery, AuditEvery time.Duration

	// reloadFaults make a reload's parts fail (tests).
	reloadFaults *reloadFaults
	// blockSink replaces the kernel's blocklist sets (tests).
	blockSink blocklist.Sink
	// tailscaleSocket replaces tailscaled's local API socket (tests).
	tailscaleSocket string
	// vpnRoot is where the applied WireGuard peers are read (tests; "" is /).
	vpnRoot string
	// tailscaleCLI replaces the tailscale command (tests).
	tailscaleCLI string
}

// reloadFaults break the parts of a reload that cannot be broken by a
// config alone (a config that passes validation): each, when set, is
// that part's error.
type reloadFaults struct {
	alerts, gateway func() error
}

// Daemon is a running `moat run`.
type Daemon struct {
	o      Options
	sd     *notifier // systemd's notify socket; nil when not under systemd
	log    *slog.Logger
	store  *ban.Store
	enf    *ban.Enforcer
	disp   *alert.Dispatcher
	gw     *gateway.Gateway
	gwFeed *guard.Feed
	queue  *banQueue
	reg    *prometheus.Registry
	met    *metrics
	mon    *monitor
	page   *statusPage // nil without status_page
	audits auditFile   // the audit history, parsed once per change
	h      *host.Host
	fleet  *fleetRun // nil: not in a fleet
	start  time.Time
	blocks blocklists // guard.blocklists (daemon/blocklist.go)

	reloading sync.Mutex // one reload at a time (SIGHUP, the control socket)

	mu        sync.Mutex
	cfg       *config.Config
	pipelines map[string]*runningPipeline
	wg        sync.WaitGroup
}

type runningPipeline struct {
	p      *pipeline
	cancel context.CancelFunc
	key    string // what, if changed by a reload, restarts the pipeline
}

// Run runs the daemon until ctx ends.
func Run(ctx context.Context, o Options) (err error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.StateDir == "" {
		o.StateDir = "/var/lib/moat"
	}
	cfg, err := loadConfig(o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	store, err := ban.Open(filepath.Join(o.StateDir, "moat.db"), ban.Options{})
	if err != nil {
		return fmt.Errorf("open ban store: %w", err)
	}
	defer store.Close()

	d := &Daemon{o: o, log: o.Log, store: store, cfg: cfg, h: host.New(""), start: time.Now(),
		pipelines: map[string]*runningPipeline{}, reg: prometheus.NewRegistry(), sd: notifierFromEnv(o.Log)}
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	sets := o.Sets
	if sets == nil {
		d.ensureBanSets(ctx, cfg)
		ks := &kernelSets{v6Prefix: cfg.Firewall.Ban.IPv6Prefix, log: o.Log}
		defer ks.Close()
		sets = ks
	}
	if msg := store.Recovered(); msg != "" {
		d.log.Error(msg)
	}
	d.enf = ban.NewEnforcer(store, sets, ban.EnforcerOptions{Log: o.Log, KernelGrace: ban.DefaultKernelGrace})
	d.queue = newBanQueue(d.enf, o.Log)
	restore := term.Begin(ctx, "restoring bans into the kernel") // a terminal only: see cli run
	r, err := d.enf.Reconcile(ctx)
	restore.Done(fmt.Sprintf("%d restored, %d refreshed, %d adopted", r.Added, r.Refreshed, r.Adopted))
	if err != nil {
		d.log.Warn("reconcile bans with the kernel; bans stay in the store and are retried", "err", err)
	} else {
		d.log.Info("bans reconciled", "result", fmt.Sprintf("%+v", r))
	}

	d.disp, err = alert.New(cfg.Alerts, alert.Options{Registerer: d.reg, Logger: o.Log})
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	// The dispatcher outlives the other components: its context ends only
	// after theirs did and they returned, so "moat stopped" and their last
	// events still go out (within alert.Options.DrainTimeout).
	actx, stopAlerts := context.WithCancel(context.WithoutCancel(ctx))
	alertsDone := make(chan struct{})
	go func() {
		defer close(alertsDone)
		if err := d.disp.Run(actx); err != nil {
			d.log.Error("component stopped", "component", "alerts", "err", err)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		d.sd.stopping()
		reason := "signal"
		if err != nil {
			reason = err.Error()
		}
		d.disp.Notify(alert.Lifecycle{Action: alert.Stopped, Version: o.Version, Reason: reason, Time: time.Now()}.Event())
		cancel()
		d.wg.Wait()
		stopAlerts()
		<-alertsDone
	}()
	d.disp.Notify(alert.Lifecycle{Action: alert.Started, Version: o.Version, Time: time.Now()}.Event())

	if cfg.Gateway != nil {
		d.gwFeed = guard.NewFeed(4096)
		deps := gateway.Deps{Bans: store, Failures: gatewayReporter{d.gwFeed},
			VPN: vpnSources(o.vpnRoot, cfg.VPN), Admin: adminPrefixes(cfg), Log: o.Log, Metrics: d.reg}
		if db := geoDB(cfg, o.Log); db != nil {
			defer db.Close()
			deps.Geo = db
		}
		d.gw, err = gateway.New(*cfg.Gateway, deps)
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		d.goRun(ctx, "gateway", d.gw.Run)
	}

	d.met = newMetrics(d)
	d.goRun(ctx, "ban queue", d.queue.run)
	d.startMonitor(ctx)
	d.goRun(ctx, "tailscale", d.watchTailscale) // daemon/tailscale.go
	d.goRun(ctx, "vpn watch", d.runVPNWatch)
	d.checkStore(time.Now())
	if err := d.startFleet(ctx, cfg); err != nil {
		return err
	}
	if err := d.startJails(ctx, cfg); err != nil {
		return err
	}
	d.startBlocklists(ctx, cfg)
	defer d.blocks.close()
	d.reg.MustRegister(blocklistMetrics{d})
	d.goRun(ctx, "ban events", d.forwardBanEvents)
	d.goRun(ctx, "expiry", d.expireLoop)
	if cfg.Alerts.Metrics != "" {
		d.goRun(ctx, "metrics", func(ctx context.Context) error { return d.serveMetrics(ctx, cfg.Alerts.Metrics) })
	}
	// The status page reads what the lines above set up (the monitors,
	// the jails): it serves once they are.
	if err := d.startStatusPage(ctx, cfg); err != nil {
		return err
	}
	// Counted before the control socket starts: from then on a reload may
	// change the pipelines.
	jails := len(d.pipelines)
	srv := control.NewServer(o.Socket, o.Log)
	d.handlers(srv)
	d.goRun(ctx, "control socket", srv.Run)
	d.log.Info("moat running", "version", o.Version, "config", cfg.File, "jails", jails)
	d.goRun(ctx, "systemd notify", func(ctx context.Context) error { return d.notifyReady(ctx, srv, jails) })

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-o.Reload:
			if err := d.reload(ctx); err != nil {
				d.log.Error("reload refused; the running config stays", "err", err)
			}
		}
	}
}

// goRun runs a component until ctx ends; a component that fails stops the
// daemon's context only if it is essential, else it is logged.
func (d *Daemon) goRun(ctx context.Context, name string, fn func(context.Context) error) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("component stopped", "component", name, "err", err)
		}
	}()
}

func (d *Daemon) jailOptions(cfg *config.Config) jail.Options {
	opts := guard.Options(cfg, d.h)
	opts.History, opts.Banned = d.store, eitherBanned{d.store, d.queue}
	return opts
}

// eitherBanned is banned in the store or in a decision on its way there.
type eitherBanned [2]jail.Banned

func (e eitherBanned) Contains(a netip.Addr) bool { return e[0].Contains(a) || e[1].Contains(a) }

func adminPrefixes(cfg *config.Config) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range cfg.Host.Admin.Sources {
		out = append(out, c.Prefix)
	}
	return out
}

// sourceFor builds a jail's log source, and says where it reads.
func (d *Daemon) sourceFor(name string, j jail.Jail) (logwatch.Source, string, error) {
	store := positions{d.store.Positions()}
	kind, paths, matches := j.Source, j.Paths, j.Journal
	if kind == "auto" {
		switch {
		case len(paths) > 0:
			kind = "file"
		case len(matches) > 0:
			kind = "journal"
		case j.Filter == "sshd":
			c := logwatch.ChooseSSHD(d.h)
			kind, paths, matches = string(c.Kind), c.Paths, c.Matches
			// A file source was warned about by loadConfig (preflight).
			d.log.Info("sshd's log source", "jail", name, "kind", string(c.Kind), "why", c.Reason)
		default:
			return nil, "", fmt.Errorf("no log source: set guard.jails.%s.paths or journal", name)
		}
	}
	switch kind {
	case "journal":
		src, err := logwatch.NewJournal(logwatch.JournalConfig{Name: "journal:" + name, Matches: matches, Store: store, Log: d.log})
		return src, "journal: " + strings.Join(matches, " "), err
	case "file":
		// Who may write paths: loadConfig warned (internal/preflight).
		if len(paths) != 1 {
			return fanIn(name, paths, store, d.log)
		}
		src, err := logwatch.NewFile(logwatch.FileConfig{Path: paths[0], Name: "file:" + paths[0], Store: store, Log: d.log})
		return src, "file: " + paths[0], err
	}
	return nil, "", fmt.Errorf("unknown source %q", kind)
}

func (d *Daemon) startJails(ctx context.Context, cfg *config.Config) error {
	opts := d.jailOptions(cfg)
	for name, j := range guard.Jails(cfg) {
		p, err := d.buildPipeline(cfg, name, j, nil, opts)
		if err != nil {
			return err
		}
		d.startPipeline(ctx, p, sourceKey(j))
	}
	return nil
}

// buildPipeline prepares jail name's pipeline (source, filter, engine)
// without starting anything; eng, when not nil, is the engine to keep
// (its window state survives a restart of the source).
func (d *Daemon) buildPipeline(cfg *config.Config, name string, j jail.Jail, eng *jail.Engine, opts jail.Options) (*pipeline, error) {
	if eng == nil {
		var err error
		if eng, err = jail.New(name, j, opts); err != nil {
			return nil, fmt.Errorf("jail %s: %w", name, err)
		}
	}
	filt, err := guard.NewFilter(cfg, j, nil)
	if err != nil {
		return nil, fmt.Errorf("jail %s: %w", name, err)
	}
	p := &pipeline{name: name, eng: eng, enf: d.enf, queue: d.queue,
		notify: d.disp.Notify, logins: &loginBook{}, log: d.log}
	if name == "gateway" && j.Filter == "gateway" && d.gwFeed != nil && len(j.Paths) == 0 {
		p.feed, p.where = d.gwFeed, "gateway failures"
	} else if p.source, p.where, err = d.sourceFor(name, j); err != nil {
		return nil, fmt.Errorf("jail %s: %w", name, err)
	}
	p.unit = &guard.Unit{Name: name, Filter: filt, Engine: eng, Success: p.loginSeen}
	return p, nil
}

// startPipeline runs a built pipeline and lists it.
func (d *Daemon) startPipeline(ctx context.Context, p *pipeline, key string) {
	pctx, cancel := context.WithCancel(ctx)
	d.mu.Lock()
	d.pipelines[p.name] = &runningPipeline{p: p, cancel: cancel, key: key}
	d.mu.Unlock()
	d.log.Info("jail started", "jail", p.name, "filter", p.filt().Name(), "mode", p.filt().Mode(), "source", p.where)
	d.goRun(pctx, "jail "+p.name, p.run)
}

func sourceKey(j jail.Jail) string {
	return fmt.Sprint(j.Filter, j.Mode, j.Source, j.Paths, j.Journal)
}

// reload applies a new config all or nothing, the way gateway.Reload does
// for the gateway alone: every part that can fail is prepared first (the
// config, each new or changed jail's pipeline, each changed jail's new
// settings, the alert notifiers), then the gateway reloads (atomic on its
// own, and the last step that can fail), then everything else is
// committed, which cannot fail. A refused reload leaves every part as it
// ran. Jails whose source and filter are unchanged keep their window
// state; the others restart with the same engine.
func (d *Daemon) reload(ctx context.Context) (err error) {
	d.reloading.Lock()
	defer d.reloading.Unlock()
	d.sd.reloading()
	defer func() { d.sd.reloaded(err) }()
	cfg, err := loadConfig(d.o)
	if err != nil {
		return err
	}
	if (d.gw != nil) != (cfg.Gateway != nil) {
		return errors.New("gateway: adding or removing the gateway section needs a restart of moat run")
	}
	if err := fleetReloadable(d.cfg, cfg); err != nil {
		return err
	}

	// Prepare: nothing changes yet.
	opts := d.jailOptions(cfg)
	want := guard.Jails(cfg)
	d.mu.Lock()
	running := maps.Clone(d.pipelines)
	d.mu.Unlock()
	type restart struct {
		old *runningPipeline
		p   *pipeline
		j   jail.Jail
	}
	var stop []string
	var inPlace, restarts []restart
	var starts []*pipeline
	for _, name := range slices.Sorted(maps.Keys(running)) {
		rp := running[name]
		j, ok := want[name]
		if !ok {
			stop = append(stop, name)
			continue
		}
		// The new settings must take: checked on a scratch engine.
		if _, err := jail.New(name, j, opts); err != nil {
			return fmt.Errorf("jail %s: %w", name, err)
		}
		if sourceKey(j) == rp.key {
			inPlace = append(inPlace, restart{old: rp, j: j})
			continue
		}
		p, err := d.buildPipeline(cfg, name, j, rp.p.eng, opts)
		if err != nil {
			return err
		}
		restarts = append(restarts, restart{old: rp, p: p, j: j})
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if _, ok := running[name]; ok {
			continue
		}
		p, err := d.buildPipeline(cfg, name, want[name], nil, opts)
		if err != nil {
			return err
		}
		starts = append(starts, p)
	}
	faults := d.o.reloadFaults
	if faults == nil {
		faults = &reloadFaults{}
	}
	commitAlerts, err := d.disp.Prepare(cfg.Alerts)
	if err == nil && faults.alerts != nil {
		err = faults.alerts()
	}
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	commitPage, abortPage, err := d.prepareStatusPage(ctx, cfg)
	if err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	defer func() {
		if err != nil {
			abortPage()
		}
	}()
	// The monitors take the new config with d.cfg below: their audit
	// options are derived from it, which cannot fail.
	// The gateway last: it prepares and commits in one step.
	if faults.gateway != nil {
		if err := faults.gateway(); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
	}
	if d.gw != nil {
		if err := d.gw.ReloadVPN(*cfg.Gateway, vpnSources(d.o.vpnRoot, cfg.VPN)); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
	}

	// Commit: nothing below can fail.
	commitAlerts()
	d.mu.Lock()
	for _, name := range stop {
		running[name].cancel()
		delete(d.pipelines, name)
	}
	d.mu.Unlock()
	for _, r := range inPlace {
		if err := r.old.p.eng.Reconfigure(r.j, opts); err != nil {
			d.log.Error("reconfigure jail after its check passed", "jail", r.old.p.name, "err", err)
		}
	}
	for _, r := range restarts {
		r.old.cancel()
		if err := r.p.eng.Reconfigure(r.j, opts); err != nil {
			d.log.Error("reconfigure jail after its check passed", "jail", r.p.name, "err", err)
		}
		d.startPipeline(ctx, r.p, sourceKey(r.j))
	}
	for _, p := range starts {
		d.startPipeline(ctx, p, sourceKey(want[p.name]))
	}
	commitPage()
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.startBlocklists(ctx, cfg)
	d.mon.requestAudit() // did the new config drift?
	d.log.Info("config reloaded", "config", cfg.File)
	return nil
}

// expireLoop ends bans whose time is up. The kernel drops its own elements
// by their timeouts; this keeps the store and the alerts in step.
func (d *Daemon) expireLoop(ctx context.Context) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	reconcile := time.NewTicker(time.Minute)
	defer reconcile.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			if _, err := d.enf.Expire(ctx); err != nil {
				d.log.Warn("expire bans", "err", err)
			}
			d.checkStore(now)
		case now := <-reconcile.C:
			// Re-adds bans the kernel lost (a firewall re-apply, a table
			// loaded after moat started).
			if _, err := d.enf.Reconcile(ctx); err != nil {
				d.log.Debug("reconcile bans", "err", err)
			}
			d.mu.Lock()
			for _, rp := range d.pipelines {
				rp.p.eng.Sweep(now)
			}
			d.mu.Unlock()
			// A year of history is plenty for incremental bantime.
			if _, err := d.store.PruneHistory(ctx, now.AddDate(-1, 0, 0)); err != nil {
				d.log.Warn("prune ban history", "err", err)
			}
		}
	}
}

func (d *Daemon) forwardBanEvents(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-d.enf.Events():
			b := ev.Ban
			d.met.banEvent(ev)
			d.page.bump()
			d.fleetEvent(ev)
			switch ev.Kind {
			case ban.EventBan:
				dur := time.Duration(0)
				if !b.Expires.IsZero() {
					dur = b.Expires.Sub(b.Created)
				}
				d.disp.Notify(alert.Ban{Jail: b.Jail, Addr: b.Prefix.String(), Failures: b.Failures, Duration: dur,
					Manual: b.Origin != ban.OriginAuto && !isFleet(b.Origin), Reason: b.Reason, Time: ev.At}.Event())
			case ban.EventUnban, ban.EventExpire:
				d.disp.Notify(alert.Unban{Jail: b.Jail, Addr: b.Prefix.String(), Manual: ev.Kind == ban.EventUnban, Time: ev.At}.Event())
			}
		}
	}
}

// serveMetrics serves Prometheus metrics, on loopback or VPN addresses only
// (config validation refuses others).
func (d *Daemon) serveMetrics(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func geoDB(cfg *config.Config, log *slog.Logger) *geo.DB {
	if cfg.Firewall.Geo.Database == "" {
		return nil
	}
	db, err := geo.Open(cfg.Firewall.Geo.Database)
	if err != nil {
		log.Warn("geo database", "err", err)
		return nil
	}
	return db
}
