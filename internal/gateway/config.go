package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/moat-sh/moat/internal/schema"
)

// Config is the gateway section. The gateway runs only when it is present.
type Config struct {
	// HTTP and HTTPS are the listen addresses (":80", ":443").
	HTTP  string `yaml:"http"`
	HTTPS string `yaml:"https"`
	// ACME obtains and renews certificates.
	ACME ACMEConfig `yaml:"acme"`
	// TrustedProxies may say who the client is; nobody else's forwarding
	// headers are believed (they are stripped).
	TrustedProxies []schema.CIDR `yaml:"trusted_proxies"`
	// ClientIPHeader is where a trusted proxy puts the client's address:
	// X-Forwarded-For (default: the rightmost address that is not itself a
	// trusted proxy), or a one-address header such as X-Real-IP or
	// CF-Connecting-IP.
	ClientIPHeader string `yaml:"client_ip_header"`
	// HSTS sends Strict-Transport-Security (on by default).
	HSTS *bool `yaml:"hsts"`
	// Headers are response headers added to every site's answers when the
	// upstream did not set them, over the defaults (HSTS, nosniff,
	// Referrer-Policy, X-Frame-Options); an empty value removes a default.
	Headers map[string]string `yaml:"headers"`
	// StripHeaders are upstream answer headers removed on top of
	// DefaultStripHeaders (a trailing * makes a prefix: X-Internal-*).
	StripHeaders []string `yaml:"strip_headers"`
	// FastPath serves body-less GET and HEAD requests to plain-HTTP
	// upstreams with the gateway's own strict HTTP/1.1 client (on by
	// default); false sends every request through net/http's Transport.
	FastPath *bool `yaml:"fast_path"`
	// AccessLog is a file path, "stdout" or empty for none.
	AccessLog string `yaml:"access_log"`
	// Honeypots are paths whose request bans the client (a guard failure).
	Honeypots []string `yaml:"honeypots"`
	// Limits against slow and oversized requests.
	Limits Limits `yaml:"limits"`
	// Sites by host name.
	Sites []Site `yaml:"sites"`
}

// ACMEConfig selects the CA and account.
type ACMEConfig struct {
	Email string `yaml:"email"`
	// CA is "production", "staging" or a directory URL.
	CA      string `yaml:"ca"`
	Storage string `yaml:"storage"`
	// CARoot is a PEM file of roots to trust for the CA's directory, for a
	// private CA; the system roots are used when empty.
	CARoot string `yaml:"ca_root"`
	// Challenges are the challenge types offered: http-01, tls-alpn-01
	// (both by default).
	Challenges []string `yaml:"challenges"`
}

// Limits bound each request.
type Limits struct {
	HeaderBytes   schema.Size     `yaml:"header_bytes"`
	BodyBytes     schema.Size     `yaml:"body_bytes"`
	HeaderTimeout schema.Duration `yaml:"header_timeout"`
	BodyTimeout   schema.Duration `yaml:"body_timeout"`
	IdleTimeout   schema.Duration `yaml:"idle_timeout"`
	// UpstreamTimeout bounds the wait for an upstream's response headers.
	UpstreamTimeout schema.Duration `yaml:"upstream_timeout"`
}

// Site is one host name and its routes.
type Site struct {
	Host string `yaml:"host"`
	// Certificate and Key are static files instead of ACME.
	Certificate string  `yaml:"certificate"`
	Key         string  `yaml:"key"`
	Routes      []Route `yaml:"routes"`
}

// Route sends a path prefix to an upstream, behind policies.
type Route struct {
	// Path is a prefix, matched without regard to case and not only at a
	// segment boundary: /admin also covers /Admin and /administrator, so
	// an application's looser matching cannot get around the route.
	Path     string `yaml:"path"`
	Upstream string `yaml:"upstream"`
	// Allow lists sources: CIDRs, "vpn", "admin".
	Allow []string `yaml:"allow"`
	// Deny answers a refused request: "notfound" (the site's own 404) or
	// "drop" (close the connection). Never 403.
	Deny      string          `yaml:"deny"`
	Geo       RouteGeo        `yaml:"geo"`
	RateLimit *RouteRateLimit `yaml:"rate_limit"`
	BasicAuth *BasicAuth      `yaml:"basic_auth"`
	// ForwardAuth is an Authelia/Authentik/oauth2-proxy verify URL.
	ForwardAuth *ForwardAuth `yaml:"forward_auth"`
	// Headers are this route's response headers over the gateway's.
	Headers map[string]string `yaml:"headers"`
	// PassHeaders are strip-list headers this route lets through
	// (Server-Timing, say); a trailing * makes a prefix.
	PassHeaders []string `yaml:"pass_headers"`
	// Timeout overrides limits.upstream_timeout for this route.
	Timeout schema.Duration `yaml:"timeout"`
	// WebSocket passes protocol upgrades through (on by default).
	WebSocket *bool `yaml:"websocket"`
}

// RouteGeo admits or refuses countries for one route.
type RouteGeo struct {
	Allow []schema.Country `yaml:"allow"`
	Deny  []schema.Country `yaml:"deny"`
}

// RouteRateLimit is a token bucket per client address.
type RouteRateLimit struct {
	Rate  schema.Rate `yaml:"rate"`
	Burst int         `yaml:"burst"`
	// Action is "429" (with Retry-After) or "drop".
	Action string `yaml:"action"`
}

// BasicAuth checks users against a bcrypt htpasswd file.
type BasicAuth struct {
	Htpasswd string `yaml:"htpasswd"`
	Realm    string `yaml:"realm"`
}

// ForwardAuth asks an auth service about each request.
type ForwardAuth struct {
	URL string `yaml:"url"`
	// ResponseHeaders are copied from the auth service's 2xx answer to the
	// upstream request (Remote-User, Remote-Groups, …); the client's own
	// values of these headers are always removed.
	ResponseHeaders []string `yaml:"response_headers"`
}

// DefaultHoneypots are paths no legitimate client of a moat site requests.
var DefaultHoneypots = []string{"/wp-login.php", "/xmlrpc.php", "/.env", "/.git/config", "/phpmyadmin", "/.aws/credentials", "/cgi-bin/"}

// Challenge types.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// Defaults fills unset fields of a present gateway section. It is
// idempotent.
func (c *Config) Defaults() {
	if c.HTTP == "" {
		c.HTTP = ":80"
	}
	if c.HTTPS == "" {
		c.HTTPS = ":443"
	}
	if c.ACME.CA == "" {
		c.ACME.CA = "production"
	}
	if c.ACME.Storage == "" {
		c.ACME.Storage = "/var/lib/moat/certs"
	}
	if c.ACME.Challenges == nil {
		c.ACME.Challenges = []string{ChallengeHTTP01, ChallengeTLSALPN01}
	}
	if c.ClientIPHeader == "" {
		c.ClientIPHeader = "X-Forwarded-For"
	}
	if c.Honeypots == nil {
		c.Honeypots = DefaultHoneypots
	}
	l := &c.Limits
	if l.HeaderBytes == 0 {
		l.HeaderBytes = 32 << 10
	}
	if l.BodyBytes == 0 {
		l.BodyBytes = 10 << 20
	}
	if l.HeaderTimeout == 0 {
		l.HeaderTimeout = schema.Duration(10e9)
	}
	if l.BodyTimeout == 0 {
		l.BodyTimeout = schema.Duration(60e9)
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = schema.Duration(120e9)
	}
	if l.UpstreamTimeout == 0 {
		l.UpstreamTimeout = schema.Duration(60e9)
	}
	for i := range c.Sites {
		for j := range c.Sites[i].Routes {
			r := &c.Sites[i].Routes[j]
			if r.Path == "" {
				r.Path = "/"
			}
			if r.Deny == "" {
				r.Deny = "notfound"
			}
			if rl := r.RateLimit; rl != nil {
				if rl.Action == "" {
					rl.Action = "429"
				}
				if rl.Burst == 0 {
					rl.Burst = max(rl.Rate.N, 1)
				}
			}
			if b := r.BasicAuth; b != nil && b.Realm == "" {
				b.Realm = "restricted"
			}
		}
	}
}

// Validate checks the gateway section.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, schema.Errorf(path, format, args...)) }
	for _, l := range []struct{ key, v string }{{"http", c.HTTP}, {"https", c.HTTPS}} {
		if _, _, err := net.SplitHostPort(l.v); err != nil {
			add(l.key, "expected a listen address like :443 or 0.0.0.0:443, found %q", l.v)
		}
	}
	switch c.ACME.CA {
	case "production", "staging":
	default:
		if u, err := url.Parse(c.ACME.CA); err != nil || u.Scheme != "https" || u.Host == "" {
			add("acme.ca", "expected production, staging or an https:// ACME directory URL, found %q", c.ACME.CA)
		}
	}
	if e := c.ACME.Email; e != "" && !strings.Contains(e, "@") {
		add("acme.email", "expected an email address, found %q", e)
	}
	for i, ch := range c.ACME.Challenges {
		if err := schema.OneOf(ch, ChallengeHTTP01, ChallengeTLSALPN01); err != nil {
			add(fmt.Sprintf("acme.challenges[%d]", i), "%v", err)
		}
	}
	if c.challenges() == 0 && c.needsACME() {
		add("acme.challenges", "a site without a static certificate needs http-01 or tls-alpn-01")
	}
	if !validHeaderName(c.ClientIPHeader) {
		add("client_ip_header", "expected a header name like X-Forwarded-For, found %q", c.ClientIPHeader)
	}
	for i, p := range c.TrustedProxies {
		if !p.IsValid() {
			add(fmt.Sprintf("trusted_proxies[%d]", i), "expected a CIDR")
		}
	}
	if err := validHeaders(c.Headers); err != nil {
		errs = append(errs, schema.Under("headers", err))
	}
	for i, h := range c.StripHeaders {
		if !validHeaderPattern(h) {
			add(fmt.Sprintf("strip_headers[%d]", i), "expected a header name like X-Internal-Id, or a prefix like X-Internal-*, found %q", h)
		}
	}
	for i, h := range c.Honeypots {
		if !strings.HasPrefix(h, "/") {
			add(fmt.Sprintf("honeypots[%d]", i), "expected a path starting with /, found %q", h)
		}
	}
	if l := c.Limits; l.HeaderBytes < 1<<10 || l.HeaderBytes > 1<<20 {
		add("limits.header_bytes", "expected 1KiB to 1MiB, found %s", l.HeaderBytes)
	}
	hosts := map[string]bool{}
	for i, s := range c.Sites {
		p := fmt.Sprintf("sites[%d]", i)
		if err := validHost(s.Host); err != nil {
			add(p+".host", "%v", err)
		}
		if hosts[strings.ToLower(s.Host)] {
			add(p+".host", "host %q is listed twice", s.Host)
		}
		hosts[strings.ToLower(s.Host)] = true
		if (s.Certificate == "") != (s.Key == "") {
			add(p+".certificate", "a static certificate needs both certificate and key")
		}
		if strings.HasPrefix(s.Host, "*.") && s.Certificate == "" {
			add(p+".certificate", "a wildcard host needs a static certificate (ACME here uses http-01 and tls-alpn-01, which cannot prove a wildcard)")
		}
		if len(s.Routes) == 0 {
			add(p+".routes", "a site needs at least one route")
		}
		paths := map[string]bool{}
		for j, r := range s.Routes {
			if paths[strings.ToLower(r.Path)] {
				add(fmt.Sprintf("%s.routes[%d].path", p, j), "path %q is listed twice in this site", r.Path)
			}
			paths[strings.ToLower(r.Path)] = true
			if err := r.validate(); err != nil {
				errs = append(errs, schema.Under(fmt.Sprintf("%s.routes[%d]", p, j), err))
			}
		}
	}
	return errors.Join(errs...)
}

func (r Route) validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, schema.Errorf(path, format, args...)) }
	if !strings.HasPrefix(r.Path, "/") {
		add("path", "expected a path prefix starting with /, found %q", r.Path)
	}
	if err := ValidUpstream(r.Upstream); err != nil {
		add("upstream", "%v", err)
	}
	for i, a := range r.Allow {
		if a == "vpn" || a == "admin" {
			continue
		}
		if _, err := schema.ParseCIDR(a); err != nil {
			add(fmt.Sprintf("allow[%d]", i), "expected vpn, admin or a CIDR: %v", err)
		}
	}
	if err := schema.OneOf(r.Deny, "notfound", "drop"); err != nil {
		add("deny", "%v (moat never answers 403: it would confirm the route exists)", err)
	}
	if len(r.Geo.Allow) > 0 && len(r.Geo.Deny) > 0 {
		add("geo", "list allow or deny countries, not both")
	}
	if rl := r.RateLimit; rl != nil {
		if rl.Rate.N <= 0 || rl.Rate.Per <= 0 {
			add("rate_limit.rate", "expected a rate like 10/s")
		}
		if rl.Burst < 0 {
			add("rate_limit.burst", "expected 0 or more, found %d", rl.Burst)
		}
		if err := schema.OneOf(rl.Action, "429", "drop"); err != nil {
			add("rate_limit.action", "%v", err)
		}
	}
	if b := r.BasicAuth; b != nil {
		if b.Htpasswd == "" {
			add("basic_auth.htpasswd", "expected the path of a bcrypt htpasswd file")
		}
		if strings.ContainsAny(b.Realm, "\"\\\r\n") {
			add("basic_auth.realm", "a realm may not contain quotes, backslashes or line breaks")
		}
	}
	if f := r.ForwardAuth; f != nil {
		if u, err := url.Parse(f.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("forward_auth.url", "expected an http(s) URL of the auth service's verify endpoint, found %q", f.URL)
		}
		for i, h := range f.ResponseHeaders {
			if !validHeaderName(h) {
				add(fmt.Sprintf("forward_auth.response_headers[%d]", i), "expected a header name like Remote-User, found %q", h)
			}
		}
	}
	if err := validHeaders(r.Headers); err != nil {
		errs = append(errs, schema.Under("headers", err))
	}
	for i, h := range r.PassHeaders {
		if !validHeaderPattern(h) {
			add(fmt.Sprintf("pass_headers[%d]", i), "expected a header name like Server-Timing, or a prefix like X-Debug-*, found %q", h)
		}
	}
	if r.Timeout < 0 {
		add("timeout", "expected a positive duration")
	}
	return errors.Join(errs...)
}

func validHeaders(h map[string]string) error {
	var errs []error
	for k, v := range h {
		if !validHeaderName(k) {
			errs = append(errs, schema.Errorf(k, "expected a header name"))
		} else if !validHeaderValue(v) {
			errs = append(errs, schema.Errorf(k, "the value has a control character"))
		}
		switch http.CanonicalHeaderKey(k) {
		case "Server", "Content-Length", "Transfer-Encoding", "Connection", "Date":
			errs = append(errs, schema.Errorf(k, "this header is the gateway's own and cannot be configured"))
		}
	}
	return errors.Join(errs...)
}

// ValidUpstream accepts http://host:port[/path], https://…, and unix:/path.
func ValidUpstream(s string) error {
	if p, ok := strings.CutPrefix(s, "unix:"); ok {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("expected unix:/absolute/path.sock, found %q", s)
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("expected an upstream like http://127.0.0.1:3000 or unix:/run/app.sock, found %q", s)
	}
	return nil
}

func validHost(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("expected a host name like app.example.com, found %q", h)
	}
	for i, label := range strings.Split(strings.TrimPrefix(h, "*."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("invalid host name %q", h)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("invalid host name %q: label %d has %q", h, i+1, r)
			}
		}
	}
	return nil
}

// FastPathOn reports whether the fast path serves (on by default).
func (c Config) FastPathOn() bool { return c.FastPath == nil || *c.FastPath }

// HSTSOn reports whether HSTS is sent (on by default).
func (c Config) HSTSOn() bool { return c.HSTS == nil || *c.HSTS }

// Challenge flags, as a bit set.
const (
	challengeHTTP = 1 << iota
	challengeTLSALPN
)

// challenges returns the enabled challenge types as a bit set.
func (c Config) challenges() int {
	var n int
	for _, ch := range c.ACME.Challenges {
		switch ch {
		case ChallengeHTTP01:
			n |= challengeHTTP
		case ChallengeTLSALPN01:
			n |= challengeTLSALPN
		}
	}
	return n
}

// needsACME reports whether any site gets its certificate from ACME.
func (c Config) needsACME() bool {
	for _, s := range c.Sites {
		if s.Certificate == "" {
			return true
		}
	}
	return false
}
