package alert

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// digest gathers one route's automatic bans and ban expiries into at most
// one message per interval. The first ban after a calm spell opens a
// window and waits: at the window's end one message summarises every ban
// in it (a window holding a single event sends that event as it was). The
// next window opens with the next ban after that, so two ban messages are
// always at least one interval apart, and a brute force from many
// addresses is one message, not one per address. Bans are not urgent —
// the ban already happened — so the wait costs nothing.
type digest struct {
	interval time.Duration

	n          int       // events in the window; 0: no window open
	start, due time.Time // window opened; window closes
	first      Event
	severity   Severity
	bans       int
	expired    int
	jails      map[string]int
	addrs      map[string]int
	countries  map[string]int
	untracked  int // bans of addresses beyond maxDigestAddrs
}

// maxDigestAddrs bounds the distinct addresses one window remembers, so a
// spray of addresses cannot grow memory; bans past it are still counted.
const maxDigestAddrs = 4096

// digested reports whether e belongs in a digest: automatic bans and ban
// expiries. Manual bans and unbans are an operator's own doing and go out
// at once.
func digested(e Event) bool {
	return (e.Kind == KindBan || e.Kind == KindUnban) && e.Fields["manual"] != "true"
}

// add counts e at now and reports whether it opened a window, whose due
// time the dispatcher's timer must then learn.
func (d *digest) add(e Event, now time.Time) bool {
	opened := d.n == 0
	if opened {
		*d = digest{interval: d.interval, start: now, due: now.Add(d.interval), first: e,
			jails: map[string]int{}, addrs: map[string]int{}, countries: map[string]int{}}
	}
	d.n++
	d.severity = max(d.severity, e.Severity)
	if e.Kind == KindUnban {
		d.expired++
		return opened
	}
	d.bans++
	d.jails[or(e.Fields["jail"], "unknown")]++
	if a := e.Fields["addr"]; a != "" {
		if _, ok := d.addrs[a]; ok || len(d.addrs) < maxDigestAddrs {
			d.addrs[a]++
		} else {
			d.untracked++
		}
	}
	if c := e.Fields["country"]; c != "" {
		d.countries[c]++
	}
	return opened
}

// pending reports whether a window is open.
func (d *digest) pending() bool { return d.n > 0 }

// take closes the window at now and returns its message.
func (d *digest) take(now time.Time) Event {
	defer func() { *d = digest{interval: d.interval} }()
	if d.n == 1 {
		return d.first
	}
	span := now.Sub(d.start).Round(time.Second)
	var head []string
	if d.bans > 0 {
		head = append(head, plural(d.bans, "ban", "bans"))
	}
	if d.expired > 0 {
		head = append(head, plural(d.expired, "ban expired", "bans expired"))
	}
	jails := top(d.jails, 3)
	title := strings.Join(head, ", ") + " in " + durationText(span)
	if len(jails) > 0 {
		title += ": " + joinTop(jails, " ")
	}

	var b strings.Builder
	if d.bans > 0 {
		fmt.Fprintf(&b, "%s of %s in the last %s.", plural(d.bans, "ban", "bans"),
			plural(len(d.addrs)+d.untracked, "address", "addresses"), durationText(span))
		fmt.Fprintf(&b, "\nBy jail: %s", joinTop(top(d.jails, 10), " "))
		fmt.Fprintf(&b, "\nTop addresses: %s", joinTopTimes(top(d.addrs, 5)))
		if len(d.countries) > 0 {
			fmt.Fprintf(&b, "\nTop countries: %s", joinTop(top(d.countries, 5), " "))
		}
	}
	if d.expired > 0 {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s in the last %s.", plural(d.expired, "ban expired", "bans expired"), durationText(span))
	}
	b.WriteString("\nRun `moat bans` for the full list.")

	return Event{Kind: KindBan, Severity: d.severity, Time: now, Title: title, Text: b.String(),
		Fields: fields("digest", "true", "bans", strconv.Itoa(d.bans), "expired", strconv.Itoa(d.expired),
			"addresses", strconv.Itoa(len(d.addrs)+d.untracked),
			"jails", joinTop(top(d.jails, 10), "="), "top_addrs", joinTop(top(d.addrs, 5), "="),
			"top_countries", joinTop(top(d.countries, 5), "="),
			"since", d.start.UTC().Format(time.RFC3339), "window", span.String())}
}

type count struct {
	key string
	n   int
}

// top returns the n largest counts, ties in key order.
func top(m map[string]int, n int) []count {
	cs := make([]count, 0, len(m))
	for k, v := range m {
		cs = append(cs, count{k, v})
	}
	slices.SortFunc(cs, func(a, b count) int {
		return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.key, b.key))
	})
	return cs[:min(n, len(cs))]
}

// joinTop renders counts as "sshd 10, nginx 2" (sep " ") or
// "sshd=10,nginx=2" (sep "=").
func joinTop(cs []count, sep string) string {
	list := ", "
	if sep == "=" {
		list = ","
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.key + sep + strconv.Itoa(c.n)
	}
	return strings.Join(parts, list)
}

// joinTopTimes renders addresses as "203.0.113.7 ×3, 192.0.2.1".
func joinTopTimes(cs []count) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.key
		if c.n > 1 {
			parts[i] += " ×" + strconv.Itoa(c.n)
		}
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// carry takes over old's open window, keeping d's interval.
func (d *digest) carry(old *digest) {
	interval := d.interval
	*d = *old
	d.interval = interval
}
