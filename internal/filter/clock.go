package filter

import (
	"time"
)

// clock turns log timestamps into times. Parsing a timestamp costs a
// time.Date call, so each format remembers the last second it parsed: a
// run of lines within one second costs a comparison.
type clock struct {
	loc *time.Location
	now func() time.Time

	bsd, iso, slash, clf stampCache

	// Year inference for syslog stamps: the month and day last seen and
	// the year chosen for them.
	md   int
	year int
}

func newClock(o Options) clock { return clock{loc: o.Location, now: o.Now, md: -1} }

// stampCache remembers one timestamp's text up to its second (and zone).
type stampCache struct {
	key [40]byte
	n   int
	t   time.Time
}

func (c *stampCache) get(k []byte) (time.Time, bool) {
	if len(k) == c.n && string(k) == string(c.key[:c.n]) {
		return c.t, true
	}
	return time.Time{}, false
}

func (c *stampCache) put(k []byte, t time.Time) {
	if len(k) <= len(c.key) {
		c.n = copy(c.key[:], k)
		c.t = t
	}
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// month parses a three-letter English month name.
func month(b []byte) (time.Month, bool) {
	if len(b) < 3 {
		return 0, false
	}
	for i, m := range months {
		if b[0] == m[0] && b[1] == m[1] && b[2] == m[2] {
			return time.Month(i + 1), true
		}
	}
	return 0, false
}

func digit(c byte) bool { return c >= '0' && c <= '9' }

// num parses the n digits at b[i:].
func num(b []byte, i, n int) (int, bool) {
	if i < 0 || i+n > len(b) {
		return 0, false
	}
	v := 0
	for _, c := range b[i : i+n] {
		if !digit(c) {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// hms parses "hh:mm:ss" at b[i:].
func hms(b []byte, i int) (h, m, s int, ok bool) {
	if i+8 > len(b) || b[i+2] != ':' || b[i+5] != ':' {
		return 0, 0, 0, false
	}
	h, ok1 := num(b, i, 2)
	m, ok2 := num(b, i+3, 2)
	s, ok3 := num(b, i+6, 2)
	return h, m, s, ok1 && ok2 && ok3 && h < 24 && m < 60 && s < 61
}

// bsdStamp parses an RFC 3164 timestamp, "Nov 21 05:42:36" (the day may be
// space-padded, zero-padded or bare), and returns its length.
func (c *clock) bsdStamp(b []byte) (time.Time, int, bool) {
	if n := c.bsd.n; n > 0 && len(b) > n && b[n] == ' ' {
		if t, ok := c.bsd.get(b[:n]); ok {
			return t, n, true
		}
	}
	mon, ok := month(b)
	if !ok || len(b) < 14 || b[3] != ' ' {
		return time.Time{}, 0, false
	}
	i := 4
	if b[i] == ' ' {
		i++
	}
	d0 := i
	for i < len(b) && i-d0 < 2 && digit(b[i]) {
		i++
	}
	if i == d0 || i >= len(b) || b[i] != ' ' {
		return time.Time{}, 0, false
	}
	n := i + 9
	if n > len(b) {
		return time.Time{}, 0, false
	}
	if t, ok := c.bsd.get(b[:n]); ok {
		return t, n, true
	}
	day, _ := num(b, d0, i-d0)
	h, m, s, ok := hms(b, i+1)
	if !ok || day < 1 || day > 31 {
		return time.Time{}, 0, false
	}
	y := c.yearOf(mon, day, h, m, s)
	t := time.Date(y, mon, day, h, m, s, 0, c.loc)
	c.bsd.put(b[:n], t)
	return t, n, true
}

// yearOf picks the year of a syslog timestamp: the latest one that does
// not put the line more than a day after now. Logs are read soon after
// they are written, so "Dec 31" read on January 1st is last year's, and a
// replayed log of March read in August is this year's.
func (c *clock) yearOf(mon time.Month, day, h, m, s int) int {
	md := int(mon)*32 + day
	if md == c.md {
		return c.year
	}
	ref := c.now().In(c.loc)
	limit := ref.Add(24 * time.Hour)
	y := ref.Year() + 1
	for ; y > ref.Year()-2; y-- {
		if !time.Date(y, mon, day, h, m, s, 0, c.loc).After(limit) {
			break
		}
	}
	c.md, c.year = md, y
	return y
}

// isoStamp parses an RFC 3339 / ISO 8601 timestamp,
// "2026-11-21T05:42:36.123456+00:00" (a space for the T, a comma for the
// point, and a missing zone, meaning the local one, are accepted).
func (c *clock) isoStamp(b []byte) (time.Time, int, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != ' ') {
		return time.Time{}, 0, false
	}
	i := 19
	var nsec int
	if i < len(b) && (b[i] == '.' || b[i] == ',') {
		i++
		f0 := i
		scale := 100000000
		for i < len(b) && digit(b[i]) {
			if i-f0 < 9 {
				nsec += int(b[i]-'0') * scale
				scale /= 10
			}
			i++
		}
		if i == f0 {
			return time.Time{}, 0, false
		}
	}
	zone := i
	off, hasZone := 0, false
	switch {
	case i < len(b) && b[i] == 'Z':
		i++
		hasZone = true
	case i+5 <= len(b) && (b[i] == '+' || b[i] == '-'):
		// "+01:00", or "+0100" as some writers have it.
		n, m := 5, i+3
		if b[i+3] == ':' {
			n, m = 6, i+4
		}
		oh, ok1 := num(b, i+1, 2)
		om, ok2 := num(b, m, 2)
		if i+n > len(b) || !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, 0, false
		}
		off = oh*3600 + om*60
		if b[i] == '-' {
			off = -off
		}
		i += n
		hasZone = true
	}
	// The cache key is the second and the zone, without the fraction.
	var kb [40]byte
	k := append(append(kb[:0], b[:19]...), b[zone:i]...)
	if t, ok := c.iso.get(k); ok {
		return t.Add(time.Duration(nsec)), i, true
	}
	y, ok1 := num(b, 0, 4)
	mo, ok2 := num(b, 5, 2)
	d, ok3 := num(b, 8, 2)
	h, m, s, ok4 := hms(b, 11)
	if !ok1 || !ok2 || !ok3 || !ok4 || mo < 1 || mo > 12 || d < 1 || d > 31 {
		return time.Time{}, 0, false
	}
	var t time.Time
	if hasZone {
		t = time.Date(y, time.Month(mo), d, h, m, s, 0, time.UTC).Add(-time.Duration(off) * time.Second).In(c.loc)
	} else {
		t = time.Date(y, time.Month(mo), d, h, m, s, 0, c.loc)
	}
	c.iso.put(k, t)
	return t.Add(time.Duration(nsec)), i, true
}

// slashStamp parses nginx's error log timestamp, "2015/01/21 10:56:10", in
// the local zone.
func (c *clock) slashStamp(b []byte) (time.Time, int, bool) {
	if len(b) < 19 || b[4] != '/' || b[7] != '/' || b[10] != ' ' {
		return time.Time{}, 0, false
	}
	if t, ok := c.slash.get(b[:19]); ok {
		return t, 19, true
	}
	y, ok1 := num(b, 0, 4)
	mo, ok2 := num(b, 5, 2)
	d, ok3 := num(b, 8, 2)
	h, m, s, ok4 := hms(b, 11)
	if !ok1 || !ok2 || !ok3 || !ok4 || mo < 1 || mo > 12 || d < 1 || d > 31 {
		return time.Time{}, 0, false
	}
	t := time.Date(y, time.Month(mo), d, h, m, s, 0, c.loc)
	c.slash.put(b[:19], t)
	return t, 19, true
}

// clfStamp parses the Common Log Format timestamp without its brackets,
// "20/Jan/2015:19:53:28 +0100".
func (c *clock) clfStamp(b []byte) (time.Time, int, bool) {
	if len(b) < 26 || b[2] != '/' || b[6] != '/' || b[11] != ':' || b[20] != ' ' {
		return time.Time{}, 0, false
	}
	if t, ok := c.clf.get(b[:26]); ok {
		return t, 26, true
	}
	d, ok1 := num(b, 0, 2)
	mon, ok2 := month(b[3:6])
	y, ok3 := num(b, 7, 4)
	h, m, s, ok4 := hms(b, 12)
	oh, ok5 := num(b, 22, 2)
	om, ok6 := num(b, 24, 2)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || (b[21] != '+' && b[21] != '-') || d < 1 || d > 31 {
		return time.Time{}, 0, false
	}
	off := oh*3600 + om*60
	if b[21] == '-' {
		off = -off
	}
	t := time.Date(y, mon, d, h, m, s, 0, time.UTC).Add(-time.Duration(off) * time.Second).In(c.loc)
	c.clf.put(b[:26], t)
	return t, 26, true
}
