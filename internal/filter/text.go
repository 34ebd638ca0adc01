package filter

import (
	"bytes"
	"encoding/binary"
	"net/netip"
)

// Byte-level helpers: the built-in filters find fixed markers with
// bytes.Index and read fields at known offsets, without regular
// expressions and without allocating.

func indexByte(b []byte, c byte) int     { return bytes.IndexByte(b, c) }
func lastIndexByte(b []byte, c byte) int { return bytes.LastIndexByte(b, c) }

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }
func hasSuffix(b []byte, s string) bool { return len(b) >= len(s) && string(b[len(b)-len(s):]) == s }

func cutPrefix(b []byte, s string) ([]byte, bool) {
	if hasPrefix(b, s) {
		return b[len(s):], true
	}
	return b, false
}

func cutSuffix(b []byte, s string) ([]byte, bool) {
	if hasSuffix(b, s) {
		return b[:len(b)-len(s)], true
	}
	return b, false
}

// index finds marker m (a package-level []byte) in b.
func index(b, m []byte) int { return bytes.Index(b, m) }

// lastIndex finds the last marker m in b.
func lastIndex(b, m []byte) int { return bytes.LastIndex(b, m) }

func trimSpaceRight(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// token returns b up to its first space.
func token(b []byte) []byte {
	if i := indexByte(b, ' '); i >= 0 {
		return b[:i]
	}
	return b
}

// lastToken splits b at its last space: what comes before and the token.
func lastToken(b []byte) (before, tok []byte) {
	i := lastIndexByte(b, ' ')
	return b[:max(i, 0)], b[i+1:]
}

// digits reports whether b is a non-empty run of at most 10 digits.
func digits(b []byte) bool {
	if len(b) == 0 || len(b) > 10 {
		return false
	}
	for _, c := range b {
		if !digit(c) {
			return false
		}
	}
	return true
}

// cutPort removes a trailing " port N".
func cutPort(b []byte) []byte {
	i := lastIndexByte(b, ' ')
	if i >= 5 && digits(b[i+1:]) && string(b[i-5:i]) == " port" {
		return b[:i-5]
	}
	return b
}

// clean reports whether b is free of control characters (other than
// tab) and DEL. sshd escapes them in what it logs (vis(3)), so a line
// that holds one was not written by sshd as it stands: a newline
// smuggled through a journal message, an ANSI escape meant for a
// terminal. Such a line is never attributed.
func clean(b []byte) bool {
	// Eight bytes at a time: a word has a byte below 0x20 if
	// (x - 0x20…) & ^x & 0x80… is not zero, and a 0x7f if x ^ 0x7f… has
	// a zero byte. A tab is allowed, so a flagged word is looked at byte
	// by byte.
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		y := x ^ (ones * 0x7f)
		if (x-ones*0x20)&^x&highs != 0 || (y-ones)&^y&highs != 0 {
			if !cleanBytes(b[:8]) {
				return false
			}
		}
		b = b[8:]
	}
	return cleanBytes(b)
}

func cleanBytes(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// addrTok parses an address token strictly; host is the token when it is
// not an address (a host name, a malformed or zoned address), for display.
func addrTok(tok []byte) (a netip.Addr, ok bool) {
	a, ok = parseAddr(tok)
	if !ok || !attributable(a) {
		return netip.Addr{}, false
	}
	return a, true
}

// display renders attacker-controlled bytes for humans: printable ASCII
// as is, anything else as \xHH, cut at max bytes.
func display(b []byte, max int) string {
	ok := len(b) <= max
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			ok = false
			break
		}
	}
	if ok {
		return string(b)
	}
	out := make([]byte, 0, min(len(b), max)+8)
	for _, c := range b {
		if len(out) >= max {
			out = append(out, "..."...)
			break
		}
		switch {
		case c < 0x20 || c >= 0x7f:
			out = append(out, `\x`...)
			out = append(out, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

// maxUser bounds the user names carried in failures.
const maxUser = 64

// interner returns strings for byte slices seen before without
// allocating: user names and methods repeat ("root", "admin",
// "password"). It holds at most interned entries, then allocates.
type interner struct{ m map[string]string }

const interned = 1024

func (in *interner) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	s := display(b, maxUser)
	if in.m == nil {
		in.m = make(map[string]string, 64)
	}
	if len(in.m) < interned && len(b) <= maxUser {
		in.m[string(b)] = s
	}
	return s
}

// tokenChar reports whether c can be part of an address-like token:
// letters, digits and the characters of addresses, zones and names.
func tokenChar(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z' || c == '.' || c == ':' || c == '_' || c == '%'
}

// delimited reports whether b[hs:he], an address, is a whole token of b:
// glued to other token characters ("ip=1.2.3.4A", "x1.2.3.4") it is part
// of some other word, and an attacker who can write that word must not
// place an address with it. A ':' right after it is punctuation when
// nothing of a token follows, and an IPv4 address may carry ":PORT".
func delimited(b []byte, hs, he int, v4 bool) bool {
	if hs > 0 && tokenChar(b[hs-1]) {
		return false
	}
	if he >= len(b) || !tokenChar(b[he]) {
		return true
	}
	if b[he] != ':' {
		return false
	}
	i := he + 1
	if v4 {
		for i < len(b) && digit(b[i]) && i-he <= 5 {
			i++
		}
	}
	return i >= len(b) || !tokenChar(b[i])
}
