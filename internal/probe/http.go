package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// HTTPInfo is what an HTTP(S) server tells a stranger.
type HTTPInfo struct {
	// Root is GET / for the first name (or the bare address).
	Root HTTPAnswer `json:"root"`
	// UnknownHost is GET / with Host: UnknownName.
	UnknownHost HTTPAnswer `json:"unknown_host"`
	// Fingerprint are the headers that name the software.
	Fingerprint map[string]string `json:"fingerprint,omitempty"`
	// Missing is a path that exists nowhere, the baseline a denied path
	// must look like.
	Missing HTTPAnswer `json:"missing"`
	// Paths are the admin paths and the declared protected routes,
	// each compared with Missing.
	Paths []PathAnswer `json:"paths"`
}

// HTTPAnswer is one request's outcome.
type HTTPAnswer struct {
	Host    string   `json:"host"`
	Path    string   `json:"path"`
	Status  int      `json:"status"`          // 0: no HTTP answer
	Error   string   `json:"error,omitempty"` // e.g. the connection was closed
	Headers []string `json:"headers,omitempty"`
	BodyLen int64    `json:"body_len"`
	Title   string   `json:"title,omitempty"`
	// Median is the median of the samples' times to the first byte: a
	// statistic, reported, never a verdict on its own.
	Median time.Duration `json:"median_ns"`
}

// PathAnswer is a path's answer compared with the missing path's.
type PathAnswer struct {
	HTTPAnswer
	// Differences lists how the answer differs from a missing path's:
	// status, header names, body length. Empty: indistinguishable.
	Differences []string `json:"differences,omitempty"`
	// TimingDelta is Median minus the missing path's median.
	TimingDelta time.Duration `json:"timing_delta_ns"`
	// Route is set when the path is a declared route's.
	Route string `json:"route,omitempty"`
}

// Distinguishable reports whether a stranger can tell the path from a
// missing one.
func (a PathAnswer) Distinguishable() bool { return len(a.Differences) > 0 }

// AdminPaths are requested on every HTTP(S) port.
var AdminPaths = []string{"/admin", "/wp-admin/", "/phpmyadmin/", "/.git/config", "/.env", "/actuator"}

// timingSamples per path: enough for a median, few enough to stay polite.
const timingSamples = 3

// headersThatVary are left out of the header comparison: they differ
// between any two answers.
var headersThatVary = map[string]bool{"Date": true, "Content-Length": true, "Etag": true, "Last-Modified": true, "Set-Cookie": true, "Age": true, "X-Request-Id": true}

func (p *Prober) httpClient(ap netip.AddrPort) *http.Client {
	tr := &http.Transport{
		// Every request goes to ap, whatever the URL's host says: the
		// host only sets Host and SNI. No DNS, no proxy.
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return p.dial()(ctx, "tcp", ap.String())
		},
		Proxy:                  nil,
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives:      true,
		ResponseHeaderTimeout:  p.ioTimeout(),
		TLSHandshakeTimeout:    p.ioTimeout(),
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       2 * p.ioTimeout(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get requests path with Host host n times and keeps the last answer and
// the median time to the first byte.
func (p *Prober) get(ctx context.Context, c *http.Client, scheme string, ap netip.AddrPort, host, path string, n int) (HTTPAnswer, []byte) {
	a := HTTPAnswer{Host: host, Path: path}
	var times []time.Duration
	var body []byte
	for i := 0; i < max(n, 1); i++ {
		u := scheme + "://" + urlHost(scheme, host, ap) + path
		req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
		if err != nil {
			a.Error = err.Error()
			return a, nil
		}
		req.Header.Set("User-Agent", "moat-probe")
		t0 := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			a.Status, a.Error = 0, httpErr(err)
			times = append(times, time.Since(t0))
			continue
		}
		times = append(times, time.Since(t0))
		a.Status, a.Error = resp.StatusCode, ""
		a.Headers = a.Headers[:0]
		for k := range resp.Header {
			if !headersThatVary[k] {
				a.Headers = append(a.Headers, k)
			}
		}
		sort.Strings(a.Headers)
		var buf bytes.Buffer
		nr, _ := io.Copy(&buf, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		a.BodyLen = nr
		body = buf.Bytes()
		if len(body) > maxRead {
			body = body[:maxRead]
		}
		a.Title = htmlTitle(body)
		if i == 0 && (resp.StatusCode == 429) {
			break
		}
	}
	slices.Sort(times)
	if len(times) > 0 {
		a.Median = times[len(times)/2]
	}
	return a, body
}

// urlHost is the URL's host, which sets Host (and SNI): the port only
// when it is not the scheme's own, as a browser sends it.
func urlHost(scheme, host string, ap netip.AddrPort) string {
	if host == "" {
		host = ap.Addr().String()
		if ap.Addr().Is6() {
			host = "[" + host + "]"
		}
	}
	if (scheme == "http" && ap.Port() == 80) || (scheme == "https" && ap.Port() == 443) {
		return host
	}
	return fmt.Sprintf("%s:%d", host, ap.Port())
}

func httpErr(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		err = ue.Unwrap()
	}
	s := err.Error()
	switch {
	case errors.Is(err, io.EOF), strings.Contains(s, "EOF"), strings.Contains(s, "connection reset"):
		return "connection closed without an answer"
	case strings.Contains(s, "timeout"), strings.Contains(s, "deadline"):
		return "no answer in time"
	}
	return Clean([]byte(s), 200)
}

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.{0,200}?)</title>`)

func htmlTitle(b []byte) string {
	m := titleRE.FindSubmatch(b)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(Clean(m[1], 100))
}

// Route is a declared gateway route the probe checks from outside.
type Route struct {
	Site string `json:"site"`
	Path string `json:"path"`
	// Restricted: an allowlist, auth or geo rule keeps strangers out, so
	// a stranger's answer must look like a missing path's.
	Restricted bool `json:"restricted"`
	// Deny is the route's deny mode ("notfound", "drop").
	Deny string `json:"deny,omitempty"`
}

// probeHTTP returns nil when the port does not answer HTTP.
func (p *Prober) probeHTTP(ctx context.Context, ap netip.AddrPort, overTLS bool) *HTTPInfo {
	scheme := "http"
	if overTLS {
		scheme = "https"
	}
	c := p.httpClient(ap)
	host := ""
	if len(p.Names) > 0 {
		host = p.Names[0]
	}
	root, _ := p.get(ctx, c, scheme, ap, host, "/", 1)
	if root.Status == 0 {
		return nil
	}
	info := &HTTPInfo{Root: root, Fingerprint: map[string]string{}}
	info.UnknownHost, _ = p.get(ctx, c, scheme, ap, UnknownName, "/", 1)
	info.Missing, _ = p.get(ctx, c, scheme, ap, host, "/moat-probe-missing-"+randomHex(4), timingSamples)
	// Fingerprint headers, from the root answer.
	if h := p.headOf(ctx, c, scheme, ap, host); h != nil {
		for _, k := range []string{"Server", "X-Powered-By", "Via", "X-Aspnet-Version", "X-Generator", "X-Runtime"} {
			if v := h.Get(k); v != "" {
				info.Fingerprint[k] = Clean([]byte(v), 100)
			}
		}
	}
	type pathReq struct{ host, path, route string }
	var reqs []pathReq
	for _, pth := range AdminPaths {
		reqs = append(reqs, pathReq{host, pth, ""})
	}
	for _, r := range p.Routes {
		if !r.Restricted || r.Path == "" || r.Path == "/" {
			continue
		}
		if len(p.Names) > 0 && !slices.Contains(p.Names, r.Site) {
			continue
		}
		reqs = append(reqs, pathReq{r.Site, r.Path, r.Site + r.Path})
	}
	for _, r := range reqs {
		if ctx.Err() != nil {
			break
		}
		base := info.Missing
		if r.host != host {
			base, _ = p.get(ctx, c, scheme, ap, r.host, "/moat-probe-missing-"+randomHex(4), timingSamples)
		}
		a, _ := p.get(ctx, c, scheme, ap, r.host, r.path, timingSamples)
		pa := PathAnswer{HTTPAnswer: a, Route: r.route, TimingDelta: a.Median - base.Median}
		pa.Differences = compareAnswers(base, a)
		info.Paths = append(info.Paths, pa)
	}
	return info
}

func (p *Prober) headOf(ctx context.Context, c *http.Client, scheme string, ap netip.AddrPort, host string) http.Header {
	req, err := http.NewRequestWithContext(ctx, "GET", scheme+"://"+urlHost(scheme, host, ap)+"/", nil)
	if err != nil {
		return nil
	}
	req.Header.Set("User-Agent", "moat-probe")
	resp, err := c.Do(req)
	if err != nil {
		return nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.Header
}

// compareAnswers says how b differs from a missing path's answer a, as a
// stranger would see it.
func compareAnswers(a, b HTTPAnswer) []string {
	var d []string
	switch {
	case a.Status != b.Status:
		d = append(d, fmt.Sprintf("status %s where a missing path gets %s", statusText(b), statusText(a)))
	}
	if a.Status != 0 && b.Status != 0 {
		if !slices.Equal(a.Headers, b.Headers) {
			d = append(d, fmt.Sprintf("headers %s where a missing path gets %s", strings.Join(b.Headers, ","), strings.Join(a.Headers, ",")))
		}
		if a.BodyLen != b.BodyLen {
			d = append(d, fmt.Sprintf("body %d bytes where a missing path gets %d", b.BodyLen, a.BodyLen))
		}
	}
	return d
}

func statusText(a HTTPAnswer) string {
	if a.Status == 0 {
		return "no answer (" + a.Error + ")"
	}
	return fmt.Sprint(a.Status)
}

// httpProduct names the software behind an HTTP port: the Server header,
// or what the API's own paths say (Docker, Elasticsearch, etcd).
func (p *Prober) httpProduct(ctx context.Context, ap netip.AddrPort, s *Service, overTLS bool) {
	scheme := "http"
	if overTLS {
		scheme = "https"
	}
	if sv := s.HTTP.Fingerprint["Server"]; sv != "" {
		prod, ver, _ := strings.Cut(sv, "/")
		s.Product = prod
		ver, _, _ = strings.Cut(ver, " ")
		s.Version = ver
	}
	c := p.httpClient(ap)
	// Docker Engine API and etcd answer /version with JSON.
	if a, body := p.get(ctx, c, scheme, ap, "", "/version", 1); a.Status == 200 {
		var v map[string]any
		if json.Unmarshal(body, &v) == nil {
			if api, ok := v["ApiVersion"].(string); ok {
				s.Name, s.Product = "docker", "Docker Engine API"
				s.Version, _ = v["Version"].(string)
				s.Datastore = &DatastoreInfo{Unauthenticated: true, Evidence: "GET /version → Docker API " + Clean([]byte(api), 20) + " (whoever reaches it is root on the host)"}
				return
			}
			if ev, ok := v["etcdserver"].(string); ok {
				s.Name, s.Product, s.Version = "etcd", "etcd", Clean([]byte(ev), 20)
				s.Datastore = &DatastoreInfo{Unauthenticated: true, Evidence: "GET /version → etcd " + s.Version + " without a client certificate"}
				return
			}
		}
	}
	if s.HTTP.Root.Status == 200 {
		_, body := p.get(ctx, c, scheme, ap, "", "/", 1)
		var v struct {
			ClusterName string `json:"cluster_name"`
			Tagline     string `json:"tagline"`
			Version     struct {
				Number       string `json:"number"`
				Distribution string `json:"distribution"`
			} `json:"version"`
		}
		if json.Unmarshal(body, &v) == nil && v.ClusterName != "" && v.Version.Number != "" {
			s.Name, s.Product, s.Version = "elasticsearch", "Elasticsearch", Clean([]byte(v.Version.Number), 20)
			if v.Version.Distribution == "opensearch" {
				s.Product = "OpenSearch"
			}
			s.Datastore = &DatastoreInfo{Unauthenticated: true, Evidence: "GET / → cluster " + Clean([]byte(v.ClusterName), 40) + " without authentication"}
		}
	}
}
