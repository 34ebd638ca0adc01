package probe

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The readers here parse what a server sent, byte slices already read
// under a size limit and a deadline: every one must take any input (they
// are fuzzed) and say "not this protocol" rather than fail loudly.

// maxRead bounds every read from a probed server.
const maxRead = 64 << 10

// Clean makes server-sent text safe to print: control characters and
// invalid UTF-8 become '.', and it is cut to n runes.
func Clean(b []byte, n int) string {
	var sb strings.Builder
	for i := 0; i < len(b) && n > 0; {
		r, size := utf8.DecodeRune(b[i:])
		i += size
		switch {
		case r == utf8.RuneError, r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0, r == 0x2028, r == 0x2029, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			sb.WriteByte('.')
		default:
			sb.WriteRune(r)
		}
		n--
	}
	return sb.String()
}

// Banner is what a server that speaks first said, identified.
type Banner struct {
	Service string // "ssh", "mysql", "smtp", "ftp", "pop3", "imap", "" unknown
	Product string
	Version string
	Line    string // the first line, cleaned
}

// ParseBanner identifies a greeting the server sent before we said
// anything.
func ParseBanner(b []byte) Banner {
	line := b
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	out := Banner{Line: Clean(line, 200)}
	switch {
	case bytes.HasPrefix(b, []byte("SSH-")):
		out.Service = "ssh"
		// SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3
		parts := strings.SplitN(out.Line, "-", 3)
		if len(parts) == 3 {
			sw, _, _ := strings.Cut(parts[2], " ")
			out.Product, out.Version, _ = strings.Cut(sw, "_")
		}
		return out
	case bytes.HasPrefix(b, []byte("220")) && len(b) > 3 && (b[3] == ' ' || b[3] == '-'):
		up := strings.ToUpper(out.Line)
		switch {
		case strings.Contains(up, "FTP"):
			out.Service = "ftp"
		default:
			out.Service = "smtp"
		}
		return out
	case bytes.HasPrefix(b, []byte("+OK")):
		out.Service = "pop3"
		return out
	case bytes.HasPrefix(b, []byte("* OK")):
		out.Service = "imap"
		return out
	}
	if g, ok := ParseMySQLGreeting(b); ok {
		out.Service, out.Product, out.Version = "mysql", g.Product, g.Version
		out.Line = "MySQL protocol " + strconv.Itoa(int(g.Protocol)) + " " + g.Version
		return out
	}
	return out
}

// MySQLGreeting is a MySQL/MariaDB server's initial handshake packet.
type MySQLGreeting struct {
	Protocol byte
	Version  string
	Product  string // "MySQL" or "MariaDB"
	// Error is set when the server sent an error packet instead (e.g.
	// "Host is not allowed to connect"): it still says MySQL.
	Error string
}

// ParseMySQLGreeting reads a MySQL handshake (protocol 10) or an error
// packet sent in its place.
func ParseMySQLGreeting(b []byte) (MySQLGreeting, bool) {
	if len(b) < 5 {
		return MySQLGreeting{}, false
	}
	n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	if n < 1 || n > 1<<16 || b[3] != 0 {
		return MySQLGreeting{}, false
	}
	body := b[4:]
	if len(body) > n {
		body = body[:n]
	}
	switch body[0] {
	case 10:
		end := bytes.IndexByte(body[1:], 0)
		if end < 1 || end > 100 {
			return MySQLGreeting{}, false
		}
		v := string(body[1 : 1+end])
		for _, r := range v {
			if r < 0x20 || r > 0x7e {
				return MySQLGreeting{}, false
			}
		}
		g := MySQLGreeting{Protocol: 10, Version: v, Product: "MySQL"}
		if strings.Contains(strings.ToLower(v), "mariadb") {
			g.Product = "MariaDB"
		}
		return g, true
	case 0xff:
		if len(body) < 3 {
			return MySQLGreeting{}, false
		}
		msg := body[3:]
		if len(msg) > 0 && msg[0] == '#' && len(msg) >= 6 {
			msg = msg[6:]
		}
		if !utf8.Valid(msg) || len(msg) == 0 {
			return MySQLGreeting{}, false
		}
		return MySQLGreeting{Product: "MySQL", Error: Clean(msg, 200)}, true
	}
	return MySQLGreeting{}, false
}

// RedisReply is what a Redis server answered to PING.
type RedisReply struct {
	Open bool   // +PONG: no password needed
	Text string // the reply line, cleaned
}

// ParseRedisReply reads the answer to "PING\r\n". Redis is recognised by
// its RESP framing and wording: +PONG (no authentication), -NOAUTH
// (requirepass), -DENIED (protected mode).
func ParseRedisReply(b []byte) (RedisReply, bool) {
	if len(b) < 3 {
		return RedisReply{}, false
	}
	line := b
	i := bytes.Index(line, []byte("\r\n"))
	if i < 0 {
		return RedisReply{}, false
	}
	line = line[:i]
	r := RedisReply{Text: Clean(line, 300)}
	switch {
	case bytes.Equal(line, []byte("+PONG")):
		r.Open = true
		return r, true
	case bytes.HasPrefix(line, []byte("-NOAUTH")), bytes.HasPrefix(line, []byte("-DENIED")), bytes.HasPrefix(line, []byte("-WRONGPASS")):
		return r, true
	case bytes.HasPrefix(line, []byte("-ERR")) && bytes.Contains(bytes.ToLower(line), []byte("auth")):
		return r, true
	}
	return RedisReply{}, false
}

// RedisInfo picks the server's version from an INFO reply ("$N\r\n# Server\r\nredis_version:7.0.15\r\n…").
func RedisInfo(b []byte) (version string) {
	for _, l := range bytes.Split(b, []byte("\r\n")) {
		if v, ok := bytes.CutPrefix(l, []byte("redis_version:")); ok {
			return Clean(v, 40)
		}
	}
	return ""
}

// PostgresReply is a PostgreSQL server's answer to a startup message.
type PostgresReply struct {
	// Auth is the authentication request code: 0 ok (no authentication:
	// trust), 3 cleartext password, 5 MD5, 10 SASL (SCRAM); -1 when the
	// server sent an error instead.
	Auth  int
	Error string
}

// ParsePostgresReply reads the first message after a StartupMessage: an
// AuthenticationRequest ('R') or an ErrorResponse ('E').
func ParsePostgresReply(b []byte) (PostgresReply, bool) {
	if len(b) < 5 {
		return PostgresReply{}, false
	}
	n := int(binary.BigEndian.Uint32(b[1:5]))
	if n < 4 || n > 1<<20 {
		return PostgresReply{}, false
	}
	body := b[5:]
	if len(body) > n-4 {
		body = body[:n-4]
	}
	switch b[0] {
	case 'R':
		if n < 8 || len(body) < 4 {
			return PostgresReply{}, false
		}
		code := int(binary.BigEndian.Uint32(body[:4]))
		switch code {
		case 0, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12:
			return PostgresReply{Auth: code}, true
		}
		return PostgresReply{}, false
	case 'E':
		// Fields: a type byte, a C string; 'M' is the message.
		var msg, sev string
		for f := body; len(f) > 1 && f[0] != 0; {
			end := bytes.IndexByte(f[1:], 0)
			if end < 0 {
				break
			}
			v := f[1 : 1+end]
			switch f[0] {
			case 'M':
				msg = Clean(v, 200)
			case 'S':
				sev = Clean(v, 20)
			}
			f = f[2+end:]
		}
		if msg == "" || sev == "" {
			return PostgresReply{}, false
		}
		return PostgresReply{Auth: -1, Error: msg}, true
	}
	return PostgresReply{}, false
}

// MongoReply is a MongoDB server's answer to an OP_MSG command.
type MongoReply struct {
	OK      bool // "ok": 1
	Fields  []string
	Version string // from buildInfo/hello when present
	Error   string // errmsg
}

// ParseMongoReply reads an OP_MSG (opcode 2013) reply with one body
// section and walks its top-level BSON fields.
func ParseMongoReply(b []byte) (MongoReply, bool) {
	if len(b) < 21 {
		return MongoReply{}, false
	}
	n := int(binary.LittleEndian.Uint32(b[0:4]))
	if n < 21 || n > 48<<20 || binary.LittleEndian.Uint32(b[12:16]) != 2013 {
		return MongoReply{}, false
	}
	if len(b) > n {
		b = b[:n]
	}
	if b[20] != 0 { // section kind 0: body
		return MongoReply{}, false
	}
	doc := b[21:]
	if len(doc) < 5 {
		return MongoReply{}, false
	}
	dn := int(binary.LittleEndian.Uint32(doc[0:4]))
	if dn < 5 || dn > len(doc) {
		return MongoReply{}, false
	}
	doc = doc[4 : dn-1]
	var r MongoReply
	for len(doc) > 0 {
		typ := doc[0]
		end := bytes.IndexByte(doc[1:], 0)
		if end < 0 {
			return MongoReply{}, false
		}
		name := string(doc[1 : 1+end])
		doc = doc[2+end:]
		r.Fields = append(r.Fields, Clean([]byte(name), 40))
		var size int
		switch typ {
		case 0x01, 0x09, 0x11, 0x12: // double, datetime, timestamp, int64
			size = 8
			if len(doc) >= 8 && name == "ok" && typ == 0x01 {
				r.OK = binary.LittleEndian.Uint64(doc[:8]) == 0x3ff0000000000000
			}
		case 0x10: // int32
			size = 4
			if len(doc) >= 4 && name == "ok" {
				r.OK = binary.LittleEndian.Uint32(doc[:4]) == 1
			}
		case 0x08: // bool
			size = 1
		case 0x0a: // null
			size = 0
		case 0x07: // ObjectId
			size = 12
		case 0x13: // decimal128
			size = 16
		case 0x02: // string
			if len(doc) < 4 {
				return MongoReply{}, false
			}
			sl := int(binary.LittleEndian.Uint32(doc[:4]))
			if sl < 1 || sl > len(doc)-4 {
				return MongoReply{}, false
			}
			v := doc[4 : 4+sl-1]
			switch name {
			case "version":
				r.Version = Clean(v, 40)
			case "errmsg":
				r.Error = Clean(v, 200)
			}
			size = 4 + sl
		case 0x03, 0x04, 0x05: // document, array, binary
			if len(doc) < 4 {
				return MongoReply{}, false
			}
			sl := int(binary.LittleEndian.Uint32(doc[:4]))
			if typ == 0x05 {
				sl += 5
			}
			if sl < 4 || sl > len(doc) {
				return MongoReply{}, false
			}
			size = sl
		default:
			return r, len(r.Fields) > 1
		}
		if size > len(doc) {
			return MongoReply{}, false
		}
		doc = doc[size:]
		if len(r.Fields) > 256 {
			break
		}
	}
	return r, true
}

// ParseMemcachedStats reads the answer to "stats\r\n": "STAT pid 123" lines.
func ParseMemcachedStats(b []byte) (version string, ok bool) {
	if !bytes.HasPrefix(b, []byte("STAT ")) {
		return "", false
	}
	for _, l := range bytes.Split(b, []byte("\r\n")) {
		if v, found := bytes.CutPrefix(l, []byte("STAT version ")); found {
			return Clean(v, 40), true
		}
	}
	return "", true
}
