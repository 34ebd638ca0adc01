// Package finding holds the report vocabulary that moat audit (from inside
// the host) and moat probe (from outside) share: severities, check
// results with evidence and fix, per-layer scores and the SARIF writer.
// Each report keeps its own layers and text layout.
package finding

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Severity ranks a finding. The zero value is Info.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if int(s) >= 0 && int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// ParseSeverity parses a severity name.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(s, n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q: expected one of %s", s, strings.Join(severityNames[:], ", "))
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// Weight is how much a check of this severity counts in a score.
func (s Severity) Weight() int {
	if s < Info || s > Critical {
		return 0
	}
	return [...]int{0, 1, 3, 6, 10}[s]
}

// Status is the outcome of one check.
type Status string

// Check outcomes.
const (
	Pass    Status = "pass"    // checked, fine
	Fail    Status = "fail"    // a finding
	NA      Status = "n/a"     // does not apply
	Unknown Status = "unknown" // could not be read: not scored
)

// Anchors tie a check to outside benchmarks.
type Anchors struct {
	CIS   string `json:"cis,omitempty"`   // CIS Debian Linux 12 Benchmark item
	Lynis string `json:"lynis,omitempty"` // Lynis test ID
}

// Result is one check's outcome. A check may report several results with
// the same ID (one per listener, user, port, …); Subject tells them apart.
type Result struct {
	ID       string   `json:"id"`
	Layer    string   `json:"layer"`
	Severity Severity `json:"severity"`
	Status   Status   `json:"status"`
	Title    string   `json:"title"`
	Subject  string   `json:"subject,omitempty"`
	Evidence []string `json:"evidence,omitempty"`
	Fix      string   `json:"fix,omitempty"`
	Anchors  Anchors  `json:"anchors,omitzero"`
}

// Finding reports whether r is a problem.
func (r Result) Finding() bool { return r.Status == Fail }

func (r Result) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// Worst returns the highest severity among the failed results, and false
// if none failed.
func Worst(rs []Result) (Severity, bool) {
	worst, any := Info, false
	for _, x := range rs {
		if x.Finding() && (!any || x.Severity > worst) {
			worst, any = x.Severity, true
		}
	}
	return worst, any
}
