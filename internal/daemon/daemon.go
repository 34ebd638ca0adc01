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
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/control"
	"github.com/moat-sh/moat/internal/filter"
	"github.com/moat-sh/moat/internal/gateway"
	"github.com/moat-sh/moat/internal/geo"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/jail"
	"github.com/moat-sh/moat/internal/logwatch"
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
}

// Daemon is a running `moat run`.
type Daemon struct {
	o     Options
	log   *slog.Logger
	store *ban.Store
	enf   *ban.Enforcer
	disp  *alert.Dispatcher
	gw    *gateway.Gateway
	gwEv  *logwatch.Events
	reg   *prometheus.Registry
	met   *metrics
	mon   *monitor
	h     *host.Host
	start time.Time

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
	cfg, err := config.Load(o.ConfigPath, o.Explicit)
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
		pipelines: map[string]*runningPipeline{}, reg: prometheus.NewRegistry()}
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	sets := o.Sets
	if sets == nil {
		ks := &kernelSets{v6Prefix: cfg.Firewall.Ban.IPv6Prefix, log: o.Log}
		defer ks.Close()
		sets = ks
	}
	d.enf = ban.NewEnforcer(store, sets, ban.EnforcerOptions{})
	if r, err := d.enf.Reconcile(ctx); err != nil {
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
		d.gwEv = logwatch.NewEvents("gateway", 4096)
		deps := gateway.Deps{Bans: store, Failures: gatewayReporter{gatewayFailures{d.gwEv}},
			VPN: cfg.VPN.Prefixes(), Admin: adminPrefixes(cfg), Log: o.Log, Metrics: d.reg}
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
	d.startMonitor(ctx)
	if err := d.startJails(ctx, cfg); err != nil {
		return err
	}
	d.goRun(ctx, "ban events", d.forwardBanEvents)
	d.goRun(ctx, "expiry", d.expireLoop)
	if cfg.Alerts.Metrics != "" {
		d.goRun(ctx, "metrics", func(ctx context.Context) error { return d.serveMetrics(ctx, cfg.Alerts.Metrics) })
	}
	srv := control.NewServer(o.Socket, o.Log)
	d.handlers(srv)
	d.goRun(ctx, "control socket", srv.Run)
	d.log.Info("moat running", "version", o.Version, "config", cfg.File, "jails", len(d.pipelines))

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

// jailsOf returns the jails to run: the configured ones over the built-in
// sshd jail (and the gateway jail when the gateway runs), minus disabled.
func jailsOf(cfg *config.Config) map[string]jail.Jail {
	out := map[string]jail.Jail{}
	if !cfg.Guard.IsEnabled() {
		return out
	}
	out["sshd"] = jail.Jail{}
	if cfg.Gateway != nil {
		out["gateway"] = jail.Jail{}
	}
	for name, j := range cfg.Guard.Jails {
		out[name] = j
	}
	for name, j := range out {
		if j.Enabled != nil && !*j.Enabled {
			delete(out, name)
			continue
		}
		out[name] = jail.JailDefaults(name, j)
	}
	return out
}

func (d *Daemon) jailOptions(cfg *config.Config) jail.Options {
	return jail.Options{
		IPv6Prefix: cfg.Firewall.Ban.IPv6Prefix,
		Ignore:     d.ignoreList(cfg),
		MaxTracked: cfg.Guard.MaxTracked,
		History:    d.store,
		Banned:     d.store,
	}
}

// ignoreList is every source never banned: guard.ignore, the host's own
// addresses, the VPN, the admin sources and the operator's own SSH client.
func (d *Daemon) ignoreList(cfg *config.Config) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range cfg.Guard.Ignore {
		out = append(out, c.Prefix)
	}
	out = append(out, cfg.VPN.Prefixes()...)
	out = append(out, adminPrefixes(cfg)...)
	out = append(out, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
	if ifs, err := d.h.Interfaces(); err == nil {
		for _, i := range ifs {
			for _, a := range i.Addrs {
				out = append(out, netip.PrefixFrom(a.Addr(), a.Addr().BitLen()))
			}
		}
	}
	// The operator: this process's SSH session, or (under systemd, which
	// has none) every session open now.
	ops := []host.Operator{host.New("").Operator(os.Getpid(), os.Getenv)}
	if !ops[0].Conn.Valid() {
		ops, _ = host.New("").SSHSessions()
	}
	for _, o := range ops {
		if o.Conn.Valid() {
			a := o.Conn.Client.Addr()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

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
	if name == "gateway" && j.Filter == "gateway" && d.gwEv != nil && len(paths) == 0 {
		return d.gwEv, "gateway events", nil
	}
	if kind == "auto" {
		switch {
		case len(paths) > 0:
			kind = "file"
		case len(matches) > 0:
			kind = "journal"
		case j.Filter == "sshd":
			c := logwatch.ChooseSSHD(d.h)
			kind, paths, matches = string(c.Kind), c.Paths, c.Matches
		default:
			return nil, "", fmt.Errorf("jail %s: no log source: set guard.jails.%s.paths or journal", name, name)
		}
	}
	switch kind {
	case "journal":
		src, err := logwatch.NewJournal(logwatch.JournalConfig{Name: "journal:" + name, Matches: matches, Store: store, Log: d.log})
		return src, "journal: " + strings.Join(matches, " "), err
	case "file":
		if len(paths) != 1 {
			return fanIn(name, paths, store, d.log)
		}
		src, err := logwatch.NewFile(logwatch.FileConfig{Path: paths[0], Name: "file:" + paths[0], Store: store, Log: d.log})
		return src, "file: " + paths[0], err
	}
	return nil, "", fmt.Errorf("jail %s: unknown source %q", name, kind)
}

func (d *Daemon) filterFor(cfg *config.Config, j jail.Jail) (filter.Filter, error) {
	return cfg.Filter(j.Filter, j.Mode, filter.Options{})
}

func (d *Daemon) startJails(ctx context.Context, cfg *config.Config) error {
	opts := d.jailOptions(cfg)
	for name, j := range jailsOf(cfg) {
		if err := d.startJail(ctx, cfg, name, j, opts); err != nil {
			return err
		}
	}
	return nil
}

func (d *Daemon) startJail(ctx context.Context, cfg *config.Config, name string, j jail.Jail, opts jail.Options) error {
	eng, err := jail.New(name, j, opts)
	if err != nil {
		return fmt.Errorf("jail %s: %w", name, err)
	}
	return d.startPipeline(ctx, cfg, name, j, eng)
}

func (d *Daemon) startPipeline(ctx context.Context, cfg *config.Config, name string, j jail.Jail, eng *jail.Engine) error {
	src, where, err := d.sourceFor(name, j)
	if err != nil {
		return err
	}
	filt, err := d.filterFor(cfg, j)
	if err != nil {
		return fmt.Errorf("jail %s: %w", name, err)
	}
	p := &pipeline{name: name, source: src, where: where, filt: filt, eng: eng, enf: d.enf,
		notify: d.disp.Notify, logins: &loginBook{}, log: d.log}
	pctx, cancel := context.WithCancel(ctx)
	d.mu.Lock()
	d.pipelines[name] = &runningPipeline{p: p, cancel: cancel, key: sourceKey(j)}
	d.mu.Unlock()
	d.log.Info("jail started", "jail", name, "filter", filt.Name(), "mode", filt.Mode(), "source", where)
	d.goRun(pctx, "jail "+name, p.run)
	return nil
}

func sourceKey(j jail.Jail) string {
	return fmt.Sprint(j.Filter, j.Mode, j.Source, j.Paths, j.Journal)
}

// reload applies a new config without losing jails' window state: jails
// whose source and filter are unchanged are reconfigured in place; the
// others restart. An invalid config changes nothing.
func (d *Daemon) reload(ctx context.Context) error {
	cfg, err := config.Load(d.o.ConfigPath, d.o.Explicit)
	if err != nil {
		return err
	}
	if d.gw != nil && cfg.Gateway != nil {
		if err := d.gw.Reload(*cfg.Gateway); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
	}
	if err := d.disp.Reload(cfg.Alerts); err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	opts := d.jailOptions(cfg)
	want := jailsOf(cfg)
	d.mu.Lock()
	running := d.pipelines
	d.mu.Unlock()
	for name, rp := range running {
		j, ok := want[name]
		switch {
		case !ok:
			rp.cancel()
			d.mu.Lock()
			delete(d.pipelines, name)
			d.mu.Unlock()
		case sourceKey(j) == rp.key:
			if err := rp.p.eng.Reconfigure(j, opts); err != nil {
				return fmt.Errorf("jail %s: %w", name, err)
			}
		default:
			rp.cancel()
			if err := d.startPipeline(ctx, cfg, name, j, rp.p.eng); err != nil {
				return err
			}
			if err := rp.p.eng.Reconfigure(j, opts); err != nil {
				return fmt.Errorf("jail %s: %w", name, err)
			}
		}
	}
	for name, j := range want {
		if _, ok := running[name]; !ok {
			if err := d.startJail(ctx, cfg, name, j, opts); err != nil {
				return err
			}
		}
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
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
		case <-t.C:
			if _, err := d.enf.Expire(ctx); err != nil {
				d.log.Warn("expire bans", "err", err)
			}
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
			switch ev.Kind {
			case ban.EventBan:
				dur := time.Duration(0)
				if !b.Expires.IsZero() {
					dur = b.Expires.Sub(b.Created)
				}
				d.disp.Notify(alert.Ban{Jail: b.Jail, Addr: b.Prefix.String(), Failures: b.Failures, Duration: dur,
					Manual: b.Origin != ban.OriginAuto, Reason: b.Reason, Time: ev.At}.Event())
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

// gatewayReporter adapts the guard's event feed to the gateway's Failures.
type gatewayReporter struct{ g gatewayFailures }

func (r gatewayReporter) Report(f gateway.Failure) { r.g.push(f.Addr, f.Time, f.Kind, f.Detail) }
