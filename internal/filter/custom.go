package filter

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"time"
)

// Custom is a user-defined filter (guard.filters in moat.yaml):
// regular expressions in Go's syntax (RE2: linear time, no
// backreferences), each with exactly one <HOST> placeholder.
//
// The rules, so that text an attacker controls cannot place an address:
//
//   - each regex is matched against the whole line, as if written
//     ^(?:…)$; write .* where anything may stand;
//   - <HOST> becomes a strict address pattern (IPv4 or IPv6, no zone,
//     no host names) that takes the longest address it can; the text it
//     matched must be an address by netip's rules and a whole token of
//     the line: no letter, digit, '.', ':', '_' or '%' right before or
//     after it (so "1.2.3.45" never yields 1.2.3.4, nor "ip=1.2.3.4A"
//     1.2.3.4), except a trailing ':' that ends the token and an IPv4
//     address's ":PORT";
//   - the address must be where the regex puts it in every reading of the
//     line: the line is matched again with the greediness of every
//     quantifier outside <HOST> flipped, and if that places <HOST>
//     elsewhere (say, `.*` before it could stop at a "from 1.2.3.4"
//     inside a user name as well as at the real one), the failure is
//     unattributable and bans nothing;
//   - an optional (?P<user>…) group names the user, for alerts;
//   - ignore regexes are anchored the same way; a line one matches is no
//     failure;
//   - a line with a control character, cut short or too long is never
//     attributed.
//
// The first regex that matches wins. The timestamp is read from the start
// of the line (syslog, RFC 3339, nginx's error log) or from a common log
// format "[20/Jan/2015:19:53:28 +0100]", else it is the entry's.
type Custom struct {
	Regex  []string
	Ignore []string
}

// hostPattern matches the shapes of an address; parseAddr decides.
const hostPattern = `(?P<host>\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3})`

type customRegex struct {
	re, flipped *regexp.Regexp
	host, user  int // submatch indexes; user is -1 without a user group
}

type custom struct {
	name   string
	o      Options
	clk    clock
	h      header
	in     interner
	res    []customRegex
	ignore []*regexp.Regexp
}

// Compile builds a user-defined filter named name.
func Compile(name string, c Custom, o Options) (Filter, error) {
	if len(c.Regex) == 0 {
		return nil, fmt.Errorf("filter %s: no regex: a filter needs at least one", name)
	}
	o = o.withDefaults()
	f := &custom{name: name, o: o, clk: newClock(o)}
	for i, src := range c.Regex {
		cr, err := compileCustom(src)
		if err != nil {
			return nil, fmt.Errorf("filter %s: regex[%d]: %w", name, i, err)
		}
		f.res = append(f.res, cr)
	}
	for i, src := range c.Ignore {
		re, err := regexp.Compile(`^(?:` + src + `)$`)
		if err != nil {
			return nil, fmt.Errorf("filter %s: ignore[%d]: invalid regular expression: %w", name, i, err)
		}
		f.ignore = append(f.ignore, re)
	}
	return f, nil
}

func compileCustom(src string) (customRegex, error) {
	if n := strings.Count(src, "<HOST>"); n != 1 {
		return customRegex{}, fmt.Errorf("expected exactly one <HOST> placeholder, found %d", n)
	}
	if strings.Contains(src, "(?P<host>") || strings.Contains(src, "(?<host>") {
		return customRegex{}, fmt.Errorf("the group name host is moat's: use <HOST>")
	}
	full := `^(?:` + strings.Replace(src, "<HOST>", hostPattern, 1) + `)$`
	re, err := regexp.Compile(full)
	if err != nil {
		return customRegex{}, fmt.Errorf("invalid regular expression: %w", err)
	}
	tree, err := syntax.Parse(full, syntax.Perl)
	if err != nil {
		return customRegex{}, fmt.Errorf("invalid regular expression: %w", err)
	}
	flipGreed(tree)
	flipped, err := regexp.Compile(tree.String())
	if err != nil {
		return customRegex{}, fmt.Errorf("regular expression does not survive rewriting (report this): %w", err)
	}
	cr := customRegex{re: re, flipped: flipped, host: re.SubexpIndex("host"), user: re.SubexpIndex("user")}
	if flipped.SubexpIndex("host") != cr.host {
		return customRegex{}, fmt.Errorf("regular expression does not survive rewriting (report this)")
	}
	return cr, nil
}

// flipGreed turns every greedy quantifier lazy and every lazy one
// greedy, except inside the host group, which always takes the longest
// address.
func flipGreed(re *syntax.Regexp) {
	switch re.Op {
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		re.Flags ^= syntax.NonGreedy
	case syntax.OpCapture:
		if re.Name == "host" {
			return
		}
	}
	for _, s := range re.Sub {
		flipGreed(s)
	}
}

func (f *custom) Name() string { return f.name }
func (f *custom) Mode() string { return "normal" }

// Process reads one line.
func (f *custom) Process(e Entry, r *Result) {
	b := e.Text
	if len(b) > f.o.MaxLine {
		return
	}
	for _, ig := range f.ignore {
		if ig.Match(b) {
			r.ignore()
			return
		}
	}
	for _, cr := range f.res {
		m := cr.re.FindSubmatchIndex(b)
		if m == nil {
			continue
		}
		fl := Failure{Time: f.stamp(b, e.Time), Kind: KindCustom, Attempts: 1, Service: f.name}
		if cr.user >= 0 && m[2*cr.user] >= 0 {
			fl.User = f.in.str(b[m[2*cr.user]:m[2*cr.user+1]])
		}
		hs, he := m[2*cr.host], m[2*cr.host+1]
		tok := b[hs:he]
		a, ok := addrTok(tok)
		if ok && (e.Truncated || !clean(b) || !delimited(b, hs, he, a.Is4())) {
			ok = false
		}
		if ok {
			fm := cr.flipped.FindSubmatchIndex(b)
			ok = fm != nil && fm[2*cr.host] == hs && fm[2*cr.host+1] == he
		}
		if ok {
			fl.Addr = a
		} else {
			fl.Host = display(tok, 64)
		}
		r.fail(fl)
		return
	}
}

// stamp reads the line's timestamp where one is recognised.
func (f *custom) stamp(b []byte, fallback time.Time) time.Time {
	h := &f.h
	h.time = time.Time{}
	if f.clk.syslogHeader(b, h, false) && !h.time.IsZero() {
		return h.time
	}
	if t, _, ok := f.clk.slashStamp(b); ok {
		return t
	}
	if t, _, ok := f.clk.isoStamp(b); ok {
		return t
	}
	if i := indexByte(b, '['); i >= 0 {
		if t, _, ok := f.clk.clfStamp(b[i+1:]); ok {
			return t
		}
	}
	if !fallback.IsZero() {
		return fallback
	}
	return f.o.Now()
}
