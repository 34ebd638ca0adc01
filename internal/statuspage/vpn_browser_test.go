package statuspage_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/statuspage"
)

// TestLoginOverVPNInBrowser is the page's main use: a phone on the VPN
// opens http://VPN-ADDRESS:PORT/?token=TOKEN. The page listens on a VPN
// address in one namespace, Chromium runs on a peer in another, and logs
// in with ?token= over plain http (a cookie without Secure, which the
// browser keeps) and then, after a reload turns TLS on, over https with
// moat's self-signed certificate, its key pinned with
// --ignore-certificate-errors-spki-list (that certificate only: a reload
// onto another one is refused by the same browser). Along the way: the
// http cookie is worthless over https, a login link followed from another
// site is refused, and no request after a login carries the token.
func TestLoginOverVPNInBrowser(t *testing.T) {
	chrome := chromium()
	lab.Require(t, chrome != "", "needs chromium (Debian package chromium)")
	l := lab.New(t)
	vps, admin := l.Host("vps"), l.Host("admin")
	l.Link(vps, "wg0", admin, "eth0", []string{"10.8.0.1/24"}, []string{"10.8.0.2/24"})
	const listen = "10.8.0.1:9470"
	tok := randomToken(t)

	// The certificate TLS will use, made now: its key is the browser's pin.
	cert, _, err := statuspage.LoadCert(&statuspage.TLS{SelfSigned: true}, listen, t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := statuspage.New(statuspage.Options{Config: statuspage.Config{Listen: listen}, Token: tok,
		Source: &fakeSource{data: fixture}, Allow: allowVPN, VPN: inVPN, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := vps.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	ipPath, err := exec.LookPath("ip")
	if err != nil {
		ipPath = "/usr/sbin/ip"
	}
	var out bytes.Buffer
	opts := append(chromeOptions(t, chrome, &out),
		chromedp.Flag("ignore-certificate-errors-spki-list", cert.SPKI),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Args = append([]string{ipPath, "netns", "exec", admin.Netns()}, cmd.Args...)
			cmd.Path = ipPath
		}))
	bctxT, cancelT := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancelT()
	actx, cancelA := chromedp.NewExecAllocator(bctxT, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()

	// Every request on the wire: its URL and headers (Referer, Cookie).
	type sent struct {
		url string
		hdr network.Headers
	}
	var mu sync.Mutex
	var reqs []sent
	err = chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			reqs = append(reqs, sent{url: e.Request.URL, hdr: e.Request.Headers})
		case *network.EventRequestWillBeSentExtraInfo:
			reqs = append(reqs, sent{hdr: e.Headers})
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v\n%s", err, out.String())
	}
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	body := func() string {
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
		if err != nil {
			t.Fatalf("body: %v", err)
		}
		return s
	}
	cookies := func(base string) []*network.Cookie {
		res, err := chromedp.Call(bctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Cookies
	}
	// loginAt opens base/?token= and checks the page rendered at base/.
	loginAt := func(base string) {
		t.Helper()
		if err := chromedp.Do(bctx, chromedp.Navigate(base+"/?token="+tok)); err != nil {
			t.Fatalf("log in at %s: %v\nchromium:\n%s", base, err, out.String())
		}
		// The redirect's target loaded: the page, or a 401 when the
		// browser dropped the cookie.
		if ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`!!document.querySelector('#recent')`)); err != nil || !ok {
			t.Fatalf("log in at %s: no page after ?token= (%v): %.300q", base, err, body())
		}
		if loc, err := chromedp.Run(bctx, chromedp.Location()); err != nil || loc != base+"/" {
			t.Errorf("after ?token= the browser is at %q (%v), want %s/", loc, err, base)
		}
		if n, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`[data-k="active-bans"]`))); err != nil || strings.TrimSpace(n) != "7" {
			t.Errorf("the page after login shows %q active bans (%v), want the fixture's 7", n, err)
		}
		// A later visit, without the token, rides on the cookie.
		if err := chromedp.Do(bctx, chromedp.Navigate(base+"/api/bans")); err != nil {
			t.Fatal(err)
		}
		if b := body(); !strings.Contains(b, `"total_24h"`) {
			t.Errorf("%s/api/bans with the cookie: %.200q", base, b)
		}
	}

	// Plain http over the VPN.
	const httpBase = "http://" + listen
	if err := chromedp.Do(bctx, chromedp.Navigate(httpBase+"/")); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if b := body(); !strings.Contains(b, "a token is required") {
		t.Fatalf("without the token: %.200q", b)
	}
	loginAt(httpBase)
	cs := cookies(httpBase)
	if len(cs) != 1 {
		t.Fatalf("cookies after the http login: %+v", cs)
	}
	c := cs[0]
	life := time.Until(time.Unix(int64(c.Expires), 0))
	if c.Name != "moat_status" || c.Secure || !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Domain != "10.8.0.1" ||
		c.Path != "/" || life > 12*time.Hour || life < 11*time.Hour || strings.Contains(c.Value, tok) {
		t.Errorf("http cookie %s domain %q path %q secure %v httpOnly %v sameSite %q life %s; want moat_status, host-only, /, not Secure, HttpOnly, Strict, 12h",
			c.Name, c.Domain, c.Path, c.Secure, c.HTTPOnly, c.SameSite, life)
	}

	// A reload turns TLS on, on the same address.
	commit, _, err := s.Prepare(statuspage.Update{Config: statuspage.Config{Listen: listen, TLS: &statuspage.TLS{SelfSigned: true}},
		Token: tok, Cert: cert})
	if err != nil {
		t.Fatal(err)
	}
	commit()
	const httpsBase = "https://" + listen
	// The browser still holds the http cookie and sends it: refused.
	if err := chromedp.Do(bctx, chromedp.Navigate(httpsBase+"/")); err != nil {
		t.Fatalf("https with the pinned certificate: %v\n%s", err, out.String())
	}
	if b := body(); !strings.Contains(b, "a token is required") {
		t.Errorf("the http cookie over https: %.200q", b)
	}
	// Login CSRF: another site sends the browser to the login link.
	attack := "data:text/html,<script>location.href=" + url.PathEscape(`"`+httpsBase+"/?token="+tok+`"`) + "</script>"
	if err := chromedp.Do(bctx, chromedp.Navigate(attack)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if loc, _ := chromedp.Run(bctx, chromedp.Location()); strings.HasPrefix(loc, httpsBase) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the attacker's page did not navigate")
		}
	}
	chromedp.Do(bctx, chromedp.WaitReady(chromedp.CSS("body")))
	if b := body(); !strings.Contains(b, "another site is refused") {
		t.Errorf("a login link from another site: %.200q", b)
	}
	for _, c := range cookies(httpsBase) {
		if c.Name == "__Host-moat_status" {
			t.Errorf("a login link from another site set %s", c.Name)
		}
	}
	loginAt(httpsBase)
	var tlsC *network.Cookie
	for _, c := range cookies(httpsBase) {
		if c.Name == "__Host-moat_status" {
			tlsC = c
		}
	}
	if tlsC == nil || !tlsC.Secure || !tlsC.HTTPOnly || tlsC.SameSite != network.CookieSameSiteStrict || tlsC.Path != "/" {
		t.Errorf("https cookie %+v: want __Host-moat_status, Secure, HttpOnly, Strict, /", tlsC)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(httpsBase+"/"), chromedp.WaitVisible(chromedp.CSS("#recent"))); err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(t.ArtifactDir(), "status-page-https.png"), shot, 0o644)

	// The token leaves no trace: only the two login URLs (and the
	// attacker's) hold it, no Referer, no later URL.
	mu.Lock()
	for _, r := range reqs {
		if r.url != "" && strings.Contains(r.url, tok) && !strings.HasSuffix(r.url, "/?token="+tok) && !strings.HasPrefix(r.url, "data:") {
			t.Errorf("a request other than the login carries the token: %s", r.url)
		}
		for k, v := range r.hdr {
			// (The attacker's own data: page names the token itself.)
			if ref, _ := v.(string); strings.EqualFold(k, "Referer") && strings.Contains(ref, tok) && !strings.HasPrefix(ref, "data:") {
				t.Errorf("a Referer carries the token: %s", ref)
			}
		}
	}
	mu.Unlock()

	// Another certificate on the same address (a reload, or someone in
	// the middle): the pin does not cover it, and the browser refuses.
	other, _, err := statuspage.LoadCert(&statuspage.TLS{SelfSigned: true}, listen, t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	commit, _, err = s.Prepare(statuspage.Update{Config: statuspage.Config{Listen: listen, TLS: &statuspage.TLS{SelfSigned: true}},
		Token: tok, Cert: other})
	if err != nil {
		t.Fatal(err)
	}
	commit()
	if err := chromedp.Do(bctx, chromedp.Navigate(httpsBase+"/api/status")); err == nil {
		t.Errorf("the browser accepted a certificate other than the pinned one: %.200q", body())
	} else if !strings.Contains(err.Error(), "CERT") {
		t.Errorf("another certificate: %v, want a certificate error", err)
	}
}
