// Package audit runs moat's read-only checks over a host and reports what is
// exposed and weak, per layer, with the fix: as text, JSON or SARIF, with a
// score per layer and overall.
package audit

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
	if int(s) < len(severityNames) {
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

// weight is how much a check of this severity counts in the score.
func (s Severity) weight() int { return [...]int{0, 1, 3, 6, 10}[s] }

// Layer names group checks.
const (
	LayerSSH       = "ssh"
	LayerUsers     = "users"
	LayerExposure  = "exposure"
	LayerFirewall  = "firewall"
	LayerUpdates   = "updates"
	LayerGuard     = "guard"
	LayerKernel    = "kernel"
	LayerStability = "stability"
	LayerTLS       = "tls"
	LayerBackups   = "backups"
)

// Layers in report order.
var Layers = []string{LayerSSH, LayerUsers, LayerExposure, LayerFirewall, LayerUpdates, LayerGuard, LayerKernel, LayerStability, LayerTLS, LayerBackups}

// Status is the outcome of one check.
type Status string

// Check outcomes.
const (
	Pass    Status = "pass"    // checked, fine
	Fail    Status = "fail"    // a finding
	NA      Status = "n/a"     // does not apply to this host
	Unknown Status = "unknown" // could not be read (e.g. not root): not scored
)

// Anchors tie a check to outside benchmarks.
type Anchors struct {
	CIS   string `json:"cis,omitempty"`   // CIS Debian Linux 12 Benchmark item
	Lynis string `json:"lynis,omitempty"` // Lynis test ID
}

// Result is one check's outcome on this host. A check may report several
// results with the same ID (one per listener, user, …); Subject tells them
// apart.
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
