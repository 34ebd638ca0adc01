package gateway

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Failure is a client's misbehaviour seen by the gateway, for the guard's
// gateway jail: a honeypot hit, failed basic auth, a rate-limit trip.
type Failure struct {
	Addr   netip.Addr
	Time   time.Time
	Kind   string // FailureHoneypot, FailureAuth or FailureRateLimit
	Detail string // for logs: the path, route or user; client-chosen text, bounded
}

// Bans is the in-memory mirror of active bans. It matters for clients the
// firewall cannot see: those behind a trusted proxy.
type Bans interface {
	Contains(netip.Addr) bool
}

// Failures receives failures. Report is called on the request path and
// must not block (queue, or drop when full).
type Failures interface {
	Report(Failure)
}

// Geo places an address in a country (internal/geo's *DB).
type Geo interface {
	Country(netip.Addr) (string, bool)
}

// Deps are what the gateway needs from the rest of moat. Every field is
// optional, except that a route with a geo policy needs Geo.
type Deps struct {
	Bans     Bans
	Failures Failures
	Geo      Geo
	VPN      []netip.Prefix // what allow: [vpn] admits
	Admin    []netip.Prefix // what allow: [admin] admits
	Log      *slog.Logger
	Metrics  prometheus.Registerer // a per-daemon registry; nil for none
}

// Gateway is the edge reverse proxy. New sets it up and binds its ports,
// Run serves until its context ends, Reload swaps configs while serving.
type Gateway struct {
	deps        Deps
	log         *slog.Logger
	metrics     *metrics
	failCount   map[string]prometheus.Counter
	transports  transports
	fastPools   fastPools
	bcryptSlots chan struct{}
	logLimit    logLimit
	// now is the clock of rate limits and auth budgets, in monotonic
	// nanoseconds: monoNow, or a test's fake clock set before Run.
	now func() int64

	rt        atomic.Pointer[snapshot]
	acme      atomic.Pointer[acmeManager]
	httpsPort atomic.Pointer[string] // for redirects; nil when 443

	baseCtx    context.Context // parent of every request; cancelled last at shutdown
	cancelBase context.CancelFunc

	mu       sync.Mutex // Reload, Run and Close
	http     *front
	https    *front
	retired  []*front // fronts whose address changed: still serving their connections
	runCtx   context.Context
	running  bool
	finished bool
}

// shutdownGrace is how long Run waits for requests in flight when its
// context ends.
const shutdownGrace = 10 * time.Second

// New validates cfg (after filling defaults), loads everything it names
// (certificates, htpasswd files) and binds the listeners. It serves
// nothing until Run.
func New(cfg Config, deps Deps) (*Gateway, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	g := &Gateway{
		deps:        deps,
		log:         deps.Log,
		metrics:     newMetrics(deps.Metrics),
		bcryptSlots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
		logLimit:    logLimit{every: time.Second},
		now:         monoNow,
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.failCount = map[string]prometheus.Counter{}
	for _, k := range []string{FailureHoneypot, FailureAuth, FailureRateLimit} {
		g.failCount[k] = g.metrics.failures.WithLabelValues(k)
	}
	g.baseCtx, g.cancelBase = context.WithCancel(context.Background())
	rt, err := g.build(cfg)
	if err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			g.release()
		}
	}()
	if cfg.AccessLog != "" {
		if rt.log, err = openAccessLog(cfg.AccessLog, g.metrics.logLost); err != nil {
			return nil, err
		}
	}
	g.rt.Store(rt)
	if g.http, err = g.listen("http", cfg.HTTP, nil); err != nil {
		return nil, err
	}
	if g.https, err = g.listen("https", cfg.HTTPS, g.tlsConfig()); err != nil {
		return nil, err
	}
	g.setHTTPSPort()
	if len(rt.acmeHosts) > 0 {
		a, err := newACME(cfg, g.http.port(), g.https.port(), g.log, g.metrics)
		if err != nil {
			return nil, err
		}
		g.acme.Store(a)
	}
	ok = true
	return g, nil
}

// Check validates cfg and loads everything it names (certificates,
// htpasswd files, the ACME CA root), as New would, without binding ports or
// starting anything: for `moat gateway check` and config tests.
func Check(cfg Config, deps Deps) error {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	g := &Gateway{deps: deps, log: deps.Log, metrics: newMetrics(nil), bcryptSlots: make(chan struct{}, 1), now: monoNow}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	defer g.transports.closeAll()
	defer g.fastPools.retain(nil)
	if _, err := g.build(cfg); err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	if cfg.needsACME() && cfg.ACME.CARoot != "" {
		if data, err := os.ReadFile(cfg.ACME.CARoot); err != nil || !x509.NewCertPool().AppendCertsFromPEM(data) {
			return fmt.Errorf("gateway config: acme.ca_root %s: not a readable PEM certificate", cfg.ACME.CARoot)
		}
	}
	return nil
}

// HTTPAddr and HTTPSAddr are the bound listen addresses (useful with
// port 0).
// A Reload may swap the fronts, so they are read under the lock.
func (g *Gateway) HTTPAddr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.http.ln.Addr().String()
}

// HTTPSAddr: see HTTPAddr.
func (g *Gateway) HTTPSAddr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.https.ln.Addr().String()
}

func (g *Gateway) setHTTPSPort() {
	if p := g.https.port(); p != 443 {
		s := strconv.Itoa(p)
		g.httpsPort.Store(&s)
	} else {
		g.httpsPort.Store(nil)
	}
}

// Run serves until ctx ends, then stops accepting, lets requests in flight
// finish (up to shutdownGrace) and releases everything. It returns nil
// after a clean shutdown.
func (g *Gateway) Run(ctx context.Context) error {
	g.mu.Lock()
	if g.running || g.finished {
		g.mu.Unlock()
		return errors.New("gateway: Run called twice, or after Close")
	}
	g.running, g.runCtx = true, ctx
	rt := g.rt.Load()
	for _, f := range []*front{g.http, g.https} {
		f.start(f.newGeneration(rt.cfg))
		go f.acceptLoop()
	}
	var err error
	if a := g.acme.Load(); a != nil {
		err = a.start(ctx, rt.acmeNames())
	}
	g.mu.Unlock()
	if err != nil {
		g.log.Error("certificates", "err", err)
	}
	g.log.Info("gateway serving", "http", g.HTTPAddr(), "https", g.HTTPSAddr(), "sites", len(rt.sites))
	prune := time.NewTicker(idleConnTimeout / 3)
	defer prune.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-prune.C:
			g.fastPools.prune()
		}
	}
	g.shutdown()
	return nil
}

func (g *Gateway) shutdown() {
	g.mu.Lock()
	g.finished = true
	fronts := append([]*front{g.http, g.https}, g.retired...)
	g.mu.Unlock()
	for _, f := range fronts {
		f.ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range fronts {
		f.mu.Lock()
		for _, gn := range f.gens {
			wg.Go(func() {
				if gn.srv.Shutdown(ctx) != nil {
					gn.srv.Close()
				}
			})
		}
		f.mu.Unlock()
	}
	wg.Wait()
	g.release()
}

// release frees what New acquired.
func (g *Gateway) release() {
	g.cancelBase() // ends upgraded (WebSocket) connections too
	for _, f := range []*front{g.http, g.https} {
		if f != nil {
			f.ln.Close()
		}
	}
	if a := g.acme.Load(); a != nil {
		a.stop()
	}
	g.transports.closeAll()
	g.fastPools.retain(nil)
	if rt := g.rt.Load(); rt != nil && rt.log != nil {
		rt.log.close()
	}
}

// Close releases a Gateway that was never Run. After Run it does nothing.
func (g *Gateway) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running || g.finished {
		return nil
	}
	g.finished = true
	g.release()
	return nil
}

// Reload validates newCfg and builds everything it needs (certificates,
// htpasswd files, listeners on changed addresses, a certificate manager
// for changed ACME settings) before swapping it in; requests in flight and
// keep-alive connections carry on. When anything fails the old config
// keeps serving and the error says why.
func (g *Gateway) Reload(newCfg Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reload(newCfg)
}

// ReloadVPN is Reload with a new set of sources for allow: [vpn]: the
// VPN's peers come and go (a WireGuard peer, and a network routed through
// it, counts as soon as it is applied). All or nothing: on error the
// previous config and set keep serving.
func (g *Gateway) ReloadVPN(newCfg Config, vpn []netip.Prefix) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.deps.VPN
	g.deps.VPN = slices.Clone(vpn)
	if err := g.reload(newCfg); err != nil {
		g.deps.VPN = old
		return err
	}
	return nil
}

// SetVPN replaces the sources allow: [vpn] admits, keeping the config.
func (g *Gateway) SetVPN(vpn []netip.Prefix) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if slices.Equal(g.deps.VPN, vpn) {
		return nil
	}
	old := g.deps.VPN
	g.deps.VPN = slices.Clone(vpn)
	if err := g.reload(g.rt.Load().cfg); err != nil {
		g.deps.VPN = old
		return err
	}
	return nil
}

// reload is Reload with g.mu held.
func (g *Gateway) reload(newCfg Config) (err error) {
	defer func() {
		result := "ok"
		if err != nil {
			result = "failed"
			err = fmt.Errorf("gateway reload: %w (the previous config keeps serving)", err)
		}
		g.metrics.reloads.WithLabelValues(result).Inc()
	}()
	if g.finished {
		return errors.New("the gateway has stopped")
	}
	cfg := newCfg
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	rt, err := g.build(cfg)
	if err != nil {
		return err
	}
	old := g.rt.Load()

	// Everything that can fail, before anything changes.
	var undo []func()
	fail := func(err error) error {
		for _, u := range undo {
			u()
		}
		return err
	}
	rt.log = old.log
	if cfg.AccessLog != old.cfg.AccessLog {
		rt.log = nil
		if cfg.AccessLog != "" {
			l, err := openAccessLog(cfg.AccessLog, g.metrics.logLost)
			if err != nil {
				return fail(err)
			}
			rt.log = l
			undo = append(undo, l.close)
		}
	}
	httpF, httpsF := g.http, g.https
	if cfg.HTTP != old.cfg.HTTP {
		f, err := g.listen("http", cfg.HTTP, nil)
		if err != nil {
			return fail(err)
		}
		httpF = f
		undo = append(undo, func() { f.ln.Close() })
	}
	if cfg.HTTPS != old.cfg.HTTPS {
		f, err := g.listen("https", cfg.HTTPS, g.https.tls)
		if err != nil {
			return fail(err)
		}
		httpsF = f
		undo = append(undo, func() { f.ln.Close() })
	}
	cur := g.acme.Load()
	var fresh *acmeManager
	if len(rt.acmeHosts) > 0 && (cur == nil || cur.key != acmeKey(cfg, httpF.port(), httpsF.port())) {
		if fresh, err = newACME(cfg, httpF.port(), httpsF.port(), g.log, g.metrics); err != nil {
			return fail(err)
		}
		undo = append(undo, fresh.stop)
		// Certificates already in storage load now, before the swap, so
		// no handshake finds the new manager empty.
		if g.running {
			if err := fresh.start(g.runCtx, rt.acmeNames()); err != nil {
				return fail(err)
			}
		}
	}

	// Commit: nothing below fails.
	g.rt.Store(rt)
	for _, p := range []struct {
		cur **front
		nf  *front
	}{{&g.http, httpF}, {&g.https, httpsF}} {
		if p.nf != *p.cur {
			g.retired = append(g.retired, *p.cur)
			(*p.cur).ln.Close() // its generations keep serving their connections
			if g.running {
				p.nf.start(p.nf.newGeneration(cfg))
				go p.nf.acceptLoop()
			}
			*p.cur = p.nf
		} else if g.running && serverChanged(old.cfg, cfg) {
			p.nf.start(p.nf.newGeneration(cfg))
		}
	}
	g.setHTTPSPort()
	names := rt.acmeNames()
	if fresh != nil {
		g.acme.Store(fresh)
		if cur != nil {
			cur.stop()
		}
	} else if cur != nil {
		if err := cur.manage(names); err != nil {
			g.log.Error("certificates", "err", err)
		}
	}
	if old.log != nil && old.log != rt.log {
		// Requests in flight may still log to it for a moment.
		time.AfterFunc(5*time.Second, old.log.close)
	}
	g.transports.retain(rt.transportKeys())
	g.fastPools.retain(rt.fastKeys())
	g.metrics.retain(rt)
	g.log.Info("gateway reloaded", "sites", len(rt.sites))
	return nil
}

// proxyError is ReverseProxy's ErrorHandler.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	g.upstreamError(stateOf(r), w, r, err)
}

// upstreamError answers an upstream failure: 502 with no detail for the
// client, the detail in the log (rate-limited).
func (g *Gateway) upstreamError(st *reqState, w http.ResponseWriter, r *http.Request, err error) {
	if isClientGone(r, err) {
		if st != nil {
			st.w.status = 499 // nginx's "client closed request"
		}
		return
	}
	if st != nil && st.bodyErr != nil {
		// The client's body, not the upstream, failed.
		var tooLarge *http.MaxBytesError
		var ne net.Error
		w.Header()["Connection"] = connClose
		switch {
		case errors.As(st.bodyErr, &tooLarge):
			plain(w, http.StatusRequestEntityTooLarge)
		case errors.As(st.bodyErr, &ne) && ne.Timeout():
			plain(w, http.StatusRequestTimeout)
		default:
			plain(w, http.StatusBadRequest)
		}
		return
	}
	if g.logLimit.allow() {
		attrs := []any{"err", err}
		if st != nil {
			attrs = append(attrs, "site", st.host)
			if st.route != nil {
				attrs = append(attrs, "route", st.route.path)
			}
		}
		g.log.Warn("upstream failed", attrs...)
	}
	plain(w, http.StatusBadGateway)
}
