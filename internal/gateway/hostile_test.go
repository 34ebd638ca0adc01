package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hostileUpstream is an HTTP/1.1 upstream that gets response framing wrong
// on purpose, one way per path (/c/<case>?id=<id>). Every answer carries
// the request's id; the extra bytes it sends are whole forged responses
// carrying the same id (and a session cookie), so a connection left out of
// step hands this client's answer, cookie included, to the next client.
type hostileUpstream struct {
	ln    net.Listener
	late  chan struct{} // a late forged response was written
	wrote chan struct{} // a random answer was written, all of it
	// noLate makes random answers send their forged extra at once, never
	// in a later write: with many clients at once, a later write races the
	// next request, which no HTTP/1.1 client can tell from its answer.
	noLate bool
	conns  atomic.Int64

	mu          sync.Mutex
	served      map[string]int
	reusedAfter map[string]int // a further request came on the same connection
}

func newHostileUpstream(t testing.TB) *hostileUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostileUpstream{ln: ln, late: make(chan struct{}, 64), wrote: make(chan struct{}, 1024), served: map[string]int{}, reusedAfter: map[string]int{}}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	var open sync.Map
	t.Cleanup(func() {
		open.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			open.Store(c, true)
			wg.Go(func() { h.serveConn(c); open.Delete(c) })
		}
	})
	return h
}

func (h *hostileUpstream) url() string { return "http://" + h.ln.Addr().String() }

func (h *hostileUpstream) serveConn(c net.Conn) {
	defer c.Close()
	h.conns.Add(1)
	br := bufio.NewReader(c)
	last := ""
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		cs := strings.TrimPrefix(req.URL.Path, "/c/")
		id := req.URL.Query().Get("id")
		h.mu.Lock()
		if last != "" {
			h.reusedAfter[last]++
		}
		h.served[cs]++
		h.mu.Unlock()
		last = cs
		if !h.respond(c, cs, id) || req.Close {
			return // a client that asked for the close gets it, even here
		}
	}
}

func hostileOK(id string) string {
	body := "id=" + id
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nX-Id: %s\r\n\r\n%s", len(body), id, body)
}

// hostileForged is a whole response naming id, as an attacker would
// plant it for the next client.
func hostileForged(id string) string {
	body := "forged id=" + id
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Id: %s\r\nSet-Cookie: session=%s\r\n\r\n%s", len(body), id, id, body)
}

func hostileChunked(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }

// respond writes case cs's answer and reports whether to go on reading
// requests on the connection.
func (h *hostileUpstream) respond(c net.Conn, cs, id string) bool {
	body := "id=" + id
	f := hostileForged(id)
	w := func(s string) { io.WriteString(c, s) }
	switch cs {
	case "ok":
		w(hostileOK(id))
	case "extra": // more than Content-Length, in the same write
		w(hostileOK(id) + f)
	case "extra-crlf":
		w(hostileOK(id) + "\r\n")
	case "extra-late": // the forged answer in a later write, before the next request
		w(hostileOK(id))
		time.Sleep(5 * time.Millisecond)
		w(f)
		h.late <- struct{}{}
	case "head-body": // asked with HEAD: a body anyway
		w(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Id: %s\r\n\r\n%s", len(f), id, f))
	case "204-body", "304-body":
		code := map[string]string{"204-body": "204 No Content", "304-body": "304 Not Modified"}[cs]
		w(fmt.Sprintf("HTTP/1.1 %s\r\nContent-Length: %d\r\nX-Id: %s\r\n\r\n%s", code, len(f), id, f))
	case "dup-cl-same":
		w(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Length: %d\r\nX-Id: %s\r\n\r\n%s", len(body), len(body), id, body))
	case "cl-list":
		w(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d, %d\r\nX-Id: %s\r\n\r\n%s", len(body), len(body), id, body))
	case "dup-cl-conflict": // one length covers the forged answer, the other does not
		w(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Length: %d\r\nX-Id: %s\r\n\r\n%s%s", len(body), len(body)+len(f), id, body, f))
	case "cl-te": // Content-Length would end the body early, leaving the rest as an answer
		w(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nX-Id: %s\r\n\r\n%s0\r\n\r\n", id, hostileChunked(body)))
	case "te-gzip":
		w(fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nX-Id: %s\r\n\r\n%s0\r\n\r\n", id, hostileChunked(body)))
	case "chunked-trailers":
		w(fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Trailer\r\nX-Id: %s\r\n\r\n%s0\r\nX-Trailer: t-%s\r\n\r\n", id, hostileChunked(body), id))
	case "chunked-extra":
		w(fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Id: %s\r\n\r\n%s0\r\n\r\n%s", id, hostileChunked(body), f))
	case "bad-chunk":
		w(fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Id: %s\r\n\r\nzz\r\n%s", id, f))
	case "http10": // HTTP/1.0 without keep-alive, connection left open
		w(fmt.Sprintf("HTTP/1.0 200 OK\r\nContent-Length: %d\r\nX-Id: %s\r\n\r\n%s", len(body), id, body))
	case "conn-close": // says close, stays open
		w(fmt.Sprintf("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\nX-Id: %s\r\n\r\n%s", len(body), id, body))
	case "informational":
		w("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" + hostileOK(id))
	case "until-close":
		w(fmt.Sprintf("HTTP/1.1 200 OK\r\nX-Id: %s\r\n\r\n%s", id, body))
		return false
	case "short-close":
		w(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Id: %s\r\n\r\n%s", len(body)+50, id, body))
		return false
	case "reset":
		return false
	case "random", "random-head":
		return h.randomResponse(c, id)
	default:
		w(hostileOK(id))
	}
	return true
}

// hostileCases are the framing faults; reuseAllowed are those after which
// the connection is still in step and may be reused.
var (
	hostileCases = []string{"ok", "extra", "extra-crlf", "extra-late", "head-body", "204-body", "304-body",
		"dup-cl-same", "cl-list", "dup-cl-conflict", "cl-te", "te-gzip", "chunked-trailers", "chunked-extra",
		"bad-chunk", "http10", "conn-close", "informational", "until-close", "short-close", "reset"}
	reuseAllowed = []string{"ok", "chunked-trailers", "informational"}
	idPattern    = regexp.MustCompile(`q[0-9]{6}`)
)

func hostileMethod(cs string) string {
	if cs == "head-body" || cs == "random-head" {
		return http.MethodHead
	}
	return http.MethodGet
}

// foreignIDs returns the ids in an answer other than own.
func foreignIDs(resp *http.Response, body, own string) []string {
	var b strings.Builder
	if resp != nil {
		resp.Header.Write(&b)
		resp.Trailer.Write(&b)
	}
	b.WriteString(body)
	var out []string
	for _, x := range idPattern.FindAllString(b.String(), -1) {
		if x != own {
			out = append(out, x)
		}
	}
	return out
}

type hostileRun struct {
	mu     sync.Mutex
	next   int
	mixed  []string
	ownIDs int
}

func (hr *hostileRun) id() string {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	hr.next++
	return fmt.Sprintf("q%06d", hr.next)
}

// do sends one request of case cs through c to base and checks the answer.
func (hr *hostileRun) do(t *testing.T, c *http.Client, base, cs string) {
	id := hr.id()
	req, _ := http.NewRequest(hostileMethod(cs), base+"/c/"+cs+"?id="+id, nil)
	resp, err := c.Do(req)

	var body []byte
	if err == nil {
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	foreign := foreignIDs(resp, string(body), id)
	hr.mu.Lock()
	defer hr.mu.Unlock()
	if len(foreign) > 0 {
		hr.mixed = append(hr.mixed, fmt.Sprintf("case %s, request %s got %v", cs, id, foreign))
	}
	if resp != nil && resp.Header.Get("X-Id") == id {
		hr.ownIDs++
	}
}

// sequence runs each case followed by a plain request, so the upstream
// sees whether the connection was reused after it.
func (hr *hostileRun) sequence(t *testing.T, c *http.Client, base string, up *hostileUpstream) {
	for range 2 {
		for _, cs := range hostileCases {
			hr.do(t, c, base, cs)
			if cs == "extra-late" {
				select {
				case <-up.late:
				case <-time.After(5 * time.Second):
					t.Fatal("the late forged answer was never written")
				}
			}
			hr.do(t, c, base, "ok")
		}
	}
}

func (h *hostileUpstream) reused() map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := map[string]bool{}
	for _, cs := range hostileCases {
		m[cs] = h.reusedAfter[cs] > 0
	}
	return m
}

// TestHostileUpstreamDifferential: over an upstream that gets framing
// wrong in every way listed in hostileCases, each client gets only its own
// answer, and the gateway reuses an upstream connection only where
// http.Transport does too, and only after an answer that was in step.
func TestHostileUpstreamDifferential(t *testing.T) {
	// The reference: http.Transport straight to the upstream.
	ref := newHostileUpstream(t)
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	refRun := &hostileRun{}
	refRun.sequence(t, &http.Client{Transport: tr, Timeout: 10 * time.Second}, ref.url(), ref)
	refReused := ref.reused()
	if len(refRun.mixed) > 0 {
		t.Logf("http.Transport itself mixed answers (its idle check races the next request): %v", refRun.mixed)
	}

	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_path=%v", fast), func(t *testing.T) {
			up := newHostileUpstream(t)
			a := newApp(t)
			cfg := baseConfig(t, up.url())
			cfg.FastPath = ptr(fast)
			e := startEnv(t, a, cfg, Deps{})
			run := &hostileRun{}
			run.sequence(t, e.client, "https://app.test", up)
			for _, m := range run.mixed {
				t.Errorf("a client got another's answer: %s", m)
			}
			if run.ownIDs < len(hostileCases) {
				t.Errorf("only %d answers carried their own id: the test proves little", run.ownIDs)
			}
			got := up.reused()
			for _, cs := range hostileCases {
				if got[cs] && !refReused[cs] {
					t.Errorf("after %q the gateway reused the connection; http.Transport does not", cs)
				}
				want := fast && slices.Contains(reuseAllowed, cs)
				if got[cs] != want {
					t.Errorf("after %q: reused %v, want %v", cs, got[cs], want)
				}
			}
			t.Logf("reused after: gateway %v, transport %v", got, refReused)

			// Random framing, one request at a time, each waiting until
			// the upstream has written all it meant to (late extras too).
			for range 60 {
				cs := "random"
				if run.next%4 == 0 {
					cs = "random-head"
				}
				// A request the client or gateway retried left a second
				// signal: only this request's counts.
				for stale := true; stale; {
					select {
					case <-up.wrote:
					default:
						stale = false
					}
				}
				run.do(t, e.client, "https://app.test", cs)
				select {
				case <-up.wrote:
				case <-time.After(5 * time.Second):
					t.Fatal("the upstream never answered")
				}
			}
			for _, m := range run.mixed {
				t.Errorf("a client got another's answer: %s", m)
			}
		})
	}
}

// TestHostileUpstreamConcurrent: many clients at once over faulty
// framing, each asserting it sees only its own id.
func TestHostileUpstreamConcurrent(t *testing.T) {
	up := newHostileUpstream(t)
	up.noLate = true
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, up.url()), Deps{})
	run := &hostileRun{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for range 40 {
				cs := hostileCases[rng.IntN(len(hostileCases))]
				switch {
				case cs == "extra-late":
					cs = "extra" // a late write racing the next request is beyond any client's sight
				case rng.IntN(2) == 0:
					cs = "random"
					if rng.IntN(4) == 0 {
						cs = "random-head"
					}
				}
				run.do(t, e.client, "https://app.test", cs)
			}
		})
	}
	wg.Wait()
	for _, m := range run.mixed {
		t.Errorf("a client got another's answer: %s", m)
	}
	if run.ownIDs < 100 {
		t.Errorf("only %d answers carried their own id", run.ownIDs)
	}
}

// TestHostileForwardAuth: an auth service that sends a second, forged
// "allowed" answer after each real one (naming that client's user) must
// never make the gateway vouch for one client as another.
func TestHostileForwardAuth(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					id := idPattern.FindString(req.Header.Get("X-Forwarded-Uri"))
					ok := "HTTP/1.1 200 OK\r\nRemote-User: " + id + "\r\nContent-Length: 0\r\n\r\n"
					io.WriteString(c, ok+ok) // the second one is unasked
				}
			}()
		}
	}()
	a := newApp(t)
	cfg := baseConfig(t, a.URL, Route{Path: "/", Upstream: a.URL, ForwardAuth: &ForwardAuth{
		URL: "http://" + ln.Addr().String() + "/verify", ResponseHeaders: []string{"Remote-User"}}})
	e := startEnv(t, a, cfg, Deps{})
	run := &hostileRun{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 15 {
				id := run.id()
				resp, body, err := e.get("https://app.test/echo?id=" + id)
				if err != nil {
					t.Error(err)
					return
				}
				var got appEcho
				json.Unmarshal([]byte(body), &got)
				if u := got.Header.Get("Remote-User"); resp.StatusCode == 200 && u != id {
					t.Errorf("request %s reached the app as user %q", id, u)
				}
			}
		})
	}
	wg.Wait()
}

// randomResponse composes an answer from random framing parts, seeded by
// the request's id so that a failure can be replayed: a status (1xx
// first, 204, 304 or a final one), a framing (exact, short, long,
// repeated or conflicting Content-Length, chunked with extensions and
// trailers, chunked beside Content-Length, HTTP/1.0, until close) and what
// follows (nothing, a forged answer, a CRLF, garbage, a forged answer in a
// later write). It reports whether to keep reading requests.
func (h *hostileUpstream) randomResponse(c net.Conn, id string) bool {
	var seed uint64
	for _, b := range []byte(id) {
		seed = seed*31 + uint64(b)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	pick := func(opts ...string) string { return opts[rng.IntN(len(opts))] }
	body := "id=" + id
	var b strings.Builder
	if rng.IntN(5) == 0 {
		b.WriteString(pick("HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"))
	}
	proto := pick("HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0")
	status := pick("200 OK", "200 OK", "404 Not Found", "500 Internal Server Error", "204 No Content", "304 Not Modified")
	fmt.Fprintf(&b, "%s %s\r\nX-Id: %s\r\n", proto, status, id)
	if rng.IntN(6) == 0 {
		b.WriteString("Connection: " + pick("close", "keep-alive") + "\r\n")
	}
	keep := true
	switch pick("exact", "exact", "short", "long", "dup", "conflict", "chunked", "chunked-trailer", "te-cl", "until-close") {
	case "exact":
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	case "short": // announces more than it sends, then closes
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body)+1+rng.IntN(100), body)
		keep = false
	case "long": // sends more than it announces
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body+hostileForged(id)[:1+rng.IntN(20)])
	case "dup":
		fmt.Fprintf(&b, "Content-Length: %d\r\nContent-Length: %d\r\n\r\n%s", len(body), len(body), body)
	case "conflict":
		fmt.Fprintf(&b, "Content-Length: %d\r\nContent-Length: %d\r\n\r\n%s", len(body), len(body)+5, body+"12345")
	case "chunked":
		fmt.Fprintf(&b, "Transfer-Encoding: chunked\r\n\r\n%x;ext=%d\r\n%s\r\n0\r\n\r\n", len(body), rng.IntN(9), body)
	case "chunked-trailer":
		fmt.Fprintf(&b, "Transfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n%s0\r\nX-T: %s\r\n\r\n", hostileChunked(body), id)
	case "te-cl":
		fmt.Fprintf(&b, "Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n%s0\r\n\r\n", rng.IntN(20), hostileChunked(body))
	case "until-close":
		b.WriteString("\r\n" + body)
		keep = false
	}
	switch pick("none", "none", "none", "forged", "crlf", "garbage", "late") {
	case "forged":
		b.WriteString(hostileForged(id))
	case "crlf":
		b.WriteString("\r\n")
	case "garbage":
		b.WriteString("\x00\xffHTTP/9 " + id)
	case "late":
		if h.noLate {
			b.WriteString(hostileForged(id))
			break
		}
		io.WriteString(c, b.String())
		b.Reset()
		time.Sleep(time.Millisecond)
		b.WriteString(hostileForged(id))
	}
	io.WriteString(c, b.String())
	select {
	case h.wrote <- struct{}{}:
	default:
	}
	return keep
}
