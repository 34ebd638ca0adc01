package audit

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/term"
)

// SchemaVersion names the JSON report's schema (docs/audit-json.md).
const SchemaVersion = "moat.audit/v1"

// Report is one audit run.
type Report struct {
	Schema   string        `json:"schema"`
	Version  string        `json:"moat_version"`
	Host     string        `json:"host"`
	Root     string        `json:"root"`
	Time     time.Time     `json:"time"`
	Duration time.Duration `json:"duration_ns"`
	Score    int           `json:"score"`
	Layers   []Score       `json:"layers"`
	Results  []Result      `json:"results"`
	// Notes say what could not be read and why (e.g. not root).
	Notes []string `json:"notes,omitempty"`
}

// Findings returns the failed results, most severe first.
func (r *Report) Findings() []Result {
	var out []Result
	for _, x := range r.Results {
		if x.Finding() {
			out = append(out, x)
		}
	}
	return out
}

// Worst returns the highest severity among findings, and false if none.
func (r *Report) Worst() (Severity, bool) {
	worst, any := Info, false
	for _, x := range r.Results {
		if x.Finding() && (!any || x.Severity > worst) {
			worst, any = x.Severity, true
		}
	}
	return worst, any
}

// sortResults orders by layer (Layers order), then severity (worst first),
// then ID and subject, so output is stable run to run.
func sortResults(rs []Result) {
	rank := map[string]int{}
	for i, l := range Layers {
		rank[l] = i
	}
	slices.SortStableFunc(rs, func(a, b Result) int {
		return cmp.Or(
			cmp.Compare(rank[a.Layer], rank[b.Layer]),
			cmp.Compare(statusRank[a.Status], statusRank[b.Status]),
			cmp.Compare(b.Severity, a.Severity),
			cmp.Compare(a.ID, b.ID),
			cmp.Compare(a.Subject, b.Subject),
		)
	})
}

var statusRank = map[Status]int{Fail: 0, Unknown: 1, Pass: 2, NA: 3}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// TextOptions shape the human report.
type TextOptions struct {
	Color   bool
	Verbose bool // also list passed checks
}

// WriteText writes the human report, grouped by layer.
func (r *Report) WriteText(w io.Writer, o TextOptions) error {
	c := palette(o.Color)
	var b strings.Builder
	fmt.Fprintf(&b, "%smoat audit%s  %s  score %s  (%s)\n", c.bold, c.reset, r.Host, scoreText(r.Score), r.Duration.Round(time.Millisecond))
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "%snote:%s %s\n", c.dim, c.reset, n)
	}
	for _, l := range r.Layers {
		counts := fmt.Sprintf("%d passed, %d failed", l.Passed, l.Failed)
		if l.Passed+l.Failed == 0 {
			counts = "not evaluated: " + r.layerWhy(l.Layer)
		}
		fmt.Fprintf(&b, "\n%s%s%s  score %s  (%s)\n", c.bold, strings.ToUpper(l.Layer), c.reset, scoreText(l.Score), counts)
		for _, x := range r.Results {
			if x.Layer != l.Layer || (!x.Finding() && !o.Verbose) {
				continue
			}
			sev := x.Severity.String()
			col := c.sev[x.Severity]
			if !x.Finding() {
				sev, col = string(x.Status), c.dim
			}
			subj := ""
			if x.Subject != "" {
				subj = " [" + x.Subject + "]"
			}
			fmt.Fprintf(&b, "  %s%-8s%s %-9s %s%s\n", col, sev, c.reset, x.ID, x.Title, subj)
			if !x.Finding() {
				if x.Status != Pass && len(x.Evidence) > 0 {
					fmt.Fprintf(&b, "                     %s%s%s\n", c.dim, x.Evidence[0], c.reset)
				}
				continue
			}
			for _, e := range x.Evidence {
				fmt.Fprintf(&b, "                     %s%s%s\n", c.dim, e, c.reset)
			}
			if x.Fix != "" {
				fmt.Fprintf(&b, "                     fix: %s\n", x.Fix)
			}
		}
	}
	if !o.Verbose {
		// Unknown results share few reasons (not root, a tool missing):
		// one line per reason, naming the checks.
		var reasons []string
		ids := map[string][]string{}
		for _, x := range r.Results {
			if x.Status != Unknown {
				continue
			}
			why := strings.Join(x.Evidence, "; ")
			if _, ok := ids[why]; !ok {
				reasons = append(reasons, why)
			}
			if !slices.Contains(ids[why], x.ID) {
				ids[why] = append(ids[why], x.ID)
			}
		}
		for _, why := range reasons {
			fmt.Fprintf(&b, "\n%snot checked:%s %s: %s\n", c.dim, c.reset, strings.Join(ids[why], ", "), why)
		}
	}
	n := len(r.Findings())
	fmt.Fprintf(&b, "\n%s", plural(n, "finding", "findings"))
	if worst, ok := r.Worst(); ok {
		fmt.Fprintf(&b, ", worst %s", worst)
	}
	b.WriteString(". JSON: moat audit --json; all checks: moat audit -v\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func scoreText(s int) string {
	if s < 0 {
		return "–"
	}
	return fmt.Sprintf("%d/100", s)
}

type colors struct {
	bold, dim, reset string
	sev              [5]string
}

func palette(on bool) colors {
	if !on {
		return colors{}
	}
	return colors{ // internal/term's, the one set every command uses
		bold: term.SGRBold, dim: term.SGRDim, reset: term.SGRReset,
		sev: [5]string{term.SGRDim, term.SGRCyan, term.SGRYellow, term.SGRRed, term.SGRBoldRed},
	}
}

// layerWhy says why a layer has no pass or fail: the reason its results
// give when they all share one ("sshd is not installed"), else a summary.
func (r *Report) layerWhy(layer string) string {
	why, na, unknown := "", 0, 0
	same := true
	for _, x := range r.Results {
		if x.Layer != layer {
			continue
		}
		switch x.Status {
		case NA:
			na++
		case Unknown:
			unknown++
		}
		e := ""
		if len(x.Evidence) > 0 {
			e = x.Evidence[0]
		}
		if why == "" {
			why = e
		} else if e != why {
			same = false
		}
	}
	switch {
	case why != "" && same:
		return why
	case unknown > 0:
		return fmt.Sprintf("%s n/a, %s unknown (-v shows why)", plural(na, "check", "checks"), plural(unknown, "check", "checks"))
	default:
		return plural(na, "check", "checks") + " n/a (-v shows why)"
	}
}
