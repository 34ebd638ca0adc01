package statuspage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/moat-sh/moat/internal/audit"
	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/daemon"
	"github.com/moat-sh/moat/internal/lab"
)

// expect is what the fixture should show.
type expect struct {
	total24h, total7d, dayBars, active int
	topSource                          string
	topCount                           int
	score                              int
	findings                           int
	pendingID                          string
}

// Hostile strings stored in the history: a jail reason, a user name, a
// Host header, a javascript: URL. Each would call alert() if it ran.
const (
	hostileReason = `<script>alert("reason")</script>`
	hostileHost   = `Host: "><img src=x onerror=alert('host')>`
	hostileURL    = `javascript:alert('url')`
	hostileUser   = `user '><svg onload=alert('user')>`
)

// writeFixture fills a state directory as a day of moat would: bans
// across the last 24 hours and the week before (moat.db), a month of
// drift audits, a pending change and a rollback.
func writeFixture(t *testing.T, state, changes string, now time.Time) expect {
	t.Helper()
	ctx := context.Background()
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := ban.Open(filepath.Join(state, "moat.db"), ban.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hour := now.UTC().Truncate(time.Hour)
	var e expect
	var bans []ban.Ban
	n := 0
	add := func(created time.Time, addr string, reason string, expires time.Time) {
		bans = append(bans, ban.Ban{Prefix: netip.PrefixFrom(netip.MustParseAddr(addr), 32), Jail: "sshd", Reason: reason,
			Created: created, Expires: expires, Failures: 5})
		n++
	}
	hours := map[time.Time]bool{}
	// Hours 1 to 22 back: should the hour turn during the test, every
	// ban stays in the 24-hour window, in the same number of bars.
	for i := 1; i <= 22; i++ {
		created := hour.Add(-time.Duration(i)*time.Hour + 10*time.Minute)
		for j := range 1 + i%3 {
			add(created.Add(time.Duration(j)*time.Second), fmt.Sprintf("203.0.113.%d", n%200+1), "5 failures in 10m", created.Add(30*time.Minute))
			e.total24h++
			hours[created.Truncate(time.Hour)] = true
		}
		if i%5 == 0 { // one source, again and again: the top source
			add(created.Add(time.Minute), "192.0.2.66", "5 failures in 10m", created.Add(31*time.Minute))
			e.total24h++
			e.topCount++
		}
	}
	for j := range 5 {
		add(now.Add(-3*24*time.Hour+time.Duration(j)*time.Minute), fmt.Sprintf("198.18.0.%d", j+1), "5 failures in 10m", now.Add(-3*24*time.Hour+time.Hour))
	}
	e.total7d = e.total24h + 5
	// Bans in force, with what an attacker wrote.
	recent := hour.Add(-time.Hour + 20*time.Minute)
	for i, r := range []string{hostileReason, hostileHost, hostileURL} {
		add(recent.Add(time.Duration(i)*time.Second), fmt.Sprintf("192.0.2.%d", 100+i), r, now.Add(6*time.Hour))
		e.total24h++
		e.total7d++
		e.active++
	}
	if _, err := st.Ban(ctx, bans); err != nil {
		t.Fatal(err)
	}
	// The expired ones leave the store (and stay in the history), as the
	// daemon's expiry would have done.
	if _, err := st.Expire(ctx, now); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	e.dayBars = len(hours)
	e.topSource = "192.0.2.66/32"

	// A month of drift audits, one every 6 hours; the last scores 81.
	type history struct {
		Generator string            `json:"generator"`
		Runs      []daemon.AuditRun `json:"runs"`
	}
	h := history{Generator: "moat test"}
	for i := 120; i >= 0; i-- {
		h.Runs = append(h.Runs, daemon.AuditRun{Time: now.Add(-time.Duration(i) * 6 * time.Hour), Score: 70 + (i*7)%20,
			Findings: map[string]int{"medium": 2}})
	}
	last := &h.Runs[len(h.Runs)-1]
	last.Score, e.score = 81, 81
	last.Findings = map[string]int{"critical": 1, "high": 1, "medium": 2}
	last.Urgent = []audit.Result{
		{ID: "SSH-PASSWORD", Severity: audit.Critical, Status: audit.Fail, Title: "sshd accepts passwords", Subject: hostileUser, Fix: "moat apply ssh"},
		{ID: "FW-OPEN", Severity: audit.High, Status: audit.Fail, Title: "a database listens on the public address", Subject: "0.0.0.0:5432", Fix: "moat apply firewall"},
	}
	e.findings = 2
	b, _ := json.Marshal(h)
	if err := os.WriteFile(filepath.Join(state, daemon.AuditHistoryFile), b, 0o600); err != nil {
		t.Fatal(err)
	}

	// A change waiting for confirm, and yesterday's rollback.
	e.pendingID = "20261206T190000Z-abc123"
	m := change.Manifest{ID: e.pendingID, Created: now.Add(-time.Minute), Layers: []string{"ssh"}, State: change.Waiting,
		Summary: []string{"ssh: PasswordAuthentication no", "admin " + hostileUser}, Window: 10 * time.Minute, Deadline: now.Add(9 * time.Minute)}
	mb, _ := json.Marshal(m)
	note, _ := json.Marshal(change.RollbackNote{ID: "20261205T100000Z-def456", Time: now.Add(-26 * time.Hour), Reason: "not confirmed in time", State: change.RolledBack})
	for path, data := range map[string][]byte{
		filepath.Join(changes, e.pendingID, "change.json"): mb,
		filepath.Join(changes, "pending"):                  []byte(e.pendingID + "\n"),
		filepath.Join(changes, "last-rollback"):            note,
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func buildMoat(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "moat")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/moat-sh/moat/cmd/moat")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build moat: %v\n%s", err, out)
	}
	return bin
}

// changeStoreMountpoint makes sure /var/lib/moat/changes exists to bind
// the fixture over (in moat's private mount namespace), and removes what
// it created when the test ends.
func changeStoreMountpoint(t *testing.T) {
	var made []string
	for _, d := range []string{"/var/lib/moat", change.StateDir} {
		if _, err := os.Stat(d); err != nil {
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			made = append(made, d)
		}
	}
	t.Cleanup(func() {
		for _, d := range slices.Backward(made) {
			os.Remove(d) // only if still empty
		}
	})
}

type moatRun struct {
	proc  *lab.Proc
	sock  string
	state string
	bin   string
}

// startMoat runs `moat run` in vps with the fixture's change store.
func startMoat(t *testing.T, vps *lab.Host, bin, cfg, state, changes string) *moatRun {
	t.Helper()
	changeStoreMountpoint(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(filepath.Dir(cfg), "moat.sock")
	w, _ := json.Marshal(wrap{Changes: changes, Bin: bin, Args: []string{"run", "-c", cfg, "--state", state, "--socket", sock}})
	t.Setenv(wrapEnv, string(w))
	p := vps.Start(t, "unshare", "--mount", "--propagation", "private", exe)
	os.Unsetenv(wrapEnv)
	return &moatRun{proc: p, sock: sock, state: state, bin: bin}
}

func chromium() string {
	for _, p := range []string{"chromium", "/usr/lib/chromium/chromium"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

func randomToken(t *testing.T) string {
	b := make([]byte, 18)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestStatusPageInBrowser runs `moat run` with a populated state in a lab
// namespace and opens its status page in headless Chromium from a VPN
// peer: no console errors, no request to any other origin, the fixture's
// numbers in every section, the ban chart's bars, hostile strings shown
// as text and never run, an idle tab costing one 304 per refresh; from
// outside vpn.ranges the connection is refused; the token flow sets the
// right cookie.
func TestStatusPageInBrowser(t *testing.T) {
	lab.RequireTool(t, "nft", "go", "unshare")
	chrome := chromium()
	lab.Require(t, chrome != "", "needs chromium (Debian package chromium)")
	bin := buildMoat(t)
	l := lab.New(t)
	vps, admin, outsider := l.Host("vps"), l.Host("admin"), l.Host("outsider")
	l.Link(vps, "wg0", admin, "eth0", []string{"10.8.0.1/24"}, []string{"10.8.0.2/24"})
	l.Link(vps, "eth0", outsider, "eth0", []string{"198.51.100.1/24"}, []string{"198.51.100.2/24"})
	outsider.Route("10.8.0.0/24", "via", "198.51.100.1")

	dir := t.TempDir()
	state, changes := filepath.Join(dir, "state"), filepath.Join(dir, "changes")
	fx := writeFixture(t, state, changes, time.Now())
	token := randomToken(t)
	tokenFile := filepath.Join(dir, "status-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "moat.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`firewall:
  mode: bans-only
vpn:
  interfaces: [wg0]
  ranges: [10.8.0.0/24]
guard:
  enabled: false
status_page:
  listen: 10.8.0.1:9470
  token_file: %s
  refresh: 2s
`, tokenFile)), 0o600)
	moat := startMoat(t, vps, bin, cfg, state, changes)
	const base = "http://10.8.0.1:9470"
	client := admin.HTTPClient()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	authed := func(path string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	up := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !up; time.Sleep(100 * time.Millisecond) {
		r, _ := authed("/api/status")
		up = r != nil && r.StatusCode == 200
	}
	if !up {
		t.Fatalf("the status page did not come up:\n%s", moat.proc.Output())
	}

	t.Run("outside the ranges: refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// The outsider has a route to the page's address: the kernel
		// completes the handshake and moat resets the connection, often
		// before connect returns. A timeout or "unreachable" would mean
		// the test's routing is broken, not that moat refused.
		c, err := outsider.Dial(ctx, "tcp", "10.8.0.1:9470")
		if err != nil {
			if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("the outsider cannot reach 10.8.0.1 at all (the test's routing is broken): %v", err)
			}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(c, "GET /api/status HTTP/1.1\r\nHost: 10.8.0.1\r\nAuthorization: Bearer %s\r\n\r\n", token)
		b, err := io.ReadAll(c)
		if len(b) > 0 {
			t.Fatalf("a source outside vpn.ranges got an answer: %q", b)
		}
		if err != nil && strings.Contains(err.Error(), "timeout") {
			t.Fatalf("connection left open, not closed: %v", err)
		}
	})

	t.Run("token", func(t *testing.T) {
		resp, err := client.Get(base + "/")
		if err != nil || resp.StatusCode != 401 {
			t.Fatalf("no token: %v %v", resp, err)
		}
		resp.Body.Close()
		resp, err = client.Get(base + "/?token=" + token)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" {
			t.Fatalf("?token=: %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
		}
		// Plain http between two VPN addresses: not Secure (a browser
		// would drop it), and short-lived.
		sc := resp.Header.Get("Set-Cookie")
		for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"} {
			if !strings.Contains(sc, attr) {
				t.Errorf("cookie %q lacks %s", sc, attr)
			}
		}
		if strings.Contains(sc, "Secure") || strings.Contains(sc, "Domain") {
			t.Errorf("cookie %q over plain http on the VPN: want neither Secure nor Domain", sc)
		}
		if strings.Contains(sc, token) {
			t.Error("the cookie carries the token itself")
		}
		req, _ := http.NewRequest(http.MethodGet, base+"/api/bans", nil)
		req.Header.Set("Cookie", strings.SplitN(sc, ";", 2)[0])
		if resp, err := client.Do(req); err != nil || resp.StatusCode != 200 {
			t.Fatalf("with the cookie: %v %v", resp, err)
		}
	})

	t.Run("without JavaScript", func(t *testing.T) {
		_, page := authed("/")
		for k, v := range map[string]int{"bans-24h": fx.total24h, "bans-7d": fx.total7d, "active-bans": fx.active, "audit-score": fx.score} {
			if want := fmt.Sprintf(`data-k="%s">%d<`, k, v); !strings.Contains(page, want) {
				t.Errorf("page lacks %s", want)
			}
		}
		// /api/status is `moat status --json`.
		_, api := authed("/api/status")
		cli, err := exec.Command(bin, "status", "--json", "--socket", moat.sock).Output()
		if err != nil {
			t.Fatal(err)
		}
		var a, c map[string]any
		json.Unmarshal([]byte(api), &a)
		json.Unmarshal(cli, &c)
		delete(a, "uptime")
		delete(c, "uptime")
		for _, k := range []string{"active_bans", "pending_change", "last_rollback", "audit", "jails", "daemon_running"} {
			if fmt.Sprint(a[k]) != fmt.Sprint(c[k]) {
				t.Errorf("/api/status %s = %v, moat status --json says %v", k, a[k], c[k])
			}
		}
	})

	t.Run("browser", func(t *testing.T) { browse(t, admin, chrome, base, token, fx, moat) })
}

func browse(t *testing.T, admin *lab.Host, chrome, base, token string, fx expect, moat *moatRun) {
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		ipPath = "/usr/sbin/ip"
	}
	var chromeOut bytes.Buffer
	opts := append(chromeOptions(t, chrome, &chromeOut),
		// The browser runs on the VPN peer: inside admin's namespace.
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Args = append([]string{ipPath, "netns", "exec", admin.Netns()}, cmd.Args...)
			cmd.Path = ipPath
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()

	var mu sync.Mutex
	var urls, problems []string
	var pageStatus []int64
	ids := map[network.RequestID]string{}
	err = chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			urls = append(urls, e.Request.URL)
			ids[e.RequestID] = e.Request.URL
		case *network.EventResponseReceivedExtraInfo:
			// The status on the wire: a revalidated response is
			// reported to the page (and in ResponseReceived) as 200.
			if ids[e.RequestID] == base+"/" {
				pageStatus = append(pageStatus, e.StatusCode)
			}
		case *runtime.EventConsoleAPICalled:
			problems = append(problems, fmt.Sprintf("console.%s", e.Type))
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("%s %s: %s", e.Entry.Source, e.Entry.Level, e.Entry.Text))
			}
		case *page.EventJavascriptDialogOpening:
			problems = append(problems, "dialog: "+e.Message)
			go chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v\n%s", err, chromeOut.String())
	}
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(bctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(bctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + token}}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#recent"))); err != nil {
		t.Fatalf("load the page: %v\nchromium:\n%s", err, chromeOut.String())
	}

	// One script call reads the element: the page's refresh replaces its
	// nodes every interval, so a query then a read by node id can fall
	// between the two.
	text := func(sel string) string {
		q, _ := json.Marshal(sel)
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(() => { const e = document.querySelector(`+string(q)+`);
			return e ? e.innerText : "(missing)" })()`))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	num := func(k string) int {
		n, err := strconv.Atoi(text(`[data-k="` + k + `"]`))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return n
	}
	for k, want := range map[string]int{"bans-24h": fx.total24h, "bans-7d": fx.total7d, "active-bans": fx.active, "audit-score": fx.score} {
		if got := num(k); got != want {
			t.Errorf("%s shows %d, the fixture has %d", k, got, want)
		}
	}
	bars, err := chromedp.Run(bctx, chromedp.Evaluate[[]int](`(() => {
		const charts = document.querySelectorAll('#bans svg.bars');
		const r = [...charts[0].querySelectorAll('rect.bar')], w = [...charts[1].querySelectorAll('rect.bar')];
		return [r.length, r.filter(x => +x.dataset.count > 0).length, r.reduce((a, x) => a + +x.dataset.count, 0), w.length,
			w.reduce((a, x) => a + +x.dataset.count, 0), document.querySelectorAll('#findings tr').length - 1,
			document.querySelectorAll('#recent tr').length - 1, document.querySelectorAll('script').length]
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{24, fx.dayBars, fx.total24h, 7, fx.total7d, fx.findings, min(fx.total7d, 25), 1}; !slices.Equal(bars, want) {
		t.Errorf("day bars, non-empty, sum; week bars, sum; findings; recent; scripts = %v, want %v", bars, want)
	}
	if s := text("#sources tr:nth-child(2)"); !strings.Contains(s, fx.topSource) || !strings.Contains(s, strconv.Itoa(fx.topCount)) {
		t.Errorf("top source row %q, want %s with %d", s, fx.topSource, fx.topCount)
	}
	if s := text("#changes"); !strings.Contains(s, fx.pendingID) || !strings.Contains(s, "20261205T100000Z-def456") {
		t.Errorf("changes section %q lacks the pending change or the rollback", s)
	}
	if s := text("#vpn"); !strings.Contains(s, "no VPN layer data") {
		t.Errorf("vpn section %q", s)
	}
	// Hostile strings: on the page as text, nowhere as markup.
	recent, changes, findings := text("#recent"), text("#changes"), text("#findings")
	for _, h := range []string{hostileReason, hostileHost, hostileURL} {
		if !strings.Contains(recent, h) {
			t.Errorf("recent bans lack the text %q", h)
		}
	}
	if !strings.Contains(changes, hostileUser) || !strings.Contains(findings, hostileUser) {
		t.Errorf("the hostile user name is not shown as text")
	}
	injected, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`[...document.querySelectorAll('*')].some(e =>
		[...e.attributes].some(a => a.name.startsWith('on') || /^\s*javascript:/i.test(a.value)))
		|| document.querySelectorAll('img, iframe, object, embed').length > 0`))
	if err != nil {
		t.Fatal(err)
	}
	if injected {
		t.Error("a hostile string became an element or an event handler")
	}

	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "status-page.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("MOAT_UPDATE_SCREENSHOT") == "1" {
		// docs/status-page.png: the first screen, small enough for the
		// repository.
		top, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile("../../docs/status-page.png", top, 0o644)
	}

	// An idle tab: every refresh interval one request, the page's, and a
	// 304. Counted over three refreshes.
	mu.Lock()
	urls, pageStatus = nil, nil
	mu.Unlock()
	waitFor := func(what string, cond func() bool) {
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return
			}
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	waitFor("three refreshes", func() bool { return len(pageStatus) >= 3 })
	mu.Lock()
	for _, u := range urls {
		if u != base+"/" {
			t.Errorf("an idle refresh requested %s besides the page", u)
		}
	}
	if len(urls) != len(pageStatus) {
		t.Errorf("%d requests for %d refreshes", len(urls), len(pageStatus))
	}
	for _, s := range pageStatus {
		if s != http.StatusNotModified {
			t.Errorf("an idle refresh got %d, want 304: %v", s, pageStatus)
			break
		}
	}
	mu.Unlock()

	// A ban arrives: the next refresh shows it, without a reload.
	if out, err := exec.Command(moat.bin, "ban", "192.0.2.250", "--for", "1h", "--reason", "live", "--socket", moat.sock).CombinedOutput(); err != nil {
		t.Fatalf("moat ban: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if num("active-bans") == fx.active+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the page did not show the new ban")
		}
	}

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
	for _, u := range urls {
		if !strings.HasPrefix(u, base+"/") {
			t.Errorf("request to another origin: %s", u)
		}
	}
}

// chromeOptions are the flags the browser tests run Chromium with: no
// sandbox (root), no GPU, no QUIC, nothing fetched in the background, a
// new empty profile.
func chromeOptions(t *testing.T, chrome string, out io.Writer) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 1000), chromedp.CombinedOutput(out),
	}
}

// The token flow in a real browser, on localhost (where browsers keep a
// Secure cookie over http://): ?token= once, then the cookie; the URL
// loses the token, the cookie is Secure, HttpOnly, SameSite=Strict and
// out of the page's scripts' reach.
func TestTokenFlowInBrowser(t *testing.T) {
	chrome := chromium()
	lab.Require(t, chrome != "", "needs chromium (Debian package chromium)")
	const tok = "browser-token-0123456789abcdef"
	srv := newServer(t, &fakeSource{data: fixture}, newClock(time.Now()), tok)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	base := "http://localhost:" + ts.URL[strings.LastIndex(ts.URL, ":")+1:]

	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	actx, cancelA := chromedp.NewExecAllocator(ctx, chromeOptions(t, chrome, &out)...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if s, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body"))); !strings.Contains(s, "a token is required") {
		t.Fatalf("without the token the page shows %.200q", s)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/?token="+tok), chromedp.WaitVisible(chromedp.CSS("#recent"))); err != nil {
		t.Fatalf("with ?token=: %v", err)
	}
	loc, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil || loc != base+"/" {
		t.Errorf("after ?token= the browser is at %q (%v), want %s/", loc, err, base)
	}
	res, err := chromedp.Call(bctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cookies) != 1 {
		t.Fatalf("cookies: %+v", res.Cookies)
	}
	c := res.Cookies[0]
	if !c.Secure || !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || strings.Contains(c.Value, tok) {
		t.Errorf("cookie %s: secure %v, httpOnly %v, sameSite %q; want Secure, HttpOnly, Strict and not the token", c.Name, c.Secure, c.HTTPOnly, c.SameSite)
	}
	if js, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.cookie`)); err != nil || js != "" {
		t.Errorf("the page's scripts see the cookie: %q (%v)", js, err)
	}
	// A new visit without the token rides on the cookie.
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/api/bans")); err != nil {
		t.Fatal(err)
	}
	if s, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body"))); !strings.Contains(s, `"total_24h"`) {
		t.Errorf("with the cookie, /api/bans shows %.200q", s)
	}
}
