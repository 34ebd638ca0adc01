package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/firewall"
)

// metrics exports, on the daemon's own registry, what the layers count
// for themselves: the guard pipelines' and jails' counters, the ban
// store's size, the kernel's drop counters and the monitors' findings are
// read at scrape time (a collector, nothing mirrored); bans and unbans
// are counted from the enforcer's events. docs/metrics.md lists them all.
type metrics struct {
	d      *Daemon
	bans   *prometheus.CounterVec
	lifted *prometheus.CounterVec
	fw     fwCache
	start  time.Time
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	mLines          = desc("moat_guard_lines_total", "Log lines read, by jail.", "jail")
	mMatched        = desc("moat_guard_failures_matched_total", "Failures with a source address the filter matched, by jail.", "jail")
	mUnattributable = desc("moat_guard_failures_unattributable_total", "Failures the filter matched without a source address, by jail.", "jail")
	mIgnored        = desc("moat_guard_failures_ignored_total", "Failures from ignored sources (VPN, admin, guard.ignore, the host's own), by jail.", "jail")
	mDecisions      = desc("moat_guard_decisions_total", "Bans a jail decided, by jail.", "jail")
	mTracked        = desc("moat_guard_tracked_sources", "Sources with failures in their window, by jail.", "jail")
	mActiveBans     = desc("moat_ban_active_bans", "Bans in force (addresses and networks).")
	mEventsDropped  = desc("moat_ban_events_dropped_total", "Ban events dropped before alerts saw them (a full buffer).")
	mFWLoaded       = desc("moat_firewall_loaded", "1 when table inet moat is loaded, 0 when not (or unreadable).")
	mFWPackets      = desc("moat_firewall_dropped_packets_total", "Packets table inet moat dropped, by reason, from the kernel's counters.", "reason")
	mFWBytes        = desc("moat_firewall_dropped_bytes_total", "Bytes table inet moat dropped, by reason, from the kernel's counters.", "reason")
	mFWSet          = desc("moat_firewall_set_elements", "Elements (addresses and ranges) of table inet moat's sets, by set.", "set")
	mAuditScore     = desc("moat_audit_score", "The last drift audit's score, 0 to 100.")
	mAuditFindings  = desc("moat_audit_findings", "The last drift audit's findings, by severity.", "severity")
	mAuditTime      = desc("moat_audit_last_run_timestamp_seconds", "When the last drift audit ran, Unix time.")
	mConditions     = desc("moat_monitor_conditions", "Conditions the monitors see now (disk, memory, reboot, cert), by kind.", "kind")
	mBuild          = desc("moat_build_info", "1, labelled with moat's version.", "version")
	mStart          = desc("moat_start_time_seconds", "When moat run started, Unix time.")
)

var allDescs = []*prometheus.Desc{mLines, mMatched, mUnattributable, mIgnored, mDecisions, mTracked,
	mActiveBans, mEventsDropped, mFWLoaded, mFWPackets, mFWBytes, mFWSet,
	mAuditScore, mAuditFindings, mAuditTime, mConditions, mBuild, mStart}

// newMetrics registers the daemon's metrics on its registry.
func newMetrics(d *Daemon) *metrics {
	m := &metrics{d: d, start: time.Now(),
		bans: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "moat_ban_bans_total",
			Help: "Bans made since moat started, by jail (manual for moat ban) and origin (auto, manual)."}, []string{"jail", "origin"}),
		lifted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "moat_ban_lifted_total",
			Help: "Bans ended since moat started, by how (expired, unbanned)."}, []string{"how"}),
	}
	m.fw.read = firewall.ReadStatus
	d.reg.MustRegister(m, m.bans, m.lifted)
	return m
}

// banEvent counts one enforcer event.
func (m *metrics) banEvent(ev ban.Event) {
	switch ev.Kind {
	case ban.EventBan:
		jail := ev.Ban.Jail
		if jail == "" {
			jail = string(ev.Ban.Origin)
		}
		m.bans.WithLabelValues(jail, string(ev.Ban.Origin)).Inc()
	case ban.EventExpire:
		m.lifted.WithLabelValues("expired").Inc()
	case ban.EventUnban:
		m.lifted.WithLabelValues("unbanned").Inc()
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	d := m.d
	counter := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	gauge(mBuild, 1, d.o.Version)
	gauge(mStart, float64(m.start.Unix()))

	d.mu.Lock()
	pipes := make([]*pipeline, 0, len(d.pipelines))
	for _, rp := range d.pipelines {
		pipes = append(pipes, rp.p)
	}
	d.mu.Unlock()
	for _, p := range pipes {
		st := p.eng.Stats()
		n := p.unit.Counters()
		counter(mLines, float64(n.Lines), p.name)
		counter(mMatched, float64(n.Failures), p.name)
		counter(mUnattributable, float64(n.Unattributable), p.name)
		counter(mIgnored, float64(st.Ignored), p.name)
		counter(mDecisions, float64(st.Decisions), p.name)
		gauge(mTracked, float64(st.Tracked), p.name)
	}

	if d.store != nil {
		gauge(mActiveBans, float64(d.store.Len()))
	}
	if d.enf != nil {
		counter(mEventsDropped, float64(d.enf.Dropped()))
	}

	if st, err := m.fw.get(); err == nil && st.Loaded {
		gauge(mFWLoaded, 1)
		for _, dr := range st.Drops {
			counter(mFWPackets, float64(dr.Packets), dr.Reason)
			counter(mFWBytes, float64(dr.Bytes), dr.Reason)
		}
		for _, s := range st.Sets {
			gauge(mFWSet, float64(s.Elements), s.Name)
		}
	} else {
		gauge(mFWLoaded, 0)
	}

	if d.mon == nil {
		return
	}
	if run := d.mon.lastRun(); run != nil {
		gauge(mAuditScore, float64(run.Score))
		gauge(mAuditTime, float64(run.Time.Unix()))
		for _, sev := range auditSeverities {
			gauge(mAuditFindings, float64(run.Findings[sev]), sev)
		}
	}
	kinds := map[string]int{}
	for _, c := range d.mon.conditions() {
		kinds[c.Kind]++
	}
	for _, k := range conditionKinds {
		gauge(mConditions, float64(kinds[k]), k)
	}
}

// auditSeverities and conditionKinds are exported even at zero, so a
// query sees 0 rather than no series.
var (
	auditSeverities = []string{"critical", "high", "medium", "low", "info"}
	conditionKinds  = []string{"cert", "disk", "memory", "reboot"}
)

// fwCache reads the firewall's status at most once per fwCacheTTL: it
// runs nft and counts set elements over netlink, more than a scrape
// should cost when several scrapers ask at once.
type fwCache struct {
	read func(ctx context.Context, root string) (*firewall.Status, error)

	mu  sync.Mutex
	at  time.Time
	st  *firewall.Status
	err error
}

const fwCacheTTL = 5 * time.Second

func (c *fwCache) get() (*firewall.Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < fwCacheTTL {
		return c.st, c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.st, c.err = c.read(ctx, "")
	c.at = time.Now()
	return c.st, c.err
}
