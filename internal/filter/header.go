package filter

import (
	"time"
)

// header is a log line's syslog header, split off its message.
type header struct {
	time  time.Time
	ident []byte
	pid   int
	msg   []byte
}

// syslogHeader splits a syslog line into its header and message. It reads
// RFC 3164 ("Nov 21 05:42:36 host sshd[123]: msg", the host optional),
// RFC 3339 stamps as rsyslog writes them ("2026-11-21T05:42:36.123+00:00
// host sshd[123]: msg"), RFC 5424 ("<38>1 2019-07-08T17:40:16-04:00 host
// sshd 57915 - - msg") and, when noStamp is set, the stampless form a
// journal reader prints ("host sshd[123]: msg"), whose time is the
// caller's.
func (c *clock) syslogHeader(b []byte, h *header, noStamp bool) bool {
	if len(b) > 0 && b[0] == '<' {
		i := 1
		for i < len(b) && i < 5 && digit(b[i]) {
			i++
		}
		if i == 1 || i >= len(b) || b[i] != '>' {
			return false
		}
		b = b[i+1:]
		if len(b) > 2 && b[0] == '1' && b[1] == ' ' {
			return c.rfc5424(b[2:], h)
		}
	}
	if len(b) == 0 {
		return false
	}
	switch {
	case digit(b[0]):
		t, n, ok := c.isoStamp(b)
		if !ok {
			return false
		}
		h.time, b = t, b[n:]
	case b[0] >= 'A' && b[0] <= 'S':
		if t, n, ok := c.bsdStamp(b); ok {
			h.time, b = t, b[n:]
		} else if !noStamp {
			return false
		} else {
			return tag(b, h)
		}
	default:
		if !noStamp {
			return false
		}
		return tag(b, h)
	}
	if len(b) == 0 || b[0] != ' ' {
		return false
	}
	return tag(b[1:], h)
}

// tag reads "[host ]ident[pid]: msg" (also "ident: msg", "[ident]: msg"
// and "[ident] msg").
func tag(b []byte, h *header) bool {
	sp := indexByte(b, ' ')
	if sp < 0 {
		sp = len(b)
	}
	if !tagToken(b[:sp], h) {
		// The first token is the host; the tag follows.
		if sp == len(b) {
			return false
		}
		b = b[sp+1:]
		sp = indexByte(b, ' ')
		if sp < 0 {
			sp = len(b)
		}
		if !tagToken(b[:sp], h) {
			return false
		}
	}
	if sp < len(b) {
		h.msg = b[sp+1:]
	} else {
		h.msg = b[len(b):]
	}
	return true
}

// tagToken reads one tag token: "ident[pid]:", "ident:", "[ident]:",
// "[ident]". A host name never ends in ':' or holds '[', so a token
// that parses is the tag.
func tagToken(t []byte, h *header) bool {
	if len(t) == 0 {
		return false
	}
	if t[0] == '[' {
		t = t[1:]
		if len(t) > 0 && t[len(t)-1] == ':' {
			t = t[:len(t)-1]
		}
		if len(t) < 2 || t[len(t)-1] != ']' || !identBytes(t[:len(t)-1]) {
			return false
		}
		h.ident, h.pid = t[:len(t)-1], 0
		return true
	}
	if t[len(t)-1] != ':' {
		return false
	}
	t = t[:len(t)-1]
	pid := 0
	if n := len(t); n > 0 && t[n-1] == ']' {
		open := lastIndexByte(t, '[')
		if open < 1 || open+2 > n-1 {
			return false
		}
		for _, c := range t[open+1 : n-1] {
			if !digit(c) || pid > 1<<30 {
				return false
			}
			pid = pid*10 + int(c-'0')
		}
		t = t[:open]
	}
	if !identBytes(t) {
		return false
	}
	h.ident, h.pid = t, pid
	return true
}

func identBytes(b []byte) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', digit(c), c == '-', c == '_', c == '.', c == '/', c == '@':
		default:
			return false
		}
	}
	return true
}

// rfc5424 reads "TIMESTAMP HOST APP PROCID MSGID SD MSG" (after "<PRI>1 ").
func (c *clock) rfc5424(b []byte, h *header) bool {
	var ok bool
	var n int
	if len(b) > 0 && b[0] == '-' {
		n = 1
	} else if h.time, n, ok = c.isoStamp(b); !ok {
		return false
	}
	b = b[n:]
	var f [4][]byte // host, app, procid, msgid
	for i := range f {
		if len(b) == 0 || b[0] != ' ' {
			return false
		}
		b = b[1:]
		sp := indexByte(b, ' ')
		if sp <= 0 {
			return false
		}
		f[i], b = b[:sp], b[sp:]
	}
	if !identBytes(f[1]) {
		return false
	}
	h.ident, h.pid = f[1], 0
	if f[2][0] != '-' {
		for _, c := range f[2] {
			if !digit(c) || h.pid > 1<<30 {
				return false
			}
			h.pid = h.pid*10 + int(c-'0')
		}
	}
	// Structured data: "-" or one or more [id k="v" …] elements; values
	// may hold escaped or (against the RFC, as in the wild) bare brackets
	// inside their quotes.
	if len(b) < 2 || b[0] != ' ' {
		return false
	}
	b = b[1:]
	if b[0] == '-' {
		b = b[1:]
	} else {
		for len(b) > 0 && b[0] == '[' {
			i, quoted := 1, false
			for ; i < len(b); i++ {
				switch c := b[i]; {
				case c == '\\' && quoted:
					i++
				case c == '"':
					quoted = !quoted
				case c == ']' && !quoted:
					goto closed
				}
			}
			return false
		closed:
			b = b[i+1:]
		}
	}
	if len(b) > 0 {
		if b[0] != ' ' {
			return false
		}
		b = b[1:]
	}
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		b = b[3:]
	}
	h.msg = b
	return true
}
