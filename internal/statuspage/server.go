package statuspage

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

//go:embed page.html static
var files embed.FS

// CSP allows the page's own origin only: its script and style files,
// inline SVG (markup, not a resource) and fetches of itself. No inline
// script or style, no other origin, no frames, no forms.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Options configure a Server.
type Options struct {
	Config Config
	// Token, when not empty, is required of every request.
	Token string
	// Cert, when not nil, has the page served over TLS (LoadCert).
	Cert   *Cert
	Source Source
	// Allow says which source addresses may connect (loopback and the
	// VPN's ranges: vpn.Config.AllowedSource).
	Allow func(netip.Addr) bool
	// VPN says which addresses are inside vpn.ranges (vpn.Config.Contains):
	// plain http between two of them may log in with a cookie without
	// Secure. Nil: never.
	VPN func(netip.Addr) bool
	Log *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// settings are what a reload may change, swapped whole: every request
// reads them once, so none sees half of an old and half of a new config.
type settings struct {
	cfg       Config
	auth      *auth
	cert      *Cert
	allow     func(netip.Addr) bool
	vpn       func(netip.Addr) bool // nil: no VPN
	vpnListen bool                  // the listen address is inside vpn.ranges
}

// Update is what a reload may change (Prepare).
type Update struct {
	Config Config
	Token  string
	Cert   *Cert
	// Allow and VPN as in Options; nil keeps the running ones.
	Allow, VPN func(netip.Addr) bool
}

// Server is the status page.
type Server struct {
	o       Options
	set     atomic.Pointer[settings]
	tlsConf *tls.Config
	tmpl    *template.Template
	static  map[string]staticFile
	jsURL   string
	cssURL  string
	iconURL string

	mu    sync.Mutex
	cache *built

	// The listener in force, and the hand-over of a new one on reload.
	lmu     sync.Mutex
	bound   string                // the address served, "" while not listening
	conns   map[net.Conn]struct{} // open connections, closed when TLS turns on or off
	handoff chan net.Listener
	wake    chan struct{}
}

type staticFile struct {
	body  []byte
	ctype string
}

// built is one rendering of a snapshot: the page and each section's JSON,
// with their ETags (hashes of the bytes: the same data, the same tag).
type built struct {
	gen  uint64
	at   time.Time
	page []byte
	tag  string
	data *Data

	// The JSON documents, encoded on their first request.
	once sync.Once
	api  map[string][]byte
	tags map[string]string
	err  error
}

// json encodes the /api/ documents once per snapshot.
func (b *built) json() error {
	b.once.Do(func() {
		api, err := sections(b.data)
		if err != nil {
			b.err = err
			return
		}
		b.api, b.tags = map[string][]byte{}, map[string]string{}
		for name, v := range api {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetIndent("", "  ") // as `moat status --json` prints it
			if err := enc.Encode(v); err != nil {
				b.err = fmt.Errorf("api %s: %w", name, err)
				return
			}
			b.api[name] = buf.Bytes()
			b.tags[name] = etag(buf.Bytes())
		}
	})
	return b.err
}

// New prepares the page's templates and static files.
func New(o Options) (*Server, error) {
	if o.Source == nil || o.Allow == nil {
		return nil, errors.New("status page: a source and an access rule are required")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{o: o, static: map[string]staticFile{}, conns: map[net.Conn]struct{}{},
		handoff: make(chan net.Listener, 1), wake: make(chan struct{}, 1)}
	s.set.Store(settingsOf(Update{Config: o.Config, Token: o.Token, Cert: o.Cert, Allow: o.Allow, VPN: o.VPN}))
	s.tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := s.set.Load().cert; c != nil {
				return &c.cert, nil
			}
			return nil, errNoCert
		}}
	for name, ctype := range map[string]string{"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8",
		"favicon.svg": "image/svg+xml"} {
		b, err := files.ReadFile("static/" + name)
		if err != nil {
			return nil, err
		}
		s.static[name] = staticFile{body: b, ctype: ctype}
	}
	// Versioned URLs: the files are cached for good, so a refresh costs
	// one request, the page's.
	s.jsURL = "/static/app.js?v=" + shortHash(s.static["app.js"].body)
	s.cssURL = "/static/app.css?v=" + shortHash(s.static["app.css"].body)
	s.iconURL = "/static/favicon.svg?v=" + shortHash(s.static["favicon.svg"].body)
	t, err := template.New("page.html").Funcs(funcs).ParseFS(files, "page.html")
	if err != nil {
		return nil, fmt.Errorf("status page template: %w", err)
	}
	s.tmpl = t
	return s, nil
}

func shortHash(b []byte) string {
	h := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(h[:9])
}

func settingsOf(u Update) *settings {
	st := &settings{cfg: u.Config, auth: newAuth(u.Token), cert: u.Cert, allow: u.Allow, vpn: u.VPN}
	if host, _, err := net.SplitHostPort(u.Config.Listen); err == nil && u.VPN != nil {
		if a, err := netip.ParseAddr(host); err == nil {
			st.vpnListen = u.VPN(a.Unmap())
		}
	}
	return st
}

// Run listens on the configured address until ctx ends. A VPN address
// may not exist yet when moat starts (the VPN comes up after it): the
// listen is retried every listenRetry, logged once. A reload that moves
// the address hands Run the new listener (Prepare).
func (s *Server) Run(ctx context.Context) error {
	logged := false
	for {
		addr := s.set.Load().cfg.Listen
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return s.Serve(ctx, ln)
		}
		if !logged {
			s.o.Log.Warn("status page: cannot listen yet, retrying", "listen", addr, "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil
		case ln := <-s.handoff:
			return s.Serve(ctx, ln)
		case <-s.wake: // the address changed: try it now
		case <-time.After(listenRetry):
		}
	}
}

// listenRetry spaces attempts to listen on an address not up yet.
const listenRetry = 5 * time.Second

// Serve serves on ln until ctx ends, and then on each listener a reload
// hands over; connections from sources Allow refuses are closed unread.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	for ln != nil {
		next, err := s.serveOne(ctx, ln)
		if err != nil {
			return err
		}
		ln = next
	}
	return nil
}

// serveOne serves ln until ctx ends (nil) or a reload hands over a new
// listener, which it returns after closing ln and its connections.
func (s *Server) serveOne(ctx context.Context, ln net.Listener) (net.Listener, error) {
	refusedLog := rateLimited(time.Minute)
	sl := sourceListener{Listener: ln, allow: func(a netip.Addr) bool { return s.set.Load().allow(a) }, refused: func(a netip.Addr) {
		if refusedLog() {
			s.o.Log.Warn("status page: connection refused from outside loopback and vpn.ranges", "source", a)
		}
	}, wrap: s.wrapConn}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(s.o.Log.Handler(), slog.LevelDebug), ConnState: s.track}
	s.lmu.Lock()
	s.bound = ln.Addr().String()
	s.lmu.Unlock()
	st := s.set.Load()
	attrs := []any{"listen", ln.Addr().String(), "token", st.auth != nil, "tls", st.cert != nil}
	if st.cert != nil {
		attrs = append(attrs, "sha256", st.cert.Fingerprint)
	}
	s.o.Log.Info("status page", attrs...)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sl) }()
	var next net.Listener
	select {
	case <-ctx.Done():
	case next = <-s.handoff:
	case err := <-done:
		s.lmu.Lock()
		s.bound = ""
		s.lmu.Unlock()
		return nil, err
	}
	srv.Close() // the listener and every connection on it
	err := <-done
	s.lmu.Lock()
	s.bound = ""
	s.lmu.Unlock()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return nil, err
	}
	if next == nil {
		// A listener handed over as ctx ended.
		select {
		case l := <-s.handoff:
			l.Close()
		default:
		}
		return nil, nil
	}
	return next, nil
}

// wrapConn makes an accepted connection TLS when the settings at the
// moment of accepting say so.
func (s *Server) wrapConn(c net.Conn) net.Conn {
	if s.set.Load().cert != nil {
		return tls.Server(c, s.tlsConf)
	}
	return c
}

func (s *Server) track(c net.Conn, state http.ConnState) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	switch state {
	case http.StateNew:
		s.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	}
}

// Prepare checks a new config for the running page (its token read, its
// certificate loaded) and, when the address moved while the page
// listens, binds the new one: a reload that cannot have it is refused and
// the page goes on as it was. commit puts the new settings in force and
// cannot fail: first the token (every listener, old or new, checks the
// new one from that instant), then the new listener replaces the old.
// abort releases what Prepare took.
func (s *Server) Prepare(u Update) (commit, abort func(), err error) {
	cur := s.set.Load()
	if u.Allow == nil {
		u.Allow = cur.allow
	}
	if u.VPN == nil {
		u.VPN = cur.vpn
	}
	c := u.Config
	next := settingsOf(u)
	s.lmu.Lock()
	bound := s.bound
	s.lmu.Unlock()
	var ln net.Listener
	if c.Listen != cur.cfg.Listen && bound != "" {
		ln, err = net.Listen("tcp", c.Listen)
		if err != nil {
			return nil, nil, fmt.Errorf("status page: listen %s: %w (the page stays on %s)", c.Listen, err, bound)
		}
	}
	abort = func() {
		if ln != nil {
			ln.Close()
		}
	}
	replaced := cur.cert != nil && next.cert != nil && cur.cert.Fingerprint != next.cert.Fingerprint
	commit = func() {
		s.set.Store(next)
		s.Invalidate()
		if replaced {
			// A replaced certificate (its key lost, say) ends the
			// sessions made under it: the tickets that would resume them
			// without showing the new one, and (below) the connections.
			var k [32]byte
			rand.Read(k[:])
			s.tlsConf.SetSessionTicketKeys([][32]byte{k})
		}
		switch {
		case ln != nil:
			select {
			case s.handoff <- ln:
			default: // Run has ended
				ln.Close()
			}
		case c.Listen != cur.cfg.Listen:
			select {
			case s.wake <- struct{}{}:
			default:
			}
		case (cur.cert == nil) != (next.cert == nil) || replaced:
			// Connections accepted as plain http (or TLS, or under the
			// old certificate) would go on so: they are closed, and
			// clients reconnect as the new settings say.
			s.closeConns()
		}
		s.o.Log.Info("status page: settings reloaded", "listen", c.Listen, "token", next.auth != nil, "tls", next.cert != nil)
	}
	return commit, abort, nil
}

func (s *Server) closeConns() {
	s.lmu.Lock()
	cs := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.lmu.Unlock()
	// Outside the lock: a TLS close may wait on its close_notify.
	for _, c := range cs {
		c.Close()
	}
}

// Renewed puts a renewed certificate in force while TLS is on (new
// connections show it; a renewal is the same identity, so open ones go
// on).
func (s *Server) Renewed(c *Cert) {
	for {
		cur := s.set.Load()
		if cur.cert == nil || c == nil {
			return
		}
		next := *cur
		next.cert = c
		if s.set.CompareAndSwap(cur, &next) {
			return
		}
	}
}

// Cert is the certificate in force, nil without TLS.
func (s *Server) Cert() *Cert { return s.set.Load().cert }

// Listening is the address served, "" while not listening.
func (s *Server) Listening() string {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return s.bound
}

// rateLimited returns a function true at most once per every.
func rateLimited(every time.Duration) func() bool {
	var mu sync.Mutex
	var last time.Time
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(last) >= every {
			last = now
			return true
		}
		return false
	}
}

// Sections are the JSON documents under /api/, each a part of the page.
var Sections = []string{"status", "layers", "bans", "audit", "changes", "host", "vpn"}

// Handler is the page, its files and its JSON.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serve)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
		return
	}
	// DNS rebinding: a web page that points its own name at this address
	// would be same-origin with the status page. Only address literals
	// (and localhost) are names this page answers to.
	st := s.set.Load()
	if !hostAllowed(r.Host) && !tlsName(st, r) {
		http.Error(w, "moat status page: open it by address (http://ADDRESS:PORT/), not by a host name", http.StatusMisdirectedRequest)
		return
	}
	if !s.check(st, w, r) {
		return
	}
	switch p := r.URL.Path; {
	case p == "/":
		s.servePage(w, r)
	case strings.HasPrefix(p, "/static/"):
		f, ok := s.static[strings.TrimPrefix(p, "/static/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", f.ctype)
		h.Set("Cache-Control", "private, max-age=31536000, immutable")
		w.Write(f.body)
	case strings.HasPrefix(p, "/api/"):
		s.serveAPI(w, r, strings.TrimPrefix(p, "/api/"))
	default:
		http.NotFound(w, r)
	}
}

func hostAllowed(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}

// tlsName reports a Host that is one of the certificate's names, over
// TLS: a rebinding page cannot show the browser that certificate.
func tlsName(st *settings, r *http.Request) bool {
	if r.TLS == nil || st.cert == nil {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	for _, n := range st.cert.Names {
		if strings.EqualFold(n, host) {
			return true
		}
	}
	return false
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	b, err := s.current(r.Context())
	if err != nil {
		s.o.Log.Warn("status page", "err", err)
		http.Error(w, "moat status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	send(w, r, b.page, b.tag, "text/html; charset=utf-8")
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, name string) {
	b, err := s.current(r.Context())
	if err == nil {
		err = b.json()
	}
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	body, ok := b.api[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	send(w, r, body, b.tags[name], "application/json")
}

// send writes body, or 304 when the client holds this version.
func send(w http.ResponseWriter, r *http.Request, body []byte, tag, ctype string) {
	h := w.Header()
	h.Set("ETag", tag)
	// Kept, but asked about again every time: the answer is a 304 while
	// nothing changed.
	h.Set("Cache-Control", "private, no-cache")
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatch(match, tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", ctype)
	w.Write(body)
}

func etagMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == tag || t == "*" {
			return true
		}
	}
	return false
}

// current returns the page for the source's present generation, built at
// most once per refresh interval while the generation stands still (the
// audit, the host's conditions and the firewall's counters change without
// a ban; they are re-read then).
func (s *Server) current(ctx context.Context) (*built, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.o.Now()
	gen := s.o.Source.Generation()
	if c := s.cache; c != nil && c.gen == gen && now.Sub(c.at) < s.set.Load().cfg.RefreshEvery() && !now.Before(c.at) {
		return c, nil
	}
	d, err := s.o.Source.Snapshot(ctx, now)
	if err != nil {
		return nil, err
	}
	b, err := s.build(d, gen, now)
	if err != nil {
		return nil, err
	}
	s.cache = b
	return b, nil
}

// Invalidate drops the cached page: the next request reads a snapshot.
func (s *Server) Invalidate() {
	s.mu.Lock()
	s.cache = nil
	s.mu.Unlock()
}

func (s *Server) build(d *Data, gen uint64, now time.Time) (*built, error) {
	v := newView(d, s.set.Load().cfg.RefreshEvery(), s.jsURL, s.cssURL)
	v.Icon = s.iconURL
	var buf bytes.Buffer
	if err := s.tmpl.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	b := &built{gen: gen, at: now, page: buf.Bytes(), data: d}
	b.tag = etag(b.page)
	return b, nil
}

func etag(b []byte) string {
	h := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(h[:12]) + `"`
}

// sections splits the snapshot into /api/ documents. The status's parts
// keep the status's own JSON keys (a subset of `moat status --json`).
func sections(d *Data) (map[string]any, error) {
	raw, err := json.Marshal(d.Status)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	var st map[string]json.RawMessage
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	pick := func(keys ...string) map[string]json.RawMessage {
		out := map[string]json.RawMessage{}
		for _, k := range keys {
			if v, ok := st[k]; ok {
				out[k] = v
			}
		}
		return out
	}
	return map[string]any{
		"status": d.Status,
		"layers": pick("daemon_running", "version", "config", "firewall", "firewall_error", "active_bans", "active_bans_error",
			"jails", "ban_events_dropped", "gateway", "notifiers"),
		"bans":    d.Bans,
		"audit":   map[string]any{"audit": st["audit"], "trend": d.Audit},
		"changes": pick("pending_change", "last_rollback"),
		"host":    pick("conditions"),
		"vpn":     map[string]any{"vpn": d.VPN},
	}, nil
}
