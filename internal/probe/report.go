package probe

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/finding"
)

// SchemaVersion names the JSON report's schema.
const SchemaVersion = "moat.probe/v1"

// Report is one probe run.
type Report struct {
	Schema   string           `json:"schema"`
	Version  string           `json:"moat_version"`
	Target   string           `json:"target"`
	Addrs    []string         `json:"addrs"`
	Time     time.Time        `json:"time"`
	Duration time.Duration    `json:"duration_ns"`
	Ports    int              `json:"ports_scanned"`
	Hosts    []HostReport     `json:"hosts"`
	Services []Service        `json:"services"`
	UDP      []UDPResult      `json:"udp,omitempty"`
	Scan     ScanStats        `json:"scan"`
	Intent   *Intent          `json:"intent,omitempty"`
	Score    int              `json:"score"`
	Layers   []finding.Score  `json:"layers"`
	Results  []finding.Result `json:"results"`
	Notes    []string         `json:"notes,omitempty"`
}

// HostReport is one address's port scan.
type HostReport struct {
	Addr string   `json:"addr"`
	Open []uint16 `json:"open"`
	// Closed and Filtered are port ranges ("1-21,23-79").
	Closed        string `json:"closed"`
	Filtered      string `json:"filtered"`
	ClosedCount   int    `json:"closed_count"`
	FilteredCount int    `json:"filtered_count"`
	Unscanned     int    `json:"unscanned,omitempty"`
	states        *HostPorts
}

func (h HostReport) state(p uint16) State {
	if h.states == nil {
		if slices.Contains(h.Open, p) {
			return Open
		}
		return Unscanned
	}
	return h.states.State(p)
}

func hostReport(h *HostPorts) HostReport {
	return HostReport{
		Addr: h.Addr.String(), Open: h.Ports(Open),
		Closed: RangeList(h.Ports(Closed)), Filtered: RangeList(h.Ports(Filtered)),
		ClosedCount: h.Count(Closed), FilteredCount: h.Count(Filtered), Unscanned: h.Count(Unscanned),
		states: h,
	}
}

// Findings returns the failed results.
func (r *Report) Findings() []finding.Result {
	var out []finding.Result
	for _, x := range r.Results {
		if x.Finding() {
			out = append(out, x)
		}
	}
	return out
}

// Worst is the highest severity among findings, false if none.
func (r *Report) Worst() (finding.Severity, bool) { return finding.Worst(r.Results) }

func (r *Report) finish(in *Intent, now time.Time) {
	r.Results = Judge(r, in, now)
	rank := map[string]int{}
	for i, l := range Layers {
		rank[l] = i
	}
	status := map[finding.Status]int{finding.Fail: 0, finding.Unknown: 1, finding.Pass: 2, finding.NA: 3}
	slices.SortStableFunc(r.Results, func(a, b finding.Result) int {
		return cmp.Or(cmp.Compare(rank[a.Layer], rank[b.Layer]), cmp.Compare(status[a.Status], status[b.Status]),
			cmp.Compare(b.Severity, a.Severity), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Subject, b.Subject))
	})
	r.Layers, r.Score = finding.Scores(r.Results, Layers)
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteSARIF writes the findings as SARIF 2.1.0.
func (r *Report) WriteSARIF(w io.Writer) error {
	return finding.WriteSARIF(w, finding.SARIFRun{Version: r.Version, Host: r.Target, Results: r.Results})
}

// WriteText writes the one-screen summary, "what an attacker sees", then
// the findings per layer like moat audit's.
func (r *Report) WriteText(w io.Writer, verbose bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "moat probe  %s  score %s  (%s)\n", r.Target, finding.ScoreText(r.Score), r.Duration.Round(100*time.Millisecond))
	if r.Intent != nil {
		fmt.Fprintf(&b, "held against %s\n", r.Intent.Source)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	b.WriteString("\nWHAT AN ATTACKER SEES\n")
	method := "TCP connect scan"
	if r.Scan.Method == "syn" {
		method = "TCP SYN scan"
	}
	fmt.Fprintf(&b, "  %s: %d ports on %d address(es) in %s (%d attempts, %d retries)\n",
		method, r.Ports, len(r.Hosts), r.Scan.Took.Round(100*time.Millisecond), r.Scan.Attempts, r.Scan.Retries)
	if pc := r.Scan.Pace; pc.Ceiling > 0 {
		achieved := 0.0
		if r.Scan.Took > 0 {
			achieved = float64(r.Scan.Attempts) / r.Scan.Took.Seconds()
		}
		fmt.Fprintf(&b, "  pace: %.0f attempts/s on average, allowed up to %.0f (ceiling %.0f), %d backoffs on loss\n", achieved, pc.Peak, pc.Ceiling, pc.Backoffs)
	}
	for _, h := range r.Hosts {
		fmt.Fprintf(&b, "  %s  tcp: %d open, %d closed, %d filtered\n", h.Addr, len(h.Open), h.ClosedCount, h.FilteredCount)
		if h.Unscanned > 0 {
			fmt.Fprintf(&b, "      %d ports not scanned: the time limit ran out\n", h.Unscanned)
		}
		for _, p := range h.Open {
			line := fmt.Sprintf("    tcp/%-5d  open  ", p)
			if s := r.service(h.Addr, p); s != nil {
				line += fmt.Sprintf("%-13s %s", s.Name, summary(s))
			}
			b.WriteString(strings.TrimRight(line, " ") + "\n")
		}
		var quiet []string
		for _, u := range r.UDP {
			if u.Addr != h.Addr {
				continue
			}
			if u.State == "open" {
				fmt.Fprintf(&b, "    udp/%-5d  open  %-13s %s\n", u.Port, u.Service, u.Answer)
			} else {
				quiet = append(quiet, fmt.Sprintf("%d %s", u.Port, u.State))
			}
		}
		if len(quiet) > 0 {
			fmt.Fprintf(&b, "    udp: %s\n", strings.Join(quiet, ", "))
		}
	}
	for _, l := range r.Layers {
		fmt.Fprintf(&b, "\n%s  score %s  (%d passed, %d failed)\n", strings.ToUpper(l.Layer), finding.ScoreText(l.Score), l.Passed, l.Failed)
		for _, x := range r.Results {
			if x.Layer != l.Layer || (!x.Finding() && !verbose) {
				continue
			}
			sev := x.Severity.String()
			if !x.Finding() {
				sev = string(x.Status)
			}
			subj := ""
			if x.Subject != "" {
				subj = " [" + x.Subject + "]"
			}
			fmt.Fprintf(&b, "  %-8s %-11s %s%s\n", sev, x.ID, x.Title, subj)
			if !x.Finding() {
				continue
			}
			for _, e := range x.Evidence {
				fmt.Fprintf(&b, "                       %s\n", e)
			}
			if x.Fix != "" {
				fmt.Fprintf(&b, "                       fix: %s\n", x.Fix)
			}
		}
	}
	n := len(r.Findings())
	fmt.Fprintf(&b, "\n%d finding(s)", n)
	if worst, ok := r.Worst(); ok {
		fmt.Fprintf(&b, ", worst %s", worst)
	}
	b.WriteString(". JSON: moat probe --json; passed checks too: -v\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) service(addr string, port uint16) *Service {
	for i := range r.Services {
		if r.Services[i].Addr == addr && r.Services[i].Port == port {
			return &r.Services[i]
		}
	}
	return nil
}

// summary says in one line what answers and what it gives away.
func summary(s *Service) string {
	var parts []string
	if s.Product != "" {
		parts = append(parts, strings.TrimSpace(s.Product+" "+s.Version))
	}
	if s.SSH != nil {
		if pw := s.SSH.PasswordOffered(); len(pw) > 0 {
			parts = append(parts, "password offered")
		} else if len(s.SSH.AuthMethods) > 0 {
			parts = append(parts, "keys only")
		}
	}
	if s.Datastore != nil {
		if s.Datastore.Unauthenticated {
			parts = append(parts, "ANSWERS WITHOUT AUTHENTICATION")
		} else {
			parts = append(parts, "asks for authentication")
		}
	}
	if s.TLS != nil {
		var names []string
		for _, h := range s.TLS.Handshakes {
			if h.OK {
				for _, n := range h.Names {
					if !slices.Contains(names, n) {
						names = append(names, n)
					}
				}
			}
		}
		if len(names) > 0 {
			parts = append(parts, "cert "+strings.Join(names, ","))
		}
	}
	if s.HTTP != nil {
		parts = append(parts, fmt.Sprintf("GET / %s", statusText(s.HTTP.Root)))
		if s.HTTP.Root.Title != "" {
			parts = append(parts, fmt.Sprintf("%q", s.HTTP.Root.Title))
		}
	}
	if len(parts) == 0 && s.Banner != "" {
		parts = append(parts, s.Banner)
	}
	return strings.Join(parts, ", ")
}

func sortServices(s []Service) {
	slices.SortFunc(s, func(a, b Service) int { return cmp.Or(cmp.Compare(a.Addr, b.Addr), cmp.Compare(a.Port, b.Port)) })
}

func sortUDP(u []UDPResult) {
	slices.SortFunc(u, func(a, b UDPResult) int { return cmp.Or(cmp.Compare(a.Addr, b.Addr), cmp.Compare(a.Port, b.Port)) })
}
