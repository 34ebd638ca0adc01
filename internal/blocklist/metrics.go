package blocklist

import "github.com/prometheus/client_golang/prometheus"

var (
	mEntries  = prometheus.NewDesc("moat_blocklist_entries", "Networks in a blocklist's loaded copy, by list.", []string{"list"}, nil)
	mLoaded   = prometheus.NewDesc("moat_blocklist_loaded", "1 when a list has a copy in force, by list.", []string{"list"}, nil)
	mFetches  = prometheus.NewDesc("moat_blocklist_fetches_total", "Copies of a list taken (changed: fetched or offered, parsed and loaded), unchanged (not_modified) and refused or failed (failed), by list.", []string{"list", "result"}, nil)
	mChanged  = prometheus.NewDesc("moat_blocklist_last_change_timestamp_seconds", "When a list's copy in force was fetched, Unix time.", []string{"list"}, nil)
	mRanges   = prometheus.NewDesc("moat_blocklist_ranges", "Address ranges the blocklist sets hold, all lists merged.", nil, nil)
	mCarved   = prometheus.NewDesc("moat_blocklist_carved_entries", "List entries overlapping networks never blocked (host, VPN, admin, guard.ignore).", nil, nil)
	mRefused  = prometheus.NewDesc("moat_blocklist_refused_total", "Updates of a list refused, nothing of them applied (the copy before stays), by list and reason: fetch, parse, too_large, empty.", []string{"list", "reason"}, nil)
	mLoadFail = prometheus.NewDesc("moat_blocklist_load_failing", "1 when the last load into the firewall failed (retried).", nil, nil)
)

// Describe implements prometheus.Collector.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mEntries, mLoaded, mFetches, mChanged, mRanges, mCarved, mLoadFail, mRefused} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: read at scrape time.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	st := m.Status()
	for _, l := range st.Lists {
		ch <- prometheus.MustNewConstMetric(mEntries, prometheus.GaugeValue, float64(l.Entries), l.Name)
		ch <- prometheus.MustNewConstMetric(mLoaded, prometheus.GaugeValue, b2f(l.Loaded), l.Name)
		ch <- prometheus.MustNewConstMetric(mFetches, prometheus.CounterValue, float64(l.Changes), l.Name, "changed")
		ch <- prometheus.MustNewConstMetric(mFetches, prometheus.CounterValue, float64(l.NotModified), l.Name, "not_modified")
		ch <- prometheus.MustNewConstMetric(mFetches, prometheus.CounterValue, float64(l.Failures), l.Name, "failed")
		for _, r := range RefusalReasons {
			ch <- prometheus.MustNewConstMetric(mRefused, prometheus.CounterValue, float64(l.Refused[r]), l.Name, r)
		}
		if !l.LastChange.IsZero() {
			ch <- prometheus.MustNewConstMetric(mChanged, prometheus.GaugeValue, float64(l.LastChange.Unix()), l.Name)
		}
	}
	ch <- prometheus.MustNewConstMetric(mRanges, prometheus.GaugeValue, float64(st.Ranges))
	ch <- prometheus.MustNewConstMetric(mCarved, prometheus.GaugeValue, float64(st.CarvedTotal))
	ch <- prometheus.MustNewConstMetric(mLoadFail, prometheus.GaugeValue, b2f(st.LoadError != ""))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
