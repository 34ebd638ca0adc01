package blocklist

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// ParseError is a line of a list that is not a network: the whole list is
// refused for it.
type ParseError struct {
	Line int
	Text string // the line, cut to 80 bytes
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("line %d: %s: %q", e.Line, e.Msg, e.Text)
}

// maxLine bounds one line: an address with a comment fits many times over.
const maxLine = 4096

// Parse reads a list: one network (CIDR) or address per line, IPv4 or
// IPv6; what follows ';' or '#' is a comment (Spamhaus DROP/EDROP's
// "1.2.3.0/24 ; SBL123", FireHOL's "# comments"); blank lines are skipped.
// Anything else on a line refuses the list, as does a list of more than
// maxEntries networks. Networks come back masked, IPv4-mapped IPv6
// addresses as IPv4, in the list's order, duplicates included.
func Parse(r io.Reader, maxEntries int) ([]netip.Prefix, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, maxLine), maxLine)
	var out []netip.Prefix
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		p, ok, err := parseLine(line)
		if err != nil {
			return nil, &ParseError{Line: n, Text: cut(line), Msg: err.Error()}
		}
		if !ok {
			continue
		}
		if len(out) >= maxEntries {
			return nil, &ParseError{Line: n, Text: cut(line), Msg: fmt.Sprintf("more than %d networks in one list", maxEntries)}
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{Line: n + 1, Msg: fmt.Sprintf("line longer than %d bytes", maxLine)}
		}
		return nil, err
	}
	return out, nil
}

// parseLine returns the network on a line; ok is false for a line with
// none (blank or comment).
func parseLine(line []byte) (netip.Prefix, bool, error) {
	if i := bytes.IndexAny(line, ";#"); i >= 0 {
		line = line[:i]
	}
	f := strings.Fields(string(line))
	switch len(f) {
	case 0:
		return netip.Prefix{}, false, nil
	case 1:
	default:
		return netip.Prefix{}, false, errors.New("expected one network per line (text after it must follow ';' or '#')")
	}
	s := f[0]
	if strings.Contains(s, "%") {
		return netip.Prefix{}, false, errors.New("an address with a zone is not a network")
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, false, errors.New("not a network (expected 192.0.2.0/24 or 2001:db8::/32)")
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, false, errors.New("not an address or network (expected 192.0.2.0/24 or 2001:db8::/32)")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			return netip.Prefix{}, false, errors.New("an IPv4-mapped network wider than IPv4")
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), bits)
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, false, errors.New("a /0 would block every address")
	}
	return p.Masked(), true, nil
}

func cut(b []byte) string {
	if len(b) > 80 {
		b = b[:80]
	}
	return string(b)
}
