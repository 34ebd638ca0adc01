package alert

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the alert layer's Prometheus series, registered on the
// registry the daemon passes in (one per instance, never the global one).
// Names follow moat_<layer>_<thing>_<unit>; docs/alerts.md lists them.
type metrics struct {
	events     *prometheus.CounterVec   // moat_alert_events_total{kind}
	suppressed *prometheus.CounterVec   // moat_alert_suppressed_total{reason}
	sent       *prometheus.CounterVec   // moat_alert_sent_total{notifier}
	failed     *prometheus.CounterVec   // moat_alert_failed_total{notifier}
	dropped    *prometheus.CounterVec   // moat_alert_dropped_total{notifier}
	retries    *prometheus.CounterVec   // moat_alert_retries_total{notifier}
	queued     *prometheus.GaugeVec     // moat_alert_queue_events{notifier}
	duration   *prometheus.HistogramVec // moat_alert_send_duration_seconds{notifier}
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help, label string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "moat", Subsystem: "alert", Name: name, Help: help}, []string{label})
	}
	m := &metrics{
		events:     counter("events_total", "Events handed to the dispatcher, by kind.", "kind"),
		suppressed: counter("suppressed_total", "Event deliveries a route held back, by reason (quiet_hours).", "reason"),
		sent:       counter("sent_total", "Events a notifier delivered.", "notifier"),
		failed:     counter("failed_total", "Events a notifier gave up on after its retries or a permanent refusal.", "notifier"),
		dropped:    counter("dropped_total", "Events a notifier dropped: its queue was full, or moat stopped first.", "notifier"),
		retries:    counter("retries_total", "Tries after the first, per notifier.", "notifier"),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "moat", Subsystem: "alert", Name: "queue_events",
			Help: "Events waiting in a notifier's queue."}, []string{"notifier"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "moat", Subsystem: "alert", Name: "send_duration_seconds",
			Help: "Time of one delivery try.", Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"notifier"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.events, m.suppressed, m.sent, m.failed, m.dropped, m.retries, m.queued, m.duration} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// forget removes a notifier's series once it is gone from the config.
func (m *metrics) forget(name string) {
	for _, v := range []*prometheus.CounterVec{m.sent, m.failed, m.dropped, m.retries} {
		v.DeleteLabelValues(name)
	}
	m.queued.DeleteLabelValues(name)
	m.duration.DeleteLabelValues(name)
}
