package fleet

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the fleet's Prometheus metrics; a nil *Metrics counts
// nothing.
type Metrics struct {
	Published     prometheus.Counter
	PublishFailed prometheus.Counter
	Received      prometheus.Counter
	Refused       prometheus.Counter
	Outbox        prometheus.Gauge
	Lag           prometheus.Gauge
	Quorum        prometheus.Gauge
	Peers         prometheus.Gauge
	// Unverified counts decisions refused by verification, by reason
	// (VerifyReasons).
	Unverified        *prometheus.CounterVec
	OutboxDropped     prometheus.Counter
	OutboxWriteErrors prometheus.Counter
	OutboxDurable     prometheus.Gauge
}

// NewMetrics registers the fleet's metrics with r.
func NewMetrics(r prometheus.Registerer) *Metrics {
	m := &Metrics{
		Published: prometheus.NewCounter(prometheus.CounterOpts{Name: "moat_fleet_decisions_published_total",
			Help: "This host's decisions the fleet's stream stored."}),
		PublishFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "moat_fleet_publish_failures_total",
			Help: "Publish rounds that left decisions in the outbox for a retry (no quorum, no connection)."}),
		Received: prometheus.NewCounter(prometheus.CounterOpts{Name: "moat_fleet_decisions_received_total",
			Help: "Other hosts' decisions applied here."}),
		Refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "moat_fleet_decisions_refused_total",
			Help: "Other hosts' decisions refused here: malformed, untrusted origin, or naming a never-ban address."}),
		Outbox: prometheus.NewGauge(prometheus.GaugeOpts{Name: "moat_fleet_outbox_decisions",
			Help: "This host's decisions waiting for the stream."}),
		Lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "moat_fleet_consumer_lag_decisions",
			Help: "Decisions in the stream this host has not applied yet."}),
		Quorum: prometheus.NewGauge(prometheus.GaugeOpts{Name: "moat_fleet_stream_quorum",
			Help: "1 when the decisions stream has a leader and a quorum of current replicas, else 0."}),
		Peers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "moat_fleet_stream_replicas_current",
			Help: "Replicas of the decisions stream that are current, the leader included."}),
		Unverified: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "moat_fleet_decisions_unverified_total",
			Help: "Other hosts' decisions refused by verification: unsigned, bad_signature, unknown_origin, signer_mismatch, expired, stale (a replay)."}, []string{"reason"}),
		OutboxDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "moat_fleet_outbox_dropped_total",
			Help: "Decisions dropped from a full outbox (bans first: the ban store republishes them)."}),
		OutboxWriteErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "moat_fleet_outbox_write_errors_total",
			Help: "Failed writes of the outbox journal in the state dir (full disk, unwritable dir)."}),
		OutboxDurable: prometheus.NewGauge(prometheus.GaugeOpts{Name: "moat_fleet_outbox_durable",
			Help: "1 when the outbox journal is written to the state dir, 0 when the outbox is in memory only."}),
	}
	for _, r := range VerifyReasons {
		m.Unverified.WithLabelValues(r)
	}
	m.OutboxDurable.Set(1)
	if r != nil {
		r.MustRegister(m.Published, m.PublishFailed, m.Received, m.Refused, m.Outbox, m.Lag, m.Quorum, m.Peers,
			m.Unverified, m.OutboxDropped, m.OutboxWriteErrors, m.OutboxDurable)
	}
	return m
}

func (m *Metrics) unverified(reason string) {
	if m != nil && reason != "" {
		m.Unverified.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) outboxDropped() {
	if m != nil {
		m.OutboxDropped.Inc()
	}
}

func (m *Metrics) outboxWriteError() {
	if m != nil {
		m.OutboxWriteErrors.Inc()
	}
}

func (m *Metrics) setOutboxDurable(ok bool) {
	if m != nil {
		v := 0.0
		if ok {
			v = 1
		}
		m.OutboxDurable.Set(v)
	}
}

func (m *Metrics) published(n int) {
	if m != nil {
		m.Published.Add(float64(n))
	}
}

func (m *Metrics) publishFailed() {
	if m != nil {
		m.PublishFailed.Inc()
	}
}

func (m *Metrics) received(n int) {
	if m != nil {
		m.Received.Add(float64(n))
	}
}

func (m *Metrics) refused() {
	if m != nil {
		m.Refused.Inc()
	}
}

func (m *Metrics) setOutbox(n int) {
	if m != nil {
		m.Outbox.Set(float64(n))
	}
}

func (m *Metrics) setStatus(s Status) {
	if m == nil {
		return
	}
	m.Lag.Set(float64(s.Lag))
	q := 0.0
	if s.Stream != nil && s.Stream.Quorum {
		q = 1
	}
	m.Quorum.Set(q)
	if s.Stream != nil {
		m.Peers.Set(float64(s.Stream.Current))
	}
}
