package alert

import (
	"fmt"
	"time"
)

// KindFleet is trouble in the fleet's shared ban stream: a host falling
// behind, the stream losing its quorum.
const KindFleet = "fleet"

func init() { Events = append(Events, KindFleet) }

// Fleet is a fleet condition: Problem is "lag" or "quorum".
type Fleet struct {
	Fleet   string
	Problem string
	Detail  string
	Time    time.Time
}

// Event implements the fleet event: a warning for lag, critical for a
// lost quorum (no host can publish or receive bans).
func (f Fleet) Event() Event {
	sev, title := Warning, fmt.Sprintf("Fleet %s: this host is behind", f.Fleet)
	if f.Problem == "quorum" {
		sev, title = Critical, fmt.Sprintf("Fleet %s: the ban stream lost its quorum", f.Fleet)
	}
	return Event{Kind: KindFleet, Severity: sev, Time: f.Time, Title: title, Text: f.Detail + ".",
		Fields: fields("fleet", f.Fleet, "problem", f.Problem)}
}
