package statuspage

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// view is what page.html renders.
type view struct {
	Status   any
	Bans     BanView
	Day      BarChart
	Week     BarChart
	Score    LineChart
	Findings []Finding
	VPN      *VPNView
	Refresh  int // seconds
	JS, CSS  string
	Icon     string
}

func newView(d *Data, refresh time.Duration, js, css string) view {
	return view{Status: d.Status, Bans: d.Bans, Day: barChart(d.Bans.Day, "15:00"), Week: barChart(d.Bans.Week, "Mon 02"),
		Score: lineChart(Thin(d.Audit.Points)), Findings: d.Audit.Findings, VPN: d.VPN,
		Refresh: int(refresh / time.Second), JS: js, CSS: css}
}

// funcs format for people; times are absolute (UTC), so the page reads
// the same until its data changes and a refresh costs a 304.
var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "none"
		}
		return t.UTC().Format(time.DateOnly)
	},
	"lower": strings.ToLower,
	"join":  strings.Join,
	"count": func(m map[string]int, k string) int { return m[k] },
	"signed": func(p *int) string {
		if p == nil {
			return ""
		}
		return fmt.Sprintf("%+d", *p)
	},
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
}
