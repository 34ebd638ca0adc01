package jail

import (
	"math"
	"time"

	"github.com/moat-sh/moat/internal/schema"
)

// IsEnabled reports whether bantime grows for repeat offenders (on by
// default: recidive is built in).
func (i Increment) IsEnabled() bool { return i.Enabled == nil || *i.Enabled }

// BanTimeFor returns the bantime of a source banned previous times before:
// bantime × factor^previous, capped at increment.max, or plain bantime when
// increment is off. j should have its defaults filled (JailDefaults).
func (j Jail) BanTimeFor(previous int) time.Duration {
	base := j.BanTime.D()
	if !j.Increment.IsEnabled() || previous <= 0 || j.Increment.Factor <= 1 {
		return base
	}
	limit := max(j.Increment.Max.D(), base)
	// In floating point, so a large history cannot overflow: past the cap
	// the exact value does not matter.
	d := float64(base) * math.Pow(j.Increment.Factor, float64(previous))
	if math.IsNaN(d) || d >= float64(limit) {
		return limit
	}
	return time.Duration(d)
}

// Until is when the decision's ban ends: the zero time for a permanent
// one (bantime: permanent), which never ends.
func (d Decision) Until() time.Time {
	if d.BanTime >= time.Duration(schema.Permanent) {
		return time.Time{}
	}
	return d.At.Add(d.BanTime)
}
