package alert

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// route is a compiled Route.
type route struct {
	cfg       Route
	kinds     map[string]bool // nil: every kind
	notifiers []string
	min       Severity
	quiet     quietHours
	digest    *digest // nil: bans go out one by one
}

// compileRoutes turns the configured routes into routes. With none
// configured, one default route sends every event to every notifier.
func compileRoutes(c Config) ([]*route, error) {
	rs := c.Routes
	if len(rs) == 0 && len(c.Notifiers) > 0 {
		rs = []Route{{Notifiers: sortedKeys(c.Notifiers)}}
	}
	out := make([]*route, 0, len(rs))
	for i, r := range rs {
		cr := &route{cfg: r, notifiers: slices.Compact(slices.Sorted(slices.Values(r.Notifiers)))}
		if len(r.Events) > 0 {
			cr.kinds = make(map[string]bool, len(r.Events))
			for _, k := range r.Events {
				cr.kinds[k] = true
			}
		}
		if r.MinSeverity != "" {
			s, err := ParseSeverity(r.MinSeverity)
			if err != nil {
				return nil, fmt.Errorf("routes[%d]: %w", i, err)
			}
			cr.min = s
		}
		if r.QuietHours != "" {
			q, err := parseQuietHours(r.QuietHours)
			if err != nil {
				return nil, fmt.Errorf("routes[%d]: %w", i, err)
			}
			cr.quiet = q
		}
		if d := c.Digest.D(); d > 0 {
			cr.digest = &digest{interval: d}
		}
		out = append(out, cr)
	}
	return out, nil
}

func (r *route) matches(e Event) bool {
	return e.Severity >= r.min && (r.kinds == nil || r.kinds[e.Kind])
}

// quietHours is a daily span of local time during which a route holds
// back everything below critical. A span whose start is after its end
// wraps midnight: 22:00-07:00 is quiet from 22:00 until 06:59:59.
type quietHours struct {
	set      bool
	from, to int // minutes after midnight
}

func parseQuietHours(s string) (quietHours, error) {
	from, to, ok := strings.Cut(s, "-")
	f, okf := minuteOfDay(from)
	t, okt := minuteOfDay(to)
	if !ok || !okf || !okt {
		return quietHours{}, fmt.Errorf("expected a span like 22:00-07:00, found %q", s)
	}
	if f == t {
		return quietHours{}, fmt.Errorf("quiet hours %q start and end at the same minute: give a span with a start and an end", s)
	}
	return quietHours{set: true, from: f, to: t}, nil
}

func minuteOfDay(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, m := atoi2(s[:2]), atoi2(s[3:])
	if h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

func atoi2(s string) int {
	if s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return -1
	}
	return int(s[0]-'0')*10 + int(s[1]-'0')
}

// active reports whether t (in the quiet hours' zone) is quiet.
func (q quietHours) active(t time.Time) bool {
	if !q.set {
		return false
	}
	m := t.Hour()*60 + t.Minute()
	if q.from < q.to {
		return m >= q.from && m < q.to
	}
	return m >= q.from || m < q.to
}

// end returns when the quiet span containing t ends: the next moment
// after t the wall clock reads the end time. Across a DST change the
// wall clock decides, as the operator's own clock would.
func (q quietHours) end(t time.Time) time.Time {
	e := time.Date(t.Year(), t.Month(), t.Day(), q.to/60, q.to%60, 0, 0, t.Location())
	if !e.After(t) {
		e = time.Date(t.Year(), t.Month(), t.Day()+1, q.to/60, q.to%60, 0, 0, t.Location())
	}
	return e
}
