package statuspage_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzRequest sends the page what a client controls (the path and query,
// Host, Authorization, Cookie, If-None-Match): nothing panics, nothing is
// served without the token, and a token in the URL never survives into
// a redirect.
func FuzzRequest(f *testing.F) {
	const tok = "fuzz-token-0123456789abcdef"
	for _, s := range [][5]string{
		{"/", "127.0.0.1:9470", "", "", ""},
		{"/?token=" + tok, "127.0.0.1", "", "", ""},
		{"/?token=" + tok + "&token=x&a=%zz", "[::1]:1", "", "", ""},
		{"/api/status", "evil.example", "Bearer " + tok, "", `"x", W/"y", *`},
		{"/static/app.js?v=1", "localhost", "bearer  " + tok, "moat_status=00", "*"},
		{"//api/../api/bans", "100.64.0.1:80", "Basic Zm9vOmJhcg==", "moat_status=" + strings.Repeat("a", 64), ""},
		{"/api/", "[fe80::1%eth0]:9470", "Bearer", "a=b; moat_status=", "W/"},
		{"/", "10.8.0.1:9470", "", "__Host-moat_status=99999999999.00; moat_status=1.ab", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	clk := newClock(t0)
	src := &fakeSource{data: fixture}
	s, err := newServerErr(src, clk, tok)
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, target, host, authz, cookie, inm string) {
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		r, err := http.NewRequest(http.MethodGet, "http://x"+target, nil)
		if err != nil {
			return
		}
		r.Host = host
		r.Header.Set("Authorization", authz)
		r.Header.Set("Cookie", cookie)
		r.Header.Set("If-None-Match", inm)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		clk.add(time.Second)
		authorized := strings.Contains(authz, tok) || r.URL.Query().Get("token") == tok
		if (w.Code == 200 || w.Code == 304) && !authorized && !strings.Contains(cookie, "moat_status=") {
			t.Fatalf("%s served %d without the token", target, w.Code)
		}
		if loc := w.Header().Get("Location"); strings.Contains(loc, tok) {
			t.Fatalf("redirect to %q keeps the token", loc)
		}
	})
}
