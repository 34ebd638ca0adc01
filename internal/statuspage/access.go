package statuspage

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// sourceListener closes, right after accept, every connection whose
// source is not allowed: nothing is read from it and nothing is written,
// so a stray source learns only that the port exists on an address it
// could not have reached without a route into the VPN.
type sourceListener struct {
	net.Listener
	allow   func(netip.Addr) bool
	refused func(netip.Addr)
	wrap    func(net.Conn) net.Conn // TLS, when in force
}

func (l sourceListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, perr := netip.ParseAddrPort(c.RemoteAddr().String())
		if perr == nil && l.allow(ap.Addr().Unmap()) {
			if l.wrap != nil {
				return l.wrap(c), nil
			}
			return c, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset, not a graceful close
		}
		c.Close()
		if l.refused != nil {
			l.refused(ap.Addr())
		}
	}
}

// The cookies hold a proof of the token, never the token itself. Over
// TLS the name carries the __Host- prefix: the browser keeps it only if
// it is Secure, host-only and for Path=/, so no other page on the host can
// plant one.
const (
	cookieName    = "moat_status"
	tlsCookieName = "__Host-moat_status"
)

// Cookie lifetimes. A cookie without Secure (plain http over the VPN)
// lives for a working day; the others for a month.
const (
	vpnCookieLife     = 12 * time.Hour
	securedCookieLife = 30 * 24 * time.Hour
)

// cookieKind is how a login's cookie is set and what it is bound to: the
// scheme, the listener's configured address, and whether the cookie is
// Secure. A cookie is checked against the kind of the request presenting
// it, so one minted on one listener or scheme is worthless on another.
type cookieKind struct {
	name    string
	secure  bool
	life    time.Duration
	binding string
}

// cookieKindOf is the cookie a request logs in with. Secure whenever the
// request came over TLS or the listener is loopback (browsers keep
// Secure cookies from http://localhost). Without Secure only on plain
// http between a listener and a client both inside vpn.ranges: there
// WireGuard (or Tailscale) encrypts and authenticates every packet, and
// only a peer can send from a VPN address.
func (s *Server) cookieKindOf(st *settings, r *http.Request) cookieKind {
	if r.TLS != nil {
		return cookieKind{name: tlsCookieName, secure: true, life: securedCookieLife, binding: "https " + st.cfg.Listen}
	}
	if st.vpnListen {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && st.vpn(ap.Addr().Unmap()) {
			return cookieKind{name: cookieName, life: vpnCookieLife, binding: "http vpn " + st.cfg.Listen}
		}
	}
	return cookieKind{name: cookieName, secure: true, life: securedCookieLife, binding: "http secure " + st.cfg.Listen}
}

// auth checks the optional token: Authorization: Bearer, a ?token= query
// (answered with the cookie and a redirect that drops it from the URL),
// or the cookie. Every comparison is constant-time.
type auth struct {
	token string
	key   []byte // the cookies' MAC key, derived from the token
}

func newAuth(token string) *auth {
	if token == "" {
		return nil
	}
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("moat status page cookie v2"))
	return &auth{token: token, key: m.Sum(nil)}
}

// mint is a cookie value for kind, good until exp: "exp.mac".
func (a *auth) mint(k cookieKind, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return e + "." + a.mac(k, e)
}

func (a *auth) mac(k cookieKind, exp string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(k.binding + "\x00" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// valid checks a cookie value against kind at now: its MAC, and that it
// has not expired (the browser's Max-Age is a wish; this is the rule).
func (a *auth) valid(k cookieKind, v string, now time.Time) bool {
	e, mac, ok := strings.Cut(v, ".")
	if !ok || !equal(mac, a.mac(k, e)) {
		return false
	}
	exp, err := strconv.ParseInt(e, 10, 64)
	if err != nil {
		return false
	}
	return now.Unix() < exp && exp <= now.Add(k.life).Unix()
}

func equal(a, b string) bool {
	// Hash first so neither the content nor the length leaks by timing.
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// crossSite reports a navigation another site started (where browsers
// say so: over https and on localhost). A login from one is refused:
// another page must not choose when, or as whom, the browser logs in.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	return false
}

// check answers whether r may proceed; when not, it has written the
// response (a redirect after ?token=, or 401).
func (s *Server) check(st *settings, w http.ResponseWriter, r *http.Request) bool {
	a := st.auth
	if a == nil {
		return true
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") && equal(strings.TrimSpace(tok), a.token) {
			return true
		}
	}
	k := s.cookieKindOf(st, r)
	now := s.o.Now()
	if q := r.URL.Query(); q.Has("token") {
		// A wrong token leaves the cookie the browser holds alone.
		if !equal(q.Get("token"), a.token) {
			unauthorized(w)
			return false
		}
		w.Header().Set("Cache-Control", "no-store")
		if crossSite(r) {
			http.Error(w, "moat status page: a login link followed from another site is refused: type or paste the address", http.StatusForbidden)
			return false
		}
		// Host-only (no Domain), this path and below, this listener.
		http.SetCookie(w, &http.Cookie{Name: k.name, Value: a.mint(k, now.Add(k.life)), Path: "/",
			Secure: k.secure, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: int(k.life / time.Second)})
		q.Del("token")
		u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		if u.Path == "" {
			u.Path = "/"
		}
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return false
	}
	if c, err := r.Cookie(k.name); err == nil && a.valid(k, c.Value, now) {
		return true
	}
	unauthorized(w)
	return false
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	w.Write([]byte("moat status page: a token is required (open the page once as /?token=TOKEN, or send Authorization: Bearer TOKEN).\n" +
		"Back here right after ?token=? Open the page by its VPN address, or over https (status_page.tls), or through\n" +
		"ssh -L 9470:ADDRESS:PORT HOST and http://localhost:9470/?token=TOKEN\n"))
}
