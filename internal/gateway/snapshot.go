package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strings"

	"github.com/moat-sh/moat/internal/schema"
)

// snapshot is one config made ready to serve: immutable once built, swapped
// whole by Reload, read by every request through one atomic load.
type snapshot struct {
	cfg       Config
	sites     map[string]*site // by normalized host; wildcards as "*.example.com"
	honeypots []string         // lower case
	clientIP  clientIP
	static    map[string]*tls.Certificate // static certificates by site host
	acmeHosts map[string]bool             // hosts whose certificate comes from ACME
	log       *accessLog
}

// site is one host name.
type site struct {
	host     string
	routes   []*route // longest prefix first
	fallback *route   // the route a path no other route claims goes to ("/"), or nil
	headers  headerSet
	m        *siteMetrics
}

// route is one path prefix with its policies, in the order they run.
type route struct {
	site      *site
	path      string // as configured, for logs and metrics
	prefix    string // lower case
	drop      bool   // deny answer: close instead of the site's 404
	allow     []netip.Prefix
	allowAll  bool
	geo       *geoPolicy
	limit     *limiter
	limitDrop bool
	basic     *basicAuth
	forward   *forwardAuth
	headers   headerSet
	proxy     *httputil.ReverseProxy
	leaks     *leakFilter // the answer headers removed
	rewrite   *rewriter   // the upstream's address in answers, made public
	fast      *fastPool   // nil for https upstreams
	upPath    string      // the upstream's base path, prefixed to requests
	websocket bool
	m         *routeMetrics
}

type geoPolicy struct {
	allow     bool // countries are the only ones admitted; else the ones refused
	countries []string
}

// permits decides a client's country. An address the database does not
// place (private, reserved, unlisted) is refused by an allow list and
// admitted by a deny list.
func (p *geoPolicy) permits(g Geo, a netip.Addr) bool {
	c, ok := g.Country(a)
	in := ok && slices.Contains(p.countries, c)
	if p.allow {
		return in
	}
	return !in
}

// build turns a validated config into a snapshot. It does every fallible
// step (reading certificates and htpasswd files, resolving names) so that
// a config that builds will serve.
func (g *Gateway) build(cfg Config) (*snapshot, error) {
	rt := &snapshot{
		cfg:       cfg,
		sites:     map[string]*site{},
		static:    map[string]*tls.Certificate{},
		acmeHosts: map[string]bool{},
		clientIP:  newClientIP(prefixes(cfg.TrustedProxies), cfg.ClientIPHeader),
	}
	for _, h := range cfg.Honeypots {
		rt.honeypots = append(rt.honeypots, strings.ToLower(h))
	}
	var errs []error
	for i, sc := range cfg.Sites {
		s, err := g.buildSite(cfg, sc)
		if err != nil {
			errs = append(errs, fmt.Errorf("sites[%d] (%s): %w", i, sc.Host, err))
			continue
		}
		rt.sites[s.host] = s
		if sc.Certificate != "" {
			c, err := tls.LoadX509KeyPair(sc.Certificate, sc.Key)
			if err != nil {
				errs = append(errs, fmt.Errorf("sites[%d] (%s): load certificate: %w (check certificate and key are the PEM files of one pair)", i, sc.Host, err))
				continue
			}
			rt.static[s.host] = &c
		} else {
			rt.acmeHosts[s.host] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rt, nil
}

func (g *Gateway) buildSite(cfg Config, sc Site) (*site, error) {
	s := &site{host: normalizeHost(sc.Host)}
	s.headers = newHeaderSet(cfg.HSTSOn(), cfg.Headers)
	s.m = g.metrics.site(s.host)
	var errs []error
	for j, rc := range sc.Routes {
		r, err := g.buildRoute(cfg, s, rc)
		if err != nil {
			errs = append(errs, fmt.Errorf("routes[%d] (%s): %w", j, rc.Path, err))
			continue
		}
		s.routes = append(s.routes, r)
		if r.prefix == "/" {
			s.fallback = r
		}
	}
	slices.SortStableFunc(s.routes, func(a, b *route) int { return len(b.prefix) - len(a.prefix) })
	return s, errors.Join(errs...)
}

func (g *Gateway) buildRoute(cfg Config, s *site, rc Route) (*route, error) {
	r := &route{
		site:      s,
		path:      rc.Path,
		prefix:    strings.ToLower(rc.Path),
		drop:      rc.Deny == "drop",
		websocket: rc.WebSocket == nil || *rc.WebSocket,
		headers:   newHeaderSet(cfg.HSTSOn(), cfg.Headers, rc.Headers),
	}
	r.allowAll = len(rc.Allow) == 0
	for _, a := range rc.Allow {
		switch a {
		case "vpn":
			r.allow = append(r.allow, g.deps.VPN...)
		case "admin":
			r.allow = append(r.allow, g.deps.Admin...)
		default:
			c, err := schema.ParseCIDR(a)
			if err != nil {
				return nil, err
			}
			r.allow = append(r.allow, c.Prefix)
		}
	}
	if !r.allowAll && len(r.allow) == 0 {
		g.log.Warn("route admits nobody: its allow list names only empty sets", "site", s.host, "route", rc.Path, "allow", rc.Allow)
	}
	if len(rc.Geo.Allow)+len(rc.Geo.Deny) > 0 {
		if g.deps.Geo == nil {
			return nil, errors.New("a geo policy needs a country database (set firewall.geo.database)")
		}
		p := &geoPolicy{allow: len(rc.Geo.Allow) > 0}
		for _, c := range append(rc.Geo.Allow, rc.Geo.Deny...) {
			p.countries = append(p.countries, strings.ToUpper(string(c)))
		}
		r.geo = p
	}
	if rl := rc.RateLimit; rl != nil {
		r.limit = newLimiter(rl.Rate.PerSecond(), rl.Burst, limiterCapacity)
		r.limitDrop = rl.Action == "drop"
	}
	if rc.BasicAuth != nil {
		// Through g, so a clock set after New (a test's) applies.
		b, err := newBasicAuth(rc.BasicAuth, g.bcryptSlots, func() int64 { return g.now() })
		if err != nil {
			return nil, fmt.Errorf("basic_auth: %w", err)
		}
		if len(b.weak) > 0 {
			// Read so a file from nginx works; said so it gets replaced.
			g.log.Warn("htpasswd entries weaker than bcrypt (SHA-crypt, $apr1$ MD5 or {SHA}): recreate them with htpasswd -B", "file", rc.BasicAuth.Htpasswd, "users", strings.Join(b.weak, ","))
		}
		r.basic = b
	}
	timeout := cfg.Limits.UpstreamTimeout.D()
	if rc.Timeout > 0 {
		timeout = rc.Timeout.D()
	}
	strip := append(slices.Clip(DefaultStripHeaders), cfg.StripHeaders...)
	r.leaks = newLeakFilter(strip, rc.PassHeaders)
	if rc.ForwardAuth != nil {
		var t http.RoundTripper = g.transports.get(transportKey{timeout: forwardAuthTimeout})
		if up, ok := forwardAuthUpstream(cfg, rc); ok {
			t = fastTransport{pool: g.fastPools.get(up)}
		}
		r.forward = newForwardAuth(rc.ForwardAuth, t, newLeakFilter(strip, nil))
	}
	up, err := parseUpstream(rc.Upstream, timeout)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	r.rewrite = upstreamRewriter(up)
	r.proxy = newReverseProxy(up, g.transports.get(up.key), r.websocket, g.proxyError, r.leaks, r.rewrite)
	if up.scheme == "http" && cfg.FastPathOn() {
		r.fast, r.upPath = g.fastPools.get(up), up.path
	}
	r.m = g.metrics.route(s.host, rc.Path)
	return r, nil
}

func prefixes(cs []schema.CIDR) []netip.Prefix {
	out := make([]netip.Prefix, len(cs))
	for i, c := range cs {
		out[i] = c.Prefix
	}
	return out
}

// transportKeys lists the transports a snapshot uses, so Reload can close the
// others.
func (rt *snapshot) transportKeys() map[transportKey]bool {
	used := map[transportKey]bool{{timeout: forwardAuthTimeout}: true}
	for _, sc := range rt.cfg.Sites {
		for _, rc := range sc.Routes {
			timeout := rt.cfg.Limits.UpstreamTimeout.D()
			if rc.Timeout > 0 {
				timeout = rc.Timeout.D()
			}
			if up, err := parseUpstream(rc.Upstream, timeout); err == nil {
				used[up.key] = true
			}
		}
	}
	return used
}

// fastKeys lists the fast pools a snapshot uses (none with fast_path off,
// so a reload that turns it off closes their idle connections).
func (rt *snapshot) fastKeys() map[transportKey]bool {
	used := map[transportKey]bool{}
	if !rt.cfg.FastPathOn() {
		return used
	}
	for _, sc := range rt.cfg.Sites {
		for _, rc := range sc.Routes {
			timeout := rt.cfg.Limits.UpstreamTimeout.D()
			if rc.Timeout > 0 {
				timeout = rc.Timeout.D()
			}
			if up, err := parseUpstream(rc.Upstream, timeout); err == nil && up.scheme == "http" {
				used[fastKey(up)] = true
			}
			if up, ok := forwardAuthUpstream(rt.cfg, rc); ok {
				used[fastKey(up)] = true
			}
		}
	}
	return used
}

// lookup finds the site for a normalized host.
func (rt *snapshot) lookup(host string) *site {
	if s := rt.sites[host]; s != nil {
		return s
	}
	if w := wildcardOf(host); w != "" {
		return rt.sites[w]
	}
	return nil
}

// honeypot reports whether a clean request path is a trap: the trap's path
// itself or anything below it, in any case.
func (rt *snapshot) honeypot(p string) bool {
	for _, h := range rt.honeypots {
		if hasPrefixFold(p, h) && (len(p) == len(h) || strings.HasSuffix(h, "/") || p[len(h)] == '/') {
			return true
		}
	}
	return false
}

// forwardAuthUpstream is the fast pool a route's forward_auth service is
// asked through: plain HTTP with the fast path on; https goes through a
// transport.
func forwardAuthUpstream(cfg Config, rc Route) (upstream, bool) {
	if rc.ForwardAuth == nil || !cfg.FastPathOn() {
		return upstream{}, false
	}
	up, err := parseUpstream(rc.ForwardAuth.URL, forwardAuthTimeout)
	if err != nil || up.scheme != "http" {
		return upstream{}, false
	}
	return up, true
}
