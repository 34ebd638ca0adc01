package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/schema"
)

func TestFastPathHeaders(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	resp, body := e.mustGet("https://app.test/echo?a=1&b=%20", "Connection", "X-Secret, keep-alive", "X-Secret", "1", "Proxy-Authorization", "Basic eA==", "Te", "trailers", "Keep-Alive", "timeout=5", "Accept", "a/b", "Accept", "c/d")
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	var got appEcho
	json.Unmarshal([]byte(body), &got)
	for _, h := range []string{"X-Secret", "Proxy-Authorization", "Te", "Keep-Alive", "Connection"} {
		if v := got.Header.Values(h); len(v) > 0 {
			t.Errorf("hop-by-hop %s reached the upstream: %q", h, v)
		}
	}
	if got.RawQuery != "a=1&b=%20" || got.Header.Get("Accept") != "a/b" || len(got.Header.Values("Accept")) != 2 {
		t.Errorf("query %q, Accept %q", got.RawQuery, got.Header.Values("Accept"))
	}
	// HEAD: headers, no body.
	resp, body, err := e.do(e.client, "HEAD", "https://app.test/", "")
	if err != nil || resp.StatusCode != 200 || body != "" || resp.ContentLength != int64(len("<h1>page /</h1>")) {
		t.Errorf("HEAD: %v %q %v %d", resp, body, err, resp.ContentLength)
	}
	// A query with ';' takes the other path and still works.
	resp, _ = e.mustGet("https://app.test/echo?a=1;b=2")
	if resp.StatusCode != 200 {
		t.Errorf("query with ';': %d", resp.StatusCode)
	}
}

func TestFastPathResponseHopHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Fine", "yes")
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, up.URL), Deps{})
	resp, body := e.mustGet("https://app.test/")
	if body != "ok" || resp.Header.Get("X-Internal") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-Fine") != "yes" {
		t.Errorf("%q %v", body, resp.Header)
	}
}

// TestFastPathStaleConnections: an upstream that closes idle connections
// behind the gateway's back costs no request.
func TestFastPathStaleConnections(t *testing.T) {
	var n atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.WriteString(w, "ok")
	}))
	up.Config.IdleTimeout = 50 * time.Millisecond
	up.Start()
	defer up.Close()
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, up.URL), Deps{})
	for i := range 20 {
		resp, _, err := e.get("https://app.test/")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d: %v %v", i, resp, err)
		}
		if i%3 == 0 {
			time.Sleep(80 * time.Millisecond) // the upstream drops the idle connection
		}
	}
	// An upstream that restarted: every pooled connection is dead at once.
	for range 8 {
		go e.get("https://app.test/")
	}
	time.Sleep(100 * time.Millisecond)
	up.CloseClientConnections()
	for i := range 5 {
		if resp, _, err := e.get("https://app.test/"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("after a restart, request %d: %v %v", i, resp, err)
		}
	}
}

func TestFastPathStreamsAndBreaks(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			<-release
			io.WriteString(w, "data: two\n\n")
		case "/broken":
			w.Header().Set("Content-Length", "1000")
			io.WriteString(w, "only a part")
			w.(http.Flusher).Flush()
			c, _, _ := http.NewResponseController(w).Hijack()
			c.Close()
		case "/slow":
			// Never answers in time: only the route timeout ends it.
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	defer up.Close()
	defer close(release)
	a := newApp(t)
	cfg := baseConfig(t, up.URL, Route{Path: "/", Upstream: up.URL}, Route{Path: "/slow", Upstream: up.URL, Timeout: schema.Duration(300 * time.Millisecond)})
	e := startEnv(t, a, cfg, Deps{})

	req, _ := http.NewRequest("GET", "https://app.test/events", nil)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "data: one\n" {
			t.Errorf("first event %q", line)
		}
	case <-time.After(liveness):
		t.Error("the first event did not arrive while the stream stays open")
	}
	resp.Body.Close()

	resp, err = e.client.Get("https://app.test/broken")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a body the upstream broke off arrived as if complete")
	}

	resp, _ = e.mustGet("https://app.test/slow")
	if resp.StatusCode != 502 {
		t.Errorf("route timeout: %d, want 502", resp.StatusCode)
	}
}

// TestFastPathClientGoneClosesUpstream: a client hanging up mid-stream
// ends the upstream request too.
func TestFastPathClientGoneClosesUpstream(t *testing.T) {
	ended := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				close(ended)
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				close(ended)
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	defer up.Close()
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, up.URL), Deps{})
	c, err := net.Dial("tcp", e.g.HTTPSAddr())
	if err != nil {
		t.Fatal(err)
	}
	tc := tlsClient(t, c)
	io.WriteString(tc, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
	br := bufio.NewReader(tc)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("%q", line)
	}
	tc.Close()
	select {
	case <-ended:
	case <-time.After(3 * time.Second):
		t.Error("the upstream request outlived the client")
	}
}

// TestHTTP2TakesFastPath: body-less HTTP/2 requests go through the fast
// path (one pooled upstream connection serves them all, where the
// transport would open one per request), and HTTP/2 requests with a body
// still reach the application whole.
func TestHTTP2TakesFastPath(t *testing.T) {
	a, conns := newCountingApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	c := e.newClient(true)
	for i := range 20 {
		method := "GET"
		if i%4 == 3 {
			method = "HEAD"
		}
		resp, _, err := e.do(c, method, "https://app.test/", "")
		if err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Fatalf("%s %d: %v %v", method, i, resp, err)
		}
	}
	if n := conns.Load(); n > 2 {
		t.Errorf("20 body-less HTTP/2 requests took %d upstream connections: not the fast path", n)
	}
	// A body of unknown length (no content-length, DATA frames follow).
	req, _ := http.NewRequest("GET", "https://app.test/echo", io.MultiReader(strings.NewReader("pay"), strings.NewReader("load")))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got appEcho
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || got.Body != "payload" {
		t.Errorf("HTTP/2 GET with a body: proto %d, the app saw body %q", resp.ProtoMajor, got.Body)
	}
	resp, body, err := e.do(c, "POST", "https://app.test/echo", "posted")
	json.Unmarshal([]byte(body), &got)
	if err != nil || got.Body != "posted" {
		t.Errorf("HTTP/2 POST: %v %q", err, got.Body)
	}
	_ = resp
}

// TestFastPathOff: with fast_path: false every request goes through the
// transport, one upstream connection each.
func TestFastPathOff(t *testing.T) {
	a, conns := newCountingApp(t)
	cfg := baseConfig(t, a.URL)
	cfg.FastPath = ptr(false)
	e := startEnv(t, a, cfg, Deps{})
	for range 5 {
		if resp, _ := e.mustGet("https://app.test/"); resp.StatusCode != 200 {
			t.Fatal(resp.StatusCode)
		}
	}
	if n := conns.Load(); n != 5 {
		t.Errorf("5 requests took %d upstream connections, want 5", n)
	}
}

// newCountingApp is newApp counting the connections it accepts.
func newCountingApp(t *testing.T) (*app, *atomic.Int64) {
	conns := new(atomic.Int64)
	a := &app{}
	a.Server = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	a.Start()
	t.Cleanup(a.Close)
	return a, conns
}
