package gateway

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/schema"
)

func TestReloadUnderLoadLosesNothing(t *testing.T) {
	a := newApp(t)
	cfgA := baseConfig(t, a.URL, Route{Path: "/", Upstream: a.URL, Headers: map[string]string{"X-Config": "a"}})
	e := startEnv(t, a, cfgA, Deps{})
	cfgB := cfgA
	cfgB.Sites = []Site{cfgA.Sites[0]}
	cfgB.Sites[0].Routes = []Route{{Path: "/", Upstream: a.URL, Headers: map[string]string{"X-Config": "b"}}, {Path: "/extra", Upstream: a.URL}}
	cfgC := cfgB // a server-level change: a new http.Server generation
	cfgC.Limits.HeaderTimeout = schema.Duration(7 * time.Second)
	cfgC.Limits.IdleTimeout = schema.Duration(50 * time.Second)

	const clients = 8
	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var seen sync.Map
	var wg sync.WaitGroup
	for i := range clients {
		c := e.newClient(i%2 == 1) // keep-alive connections, HTTP/1.1 and HTTP/2
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				path := "/"
				if i == 0 {
					path = "/slow" // in flight across reloads
				}
				resp, _, err := e.do(c, "GET", "https://app.test"+path, "")
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					t.Errorf("client %d: %v %v", i, resp, err)
					continue
				}
				ok.Add(1)
				seen.Store(resp.Header.Get("X-Config"), true)
			}
		})
	}
	cfgs := []Config{cfgB, cfgA, cfgC, cfgB, cfgA, cfgC}
	for _, c := range cfgs {
		time.Sleep(400 * time.Millisecond)
		if err := e.g.Reload(c); err != nil {
			t.Fatalf("reload: %v", err)
		}
	}
	time.Sleep(400 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d requests, %d failed, across %d reloads", ok.Load(), failed.Load(), len(cfgs))
	if failed.Load() != 0 {
		t.Errorf("%d requests failed", failed.Load())
	}
	for _, v := range []string{"a", "b"} {
		if _, ok := seen.Load(v); !ok {
			t.Errorf("config %s never served", v)
		}
	}
}

func TestReloadRefusesBadConfigAndKeepsServing(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL)
	e := startEnv(t, a, cfg, Deps{})
	bad := []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"invalid", func(c *Config) { c.Sites[0].Routes[0].Deny = "forbid" }, "never answers 403"},
		{"missing htpasswd", func(c *Config) {
			c.Sites[0].Routes[0].BasicAuth = &BasicAuth{Htpasswd: "/nonexistent/htpasswd"}
		}, "htpasswd"},
		{"broken certificate", func(c *Config) { c.Sites[0].Key = c.Sites[0].Certificate }, "certificate"},
		{"port taken", func(c *Config) {
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			t.Cleanup(func() { ln.Close() })
			c.HTTPS = ln.Addr().String()
		}, "listener"},
		{"geo without database", func(c *Config) { c.Sites[0].Routes[0].Geo.Deny = []schema.Country{"KP"} }, "country database"},
	}
	for _, b := range bad {
		c := cfg
		c.Sites = []Site{cfg.Sites[0]}
		c.Sites[0].Routes = []Route{cfg.Sites[0].Routes[0]}
		b.mod(&c)
		err := e.g.Reload(c)
		if err == nil || !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), "previous config keeps serving") {
			t.Errorf("%s: %v", b.name, err)
		}
		if resp, _ := e.mustGet("https://app.test/"); resp.StatusCode != 200 {
			t.Fatalf("%s: the old config stopped serving: %d", b.name, resp.StatusCode)
		}
	}
}

func TestReloadAddsSiteAndMovesListener(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL)
	e := startEnv(t, a, cfg, Deps{})
	if out, _ := e.rawTLS("other-site.test", "GET / HTTP/1.1\r\nHost: other-site.test\r\n\r\n"); out != "" {
		t.Fatal("other-site.test answered before it was configured")
	}
	c := cfg
	c.Sites = append([]Site{}, cfg.Sites...)
	c.Sites = append(c.Sites, Site{Host: "other-site.test", Certificate: cfg.Sites[0].Certificate, Key: cfg.Sites[0].Key, Routes: []Route{{Upstream: a.URL}}})
	oldHTTP := e.g.HTTPAddr()
	if err := e.g.Reload(c); err != nil {
		t.Fatal(err)
	}
	if resp, _ := e.mustGet("https://other-site.test/"); resp.StatusCode != 200 {
		t.Errorf("new site: %d", resp.StatusCode)
	}
	// New listen addresses: bound before the swap, the old ones released.
	c.HTTP = "127.0.0.2:0" // loopback too, on Linux
	c.HTTPS = "127.0.0.2:0"
	if err := e.g.Reload(c); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.g.HTTPSAddr(), "127.0.0.2:") || !strings.HasPrefix(e.g.HTTPAddr(), "127.0.0.2:") {
		t.Fatalf("listening on %s and %s", e.g.HTTPAddr(), e.g.HTTPSAddr())
	}
	if resp, _ := e.mustGet("https://app.test/"); resp.StatusCode != 200 {
		t.Errorf("after moving the listener: %d", resp.StatusCode)
	}
	if resp, _ := e.mustGet("http://app.test/"); resp.StatusCode != 308 {
		t.Errorf("port 80 after moving: %d", resp.StatusCode)
	}
	if c, err := net.Dial("tcp", oldHTTP); err == nil {
		c.Close()
		t.Errorf("the old listener %s still accepts", oldHTTP)
	}
}

func TestReloadAccessLogMoves(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL)
	dir := t.TempDir()
	cfg.AccessLog = filepath.Join(dir, "one.log")
	e := startEnv(t, a, cfg, Deps{})
	e.mustGet("https://app.test/one")
	c := cfg
	c.AccessLog = filepath.Join(dir, "two.log")
	if err := e.g.Reload(c); err != nil {
		t.Fatal(err)
	}
	e.mustGet("https://app.test/two")
	e.stop()
	time.Sleep(10 * time.Millisecond)
	two, _ := os.ReadFile(c.AccessLog)
	if !strings.Contains(string(two), `"path":"/two"`) || strings.Contains(string(two), `"path":"/one"`) {
		t.Errorf("two.log: %s", two)
	}
}
