package alert

import (
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/schema"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// fakeClock is the injected clock of digest and quiet-hours tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// request is what a test receiver saw.
type request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	At           time.Time
}

// receiver is a real HTTP server recording requests and answering with
// answer (200 "ok" when nil).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []request
	got    chan request
	answer func(n int, w http.ResponseWriter, r *http.Request) // n counts from 1
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{got: make(chan request, 1000), answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := request{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body, At: time.Now()}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, req)
		n := len(rc.reqs)
		rc.mu.Unlock()
		rc.got <- req
		if rc.answer != nil {
			rc.answer(n, w, r)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

// next waits for the next request.
func (rc *receiver) next(t *testing.T) request {
	t.Helper()
	select {
	case r := <-rc.got:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no request reached the receiver within 5s")
		return request{}
	}
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// fastRetry keeps retry tests short.
var fastRetry = Retry{Attempts: 4, Base: 10 * time.Millisecond, Max: 40 * time.Millisecond, MaxWait: 3 * time.Second}

func minutes(n int) schema.Duration { return schema.Duration(time.Duration(n) * time.Minute) }

// stamped is a fixed, fully stamped event, as the Dispatcher would hand it
// to a sender.
func stamped(e Event) Event {
	e.ID = "5f2b7c1e9a3d4b6c8e0f1a2b3c4d5e6f"
	e.Host = "vps1"
	if e.Time.IsZero() {
		e.Time = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	}
	return e.normalize()
}
