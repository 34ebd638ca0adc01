// Package audit runs moat's read-only checks over a host and reports what is
// exposed and weak, per layer, with the fix: as text, JSON or SARIF, with a
// score per layer and overall.
package audit

import "github.com/moat-sh/moat/internal/finding"

// The report vocabulary is shared with moat probe (internal/finding); the
// aliases keep the audit's API as it was.
type (
	// Severity ranks a finding. The zero value is Info.
	Severity = finding.Severity
	// Anchors tie a check to outside benchmarks.
	Anchors = finding.Anchors
	// Result is one check's outcome on this host. A check may report
	// several results with the same ID (one per listener, user, …);
	// Subject tells them apart.
	Result = finding.Result
)

// Severities, lowest first.
const (
	Info     = finding.Info
	Low      = finding.Low
	Medium   = finding.Medium
	High     = finding.High
	Critical = finding.Critical
)

// ParseSeverity parses a severity name.
func ParseSeverity(s string) (Severity, error) { return finding.ParseSeverity(s) }

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
type Status = finding.Status

// Check outcomes.
const (
	Pass    = finding.Pass    // checked, fine
	Fail    = finding.Fail    // a finding
	NA      = finding.NA      // does not apply to this host
	Unknown = finding.Unknown // could not be read (e.g. not root): not scored
)
