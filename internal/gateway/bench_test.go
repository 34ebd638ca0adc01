package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/schema"
)

// The per-request costs of the checks, cheapest first (go test -bench .).

func BenchmarkRouteMatch(b *testing.B) {
	s := testSite("/", "/admin", "/api/v1/", "/static", "/assets/img/")
	b.ReportAllocs()
	for b.Loop() {
		s.route("/api/v1/users/42/profile")
	}
}

func BenchmarkClientIP(b *testing.B) {
	c := newClientIP([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "X-Forwarded-For")
	r := &http.Request{RemoteAddr: "10.0.0.1:5555", Header: http.Header{"X-Forwarded-For": {"203.0.113.7, 10.0.0.2"}}}
	b.ReportAllocs()
	for b.Loop() {
		c.resolve(r)
	}
}

func BenchmarkLimiterTake(b *testing.B) {
	l := newLimiter(1e9, 1e9, limiterCapacity)
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.take(addrs[i&4095], monoNow())
		i++
	}
}

func BenchmarkHoneypotCheck(b *testing.B) {
	rt := &snapshot{honeypots: DefaultHoneypots}
	b.ReportAllocs()
	for b.Loop() {
		rt.honeypot("/api/v1/users/42/profile")
	}
}

func BenchmarkAccessLogLine(b *testing.B) {
	l := &accessLog{kick: make(chan struct{}, 1)}
	r, _ := http.NewRequest("GET", "https://app.test/api/v1/users/42?x=1", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36")
	st := &reqState{req: r, host: "app.test", client: netip.MustParseAddr("203.0.113.7"), start: time.Now()}
	st.w.status, st.w.bytes = 200, 1234
	b.ReportAllocs()
	for b.Loop() {
		l.logRequest(st, time.Now())
		l.mu.Lock()
		l.buf = l.buf[:0]
		l.mu.Unlock()
	}
}

// BenchmarkProxy is a request end to end through a gateway with every
// policy on, over HTTP/1.1 and HTTP/2, client and upstream in the same
// process: for profiles of the two paths (-cpuprofile, -memprofile), not
// for figures (bench/gateway.sh is, against nginx and Caddy).
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok","service":"bench","items":[1,2,3,4,5,6,7,8]}`+"\n")
	}))
	defer up.Close()
	a := newApp(b)
	cfg := baseConfig(b, up.URL, Route{Path: "/", Upstream: up.URL, Allow: []string{"127.0.0.0/8"},
		Geo:       RouteGeo{Deny: []schema.Country{"KP"}},
		RateLimit: &RouteRateLimit{Rate: rate(1_000_000, time.Second), Burst: 1_000_000},
		Headers:   map[string]string{"Permissions-Policy": "camera=()"}})
	e := startEnv(b, a, cfg, Deps{Geo: fakeGeo{}})
	for _, h2 := range []bool{false, true} {
		name := "h1"
		if h2 {
			name = "h2"
		}
		b.Run(name, func(b *testing.B) {
			c := e.newClient(h2)
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Get("https://app.test/api")
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || (resp.ProtoMajor == 2) != h2 {
						b.Errorf("%d %s", resp.StatusCode, resp.Proto)
						return
					}
				}
			})
		})
	}
}
