package daemon

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The Grafana dashboard in examples/ queries only metrics that
// docs/metrics.md lists: a renamed metric breaks this test, not a user's
// dashboard.
func TestGrafanaDashboardMetricsDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../examples/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("examples/grafana-dashboard.json: %v", err)
	}
	docs, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`((?:moat|go|process)_[a-z0-9_]+)`").FindAllStringSubmatch(string(docs), -1) {
		documented[m[1]] = true
	}
	var exprs []string
	walk(dash, func(key, s string) {
		switch key {
		case "expr", "definition":
			exprs = append(exprs, s)
		}
	})
	if len(exprs) < 20 {
		t.Fatalf("found %d queries in the dashboard: the walk is broken", len(exprs))
	}
	seen := map[string]bool{}
	for _, e := range exprs {
		names := metricNames(e)
		if len(names) == 0 {
			t.Errorf("query %q names no metric", e)
		}
		for _, n := range names {
			seen[n] = true
			base := n
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(n, suf); ok && documented[b] {
					base = b
				}
			}
			if !documented[base] {
				t.Errorf("the dashboard queries %s (in %q), which docs/metrics.md does not list", n, e)
			}
		}
	}
	// Every documented moat metric is on the dashboard.
	for n := range documented {
		if !strings.HasPrefix(n, "moat_") {
			continue
		}
		if !seen[n] && !seen[n+"_bucket"] {
			t.Errorf("docs/metrics.md lists %s, which the dashboard does not show", n)
		}
	}
	// Nothing leaves for another site: no links, no panel plugins.
	if strings.Contains(string(raw), "http://") || strings.Contains(string(raw), "https://") {
		t.Error("the dashboard links to another site")
	}
}

func walk(v any, fn func(key, s string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok {
				fn(k, s)
			}
			walk(x, fn)
		}
	case []any:
		for _, x := range v {
			walk(x, fn)
		}
	}
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promFunctions = regexp.MustCompile(`^\s*\(`)
	promKeywords  = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
		"and", "or", "unless", "inf", "nan", "e"}
)

// metricNames extracts the metric names a PromQL expression (or a
// Grafana label_values() query) selects: identifiers outside strings,
// label matchers, ranges and grouping clauses that are not functions,
// keywords or aggregation operators.
func metricNames(expr string) []string {
	e := promStrings.ReplaceAllString(expr, " ")
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRanges.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	// label_values(metric, label): the second argument is a label.
	e = regexp.MustCompile(`label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*[A-Za-z_]+\s*\)`).ReplaceAllString(e, " $1 ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		id := e[loc[0]:loc[1]]
		if loc[0] > 0 && (e[loc[0]-1] == '$' || e[loc[0]-1] == '.' || (e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9')) {
			continue // a Grafana variable, a number's exponent or fraction
		}
		if promFunctions.MatchString(e[loc[1]:]) || slices.Contains(promKeywords, strings.ToLower(id)) {
			continue
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (jail) (increase(moat_ban_bans_total{instance=~"$instance",jail!="x"}[1h]))`:                       "moat_ban_bans_total",
		`histogram_quantile(0.95, sum by (site, le) (rate(moat_gateway_request_duration_seconds_bucket[5m])))`:     "moat_gateway_request_duration_seconds_bucket",
		`moat_start_time_seconds * 1000 + on(instance) group_left(version) moat_build_info`:                        "moat_start_time_seconds moat_build_info",
		`label_values(moat_build_info, instance)`:                                                                  "moat_build_info",
		`rate(a_total[$__rate_interval]) / ignoring(code) b_total offset 1h > bool 1e3`:                            "a_total b_total",
		`sum without (kind) (moat_monitor_conditions{kind="by(x) rate(evil_metric)"}) unless moat_firewall_loaded`: "moat_monitor_conditions moat_firewall_loaded",
	} {
		if got := strings.Join(metricNames(expr), " "); got != want {
			t.Errorf("metricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}
