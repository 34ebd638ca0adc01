package f2bimport

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// units are fail2ban's time abbreviations (MyTime.str2seconds), longest
// first so that "min" is not read as "m" + "in".
var units = []struct {
	names []string
	secs  float64
}{
	{[]string{"seconds", "second", "sec", "se", "ss", "s"}, 1},
	{[]string{"minutes", "minute", "min", "mi", "mm", "m"}, 60},
	{[]string{"hours", "hour", "hou", "ho", "hh", "h"}, 3600},
	{[]string{"days", "day", "da", "dd", "d"}, 86400},
	{[]string{"weeks", "week", "wee", "we", "ww", "w"}, 7 * 86400},
	{[]string{"months", "month", "mon", "mo"}, (365*3 + 366) * 86400 / 4 / 12},
	{[]string{"years", "year", "yea", "ye", "yy", "y"}, (365*3 + 366) * 86400 / 4},
}

// ParseTime reads a time in fail2ban's syntax: seconds ("600"), a number
// with a unit ("10m", "1h", "2d", "1w", "1mo", "1y"), sums of them
// ("1h 30m", "1d+12h", "1y-6mo") and products ("60*60*24"). It returns
// seconds; a negative result is fail2ban's "for ever" for bantime.
func ParseTime(s string) (float64, error) {
	bad := fmt.Errorf("expected a fail2ban time like 600, 10m, 1h 30m or -1, found %q", clip(s))
	p := timeParser{s: strings.ToLower(strings.TrimSpace(s))}
	if p.s == "" {
		return 0, bad
	}
	total, ok := p.sum()
	if !ok || p.i != len(p.s) || math.IsNaN(total) || math.IsInf(total, 0) || math.Abs(total) > 1e12 {
		return 0, bad
	}
	return total, nil
}

type timeParser struct {
	s string
	i int
}

func (p *timeParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *timeParser) sum() (float64, bool) {
	total, sign := 0.0, 1.0
	for n := 0; ; n++ {
		p.space()
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			if p.s[p.i] == '-' {
				sign = -sign
			}
			p.i++
			p.space()
		} else if n > 0 && p.i >= len(p.s) {
			return total, true
		}
		v, ok := p.product()
		if !ok {
			return 0, false
		}
		total += sign * v
		sign = 1
		p.space()
		if p.i >= len(p.s) {
			return total, true
		}
	}
}

func (p *timeParser) product() (float64, bool) {
	v, ok := p.factor()
	for ok {
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != '*' {
			return v, true
		}
		p.i++
		p.space()
		var w float64
		w, ok = p.factor()
		v *= w
	}
	return 0, false
}

func (p *timeParser) factor() (float64, bool) {
	start := p.i
	for p.i < len(p.s) && (p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == '.') {
		p.i++
	}
	if p.i == start {
		return 0, false
	}
	v, err := strconv.ParseFloat(p.s[start:p.i], 64)
	if err != nil {
		return 0, false
	}
	p.space()
	end := p.i
	for end < len(p.s) && p.s[end] >= 'a' && p.s[end] <= 'z' {
		end++
	}
	word := p.s[p.i:end]
	if word == "" {
		return v, true
	}
	for _, u := range units {
		for _, n := range u.names {
			if word == n {
				p.i = end
				return v * u.secs, true
			}
		}
	}
	return 0, false
}

// Seconds converts fail2ban seconds to a duration, rounded to the second.
func Seconds(s float64) time.Duration {
	return time.Duration(math.Round(s)) * time.Second
}
