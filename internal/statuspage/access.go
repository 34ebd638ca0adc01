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
	"strings"
)

// sourceListener closes, right after accept, every connection whose
// source is not allowed: nothing is read from it and nothing is written,
// so a stray source learns only that the port exists on an address it
// could not have reached without a route into the VPN.
type sourceListener struct {
	net.Listener
	allow   func(netip.Addr) bool
	refused func(netip.Addr)
}

func (l sourceListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, perr := netip.ParseAddrPort(c.RemoteAddr().String())
		if perr == nil && l.allow(ap.Addr().Unmap()) {
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

// cookieName holds the proof of the token, never the token itself.
const cookieName = "moat_status"

// auth checks the optional token: Authorization: Bearer, a ?token= query
// (answered with the cookie and a redirect that drops it from the URL),
// or the cookie. Every comparison is constant-time.
type auth struct {
	token  string
	cookie string // hex HMAC of the token: what the cookie carries
}

func newAuth(token string) *auth {
	if token == "" {
		return nil
	}
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("moat status page cookie v1"))
	return &auth{token: token, cookie: hex.EncodeToString(m.Sum(nil))}
}

func equal(a, b string) bool {
	// Hash first so neither the content nor the length leaks by timing.
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// check answers whether r may proceed; when not, it has written the
// response (a redirect after ?token=, or 401).
func (a *auth) check(w http.ResponseWriter, r *http.Request) bool {
	if a == nil {
		return true
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") && equal(strings.TrimSpace(tok), a.token) {
			return true
		}
	}
	if q := r.URL.Query(); q.Has("token") {
		if !equal(q.Get("token"), a.token) {
			unauthorized(w)
			return false
		}
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: a.cookie, Path: "/",
			Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 30 * 24 * 3600})
		q.Del("token")
		u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		if u.Path == "" {
			u.Path = "/"
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return false
	}
	if c, err := r.Cookie(cookieName); err == nil && equal(c.Value, a.cookie) {
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
		"Back here right after ?token=? Browsers keep the page's Secure cookie over http:// only on localhost: open it through\n" +
		"ssh -L 9470:ADDRESS:PORT HOST and http://localhost:9470/?token=TOKEN\n"))
}
