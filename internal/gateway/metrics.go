package gateway

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Denial reasons, as metric label values and access log fields.
const (
	reasonBan       = "ban"
	reasonAllowlist = "allowlist"
	reasonGeo       = "geo"
	reasonRateLimit = "ratelimit"
	reasonAuth      = "auth"
	reasonHoneypot  = "honeypot"
	reasonAmbiguous = "ambiguous_path"
	reasonMethod    = "method" // TRACE, CONNECT: never forwarded
	nReasons        = 8
)

var reasons = [nReasons]string{reasonBan, reasonAllowlist, reasonGeo, reasonRateLimit, reasonAuth, reasonHoneypot, reasonAmbiguous, reasonMethod}

func reasonIndex(r string) int {
	for i, x := range reasons {
		if x == r {
			return i
		}
	}
	return -1
}

// Drop reasons for connections and requests that never reach a site.
const (
	dropUnknownHost = "unknown_host"
	dropUnknownSNI  = "unknown_sni"
	dropNotTLS      = "not_tls"
	dropBadHello    = "bad_hello"   // a malformed or oversized ClientHello
	dropBadRequest  = "bad_request" // a request head net/http would answer with an error
)

// metrics are the gateway's Prometheus series, registered once per Gateway
// and kept across reloads; routes resolve their children at build so a
// request touches no label maps.
type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	denials   *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	tlsErrors prometheus.Counter
	acme      *prometheus.CounterVec
	reloads   *prometheus.CounterVec
	logLost   prometheus.Counter
	failures  *prometheus.CounterVec

	mu     sync.Mutex
	routes map[[2]string]*routeMetrics
}

type routeMetrics struct {
	codes  [6]prometheus.Counter // index 0: dropped (no answer); 1-5: status class
	dur    prometheus.Observer
	denied [nReasons]prometheus.Counter
}

// siteMetrics are a site's requests that no route took (missing paths,
// honeypots, ambiguous paths): the route label is empty.
type siteMetrics = routeMetrics

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_gateway_requests_total",
			Help: "Requests answered, by site, route and status class (dropped: closed without an answer).",
		}, []string{"site", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "moat_gateway_request_duration_seconds",
			Help:    "Time from request headers read to the answer's end, by site and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"site", "route"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_gateway_denials_total",
			Help: "Requests refused by a policy, by site, route and reason.",
		}, []string{"site", "route", "reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_gateway_dropped_total",
			Help: "Connections and requests closed without an answer before reaching a site, by reason.",
		}, []string{"reason"}),
		tlsErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "moat_gateway_tls_handshake_errors_total",
			Help: "TLS handshakes that failed (scanners, unknown names, broken clients).",
		}),
		acme: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_gateway_acme_events_total",
			Help: "Certificate management events (cert_obtained, cert_failed, …).",
		}, []string{"event"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_gateway_reloads_total",
			Help: "Config reloads, by result.",
		}, []string{"result"}),
		logLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "moat_gateway_access_log_dropped_total",
			Help: "Access log lines dropped because the log could not keep up.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_gateway_failures_total",
			Help: "Failures reported to the guard, by kind.",
		}, []string{"kind"}),
		routes: map[[2]string]*routeMetrics{},
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.denials, m.dropped, m.tlsErrors, m.acme, m.reloads, m.logLost, m.failures)
	}
	return m
}

func (m *metrics) site(host string) *siteMetrics { return m.route(host, "") }

func (m *metrics) route(host, path string) *routeMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{host, path}
	if rm := m.routes[k]; rm != nil {
		return rm
	}
	rm := &routeMetrics{dur: m.duration.WithLabelValues(host, path)}
	rm.codes[0] = m.requests.WithLabelValues(host, path, "dropped")
	for i, c := range []string{"1xx", "2xx", "3xx", "4xx", "5xx"} {
		rm.codes[i+1] = m.requests.WithLabelValues(host, path, c)
	}
	for i, r := range reasons {
		rm.denied[i] = m.denials.WithLabelValues(host, path, r)
	}
	m.routes[k] = rm
	return rm
}

// retain forgets the series of sites and routes rt no longer has.
func (m *metrics) retain(rt *snapshot) {
	keep := map[[2]string]bool{}
	for _, s := range rt.sites {
		keep[[2]string{s.host, ""}] = true
		for _, r := range s.routes {
			keep[[2]string{s.host, r.path}] = true
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.routes {
		if keep[k] {
			continue
		}
		delete(m.routes, k)
		l := prometheus.Labels{"site": k[0], "route": k[1]}
		m.requests.DeletePartialMatch(l)
		m.duration.DeletePartialMatch(l)
		m.denials.DeletePartialMatch(l)
	}
}

func (rm *routeMetrics) count(status int) {
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	rm.codes[c].Inc()
}

func (rm *routeMetrics) deny(reason string) {
	if i := reasonIndex(reason); i >= 0 {
		rm.denied[i].Inc()
	}
}
