package logwatch

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// scanEntry is parseEntry's fast path: a scanner for exactly the JSON
// journalctl writes (one flat object whose values are strings, null,
// arrays of byte values, or arrays of those for repeated fields), with
// a few allocations per entry instead of a map of raw messages. It
// reports ok=false for anything else (numbers, objects, escapes it does
// not know, invalid UTF-8), which parseEntry then hands to encoding/json,
// so the two agree on every input the fast path accepts (FuzzParseEntry
// checks that).
func scanEntry(line []byte, maxText int) (entry, bool) {
	var sc entryScanner
	return sc.scan(line, maxText)
}

// entryScanner keeps the decoding buffer from one entry to the next, so
// that decoding allocates only what the entry keeps.
type entryScanner struct{ buf []byte }

func (sc *entryScanner) scan(line []byte, maxText int) (entry, bool) {
	s := jsonScan{b: line, buf: sc.buf[:0]}
	e, ok := s.entry(maxText)
	if cap(s.buf) <= 64<<10 {
		sc.buf = s.buf
	}
	return e, ok
}

func (s *jsonScan) entry(maxText int) (e entry, ok bool) {
	type ref struct {
		key  string
		a, b int
	}
	var refsArr [24]ref
	refs := refsArr[:0]
	cur, real, msg := [2]int{-1, -1}, [2]int{-1, -1}, [2]int{-1, -1}
	s.ws()
	if !s.eat('{') {
		return e, false
	}
	s.ws()
	if s.eat('}') {
		return e, s.end()
	}
	for {
		s.ws()
		ka := len(s.buf)
		if !s.str() {
			return e, false
		}
		key := fieldKey(s.buf[ka:])
		s.buf = s.buf[:ka]
		s.ws()
		if !s.eat(':') {
			return e, false
		}
		s.ws()
		va := len(s.buf)
		present, vok := s.value(0)
		if !vok {
			return e, false
		}
		vb := len(s.buf)
		if !present {
			// null: a key given again drops its earlier value, as the
			// map encoding/json decodes into would.
			va, vb = -1, -1
		}
		switch {
		case key == "__CURSOR":
			cur = [2]int{va, vb}
		case key == "__REALTIME_TIMESTAMP":
			real = [2]int{va, vb}
		case key == "MESSAGE":
			msg = [2]int{va, vb}
		case strings.HasPrefix(key, "__"):
		default:
			i := slices.IndexFunc(refs, func(r ref) bool { return r.key == key })
			switch {
			case i >= 0 && va < 0:
				refs = slices.Delete(refs, i, i+1)
			case i >= 0:
				refs[i].a, refs[i].b = va, vb
			case va >= 0:
				refs = append(refs, ref{key, va, vb})
			}
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		if !s.eat('}') || !s.end() {
			return e, false
		}
		break
	}
	if len(refs) > maxFields {
		return e, false // which ones to keep is encoding/json's business
	}
	if cur[0] >= 0 {
		e.cursor = string(s.buf[cur[0]:cur[1]])
	}
	if real[0] >= 0 {
		if us, ok := decimal(s.buf[real[0]:real[1]]); ok {
			e.realtime = time.UnixMicro(us)
		}
	}
	if msg[0] >= 0 {
		m := s.buf[msg[0]:msg[1]]
		if len(m) > maxText {
			m, e.cut = m[:maxText], true
		}
		e.message = append([]byte(nil), m...)
	}
	if len(refs) > 0 {
		all := string(s.buf) // one allocation for every value
		e.fields = make(map[string]string, len(refs))
		for _, r := range refs {
			e.fields[r.key] = all[r.a:min(r.b, r.a+maxText)]
		}
	}
	return e, true
}

// decimal parses a non-negative decimal int64.
func decimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// fieldKey returns the key as a string, without allocating for the
// fields journald writes most.
func fieldKey(b []byte) string {
	switch string(b) {
	case "__CURSOR":
		return "__CURSOR"
	case "__REALTIME_TIMESTAMP":
		return "__REALTIME_TIMESTAMP"
	case "__MONOTONIC_TIMESTAMP":
		return "__MONOTONIC_TIMESTAMP"
	case "MESSAGE":
		return "MESSAGE"
	case "_BOOT_ID":
		return "_BOOT_ID"
	case "_PID":
		return "_PID"
	case "SYSLOG_PID":
		return "SYSLOG_PID"
	case "SYSLOG_IDENTIFIER":
		return "SYSLOG_IDENTIFIER"
	case "_SYSTEMD_UNIT":
		return "_SYSTEMD_UNIT"
	case "_COMM":
		return "_COMM"
	case "_HOSTNAME":
		return "_HOSTNAME"
	case "PRIORITY":
		return "PRIORITY"
	case "SYSLOG_FACILITY":
		return "SYSLOG_FACILITY"
	case "_TRANSPORT":
		return "_TRANSPORT"
	case "_UID":
		return "_UID"
	case "_GID":
		return "_GID"
	}
	return string(b)
}

// jsonScan decodes values into buf, back to back.
type jsonScan struct {
	b   []byte
	i   int
	buf []byte
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScan) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (s *jsonScan) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// value decodes a string, a byte array or a repeated field's array (its
// first value) into buf; null is absent. depth 1 is inside a repeated
// field's array, where only strings and byte arrays may stand.
func (s *jsonScan) value(depth int) (present, ok bool) {
	if s.i >= len(s.b) {
		return false, false
	}
	switch s.b[s.i] {
	case '"':
		return true, s.str()
	case 'n':
		if strings.HasPrefix(string(s.b[s.i:min(s.i+4, len(s.b))]), "null") && depth == 0 {
			s.i += 4
			return false, true
		}
		return false, false
	case '[':
		s.i++
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] == ']' {
			return false, false // empty: rare, left to encoding/json
		}
		if c := s.b[s.i]; c == '"' || c == '[' {
			if depth > 0 {
				return false, false
			}
			return true, s.repeated()
		}
		return true, s.bytes()
	}
	return false, false
}

// repeated decodes the first value of a repeated field's array and skips
// the others.
func (s *jsonScan) repeated() bool {
	if present, ok := s.value(1); !ok || !present {
		return false
	}
	keep := len(s.buf)
	for {
		s.ws()
		if s.eat(']') {
			s.buf = s.buf[:keep]
			return true
		}
		if !s.eat(',') {
			return false
		}
		s.ws()
		if present, ok := s.value(1); !ok || !present {
			return false
		}
	}
}

// bytes decodes an array of byte values, its '[' already read.
func (s *jsonScan) bytes() bool {
	for {
		s.ws()
		n, digits := 0, 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			n = n*10 + int(s.b[s.i]-'0')
			s.i++
			digits++
			if digits > 3 {
				return false
			}
		}
		if digits == 0 || n > 255 || (digits > 1 && s.b[s.i-digits] == '0') {
			return false // not a byte, or not JSON (leading zero)
		}
		s.buf = append(s.buf, byte(n))
		s.ws()
		if s.eat(']') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// str decodes a JSON string, its opening quote at s.i.
func (s *jsonScan) str() bool {
	if !s.eat('"') {
		return false
	}
	start, ascii := s.i, true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(s.b[start:s.i]) {
				return false // encoding/json would replace the bad bytes
			}
			s.buf = append(s.buf, s.b[start:s.i]...)
			s.i++
			return true
		case c == '\\':
			if !ascii && !utf8.Valid(s.b[start:s.i]) {
				return false
			}
			s.buf = append(s.buf, s.b[start:s.i]...)
			if !s.escape() {
				return false
			}
			start, ascii = s.i, true
		case c < 0x20:
			return false
		default:
			if c >= 0x80 {
				ascii = false
			}
			s.i++
		}
	}
	return false
}

// escape decodes the escape sequence at s.i.
func (s *jsonScan) escape() bool {
	if s.i+1 >= len(s.b) {
		return false
	}
	c := s.b[s.i+1]
	s.i += 2
	switch c {
	case '"', '\\', '/':
		s.buf = append(s.buf, c)
	case 'b':
		s.buf = append(s.buf, '\b')
	case 'f':
		s.buf = append(s.buf, '\f')
	case 'n':
		s.buf = append(s.buf, '\n')
	case 'r':
		s.buf = append(s.buf, '\r')
	case 't':
		s.buf = append(s.buf, '\t')
	case 'u':
		r, ok := s.hex4()
		if !ok {
			return false
		}
		if utf8.ValidRune(r) {
			s.buf = utf8.AppendRune(s.buf, r)
			return true
		}
		// A surrogate: only a valid pair is taken here; encoding/json
		// decides what the rest means.
		if r < 0xd800 || r > 0xdbff || s.i+1 >= len(s.b) || s.b[s.i] != '\\' || s.b[s.i+1] != 'u' {
			return false
		}
		s.i += 2
		r2, ok := s.hex4()
		if !ok || r2 < 0xdc00 || r2 > 0xdfff {
			return false
		}
		s.buf = utf8.AppendRune(s.buf, (r-0xd800)<<10+(r2-0xdc00)+0x10000)
	default:
		return false
	}
	return true
}

func (s *jsonScan) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}
