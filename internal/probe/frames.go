package probe

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// A frame function says whether an answer read so far is complete, so a
// reader returns the moment the message is whole instead of waiting for
// the server to fall silent (a server that keeps the connection open
// after answering would otherwise cost a quiet period per request). Each
// takes any bytes: true also when the bytes cannot be the protocol's (it
// is not this protocol; reading on tells nothing more).
type frameFunc func(b []byte) bool

// lineFrame: one line (an error line from a text protocol, a banner).
func lineFrame(b []byte) bool { return bytes.IndexByte(b, '\n') >= 0 }

// bannerFrame: a greeting is whole after its last line (SMTP/FTP "220-"
// continuation lines go on), or a MySQL packet's declared length.
func bannerFrame(b []byte) bool {
	if len(b) >= 4 && b[3] == 0 {
		n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		if n > 0 && len(b) >= 4+n {
			return true
		}
		if n > 0 && n < 1<<16 && !bytes.Contains(b, []byte("\n")) {
			return false // a MySQL greeting still arriving
		}
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return false
	}
	body := b[:len(b)-1]
	last := body[bytes.LastIndexByte(body, '\n')+1:]
	return !(len(last) >= 4 && last[3] == '-' && isDigits(last[:3]))
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// respFrame: one RESP (Redis) reply: a line, or a bulk string whose
// length the first line declares.
func respFrame(b []byte) bool {
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 {
		return bytes.IndexByte(b, '\n') >= 0
	}
	if len(b) == 0 || b[0] != '$' {
		return true
	}
	n, err := strconv.Atoi(string(b[1:i]))
	if err != nil || n < 0 {
		return true
	}
	return len(b) >= i+2+n+2
}

// pgFrame: PostgreSQL messages after a startup message, whole up to the
// one that ends the server's turn: an error, a request for a password
// (the server then waits), or ReadyForQuery.
func pgFrame(b []byte) bool {
	for len(b) >= 5 {
		typ := b[0]
		n := int(binary.BigEndian.Uint32(b[1:5]))
		if n < 4 || n > 1<<20 || typ < 'A' || typ > 'Z' {
			return true // not PostgreSQL
		}
		if len(b) < 1+n {
			return false
		}
		switch typ {
		case 'E', 'Z':
			return true
		case 'R':
			if n >= 8 && binary.BigEndian.Uint32(b[5:9]) != 0 {
				return true
			}
		}
		b = b[1+n:]
	}
	return false
}

// mongoFrame: an OP_MSG reply, whole at its declared length.
func mongoFrame(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	n := int(binary.LittleEndian.Uint32(b[0:4]))
	if n < 16 || n > 48<<20 {
		return true
	}
	return len(b) >= n
}

// memcachedFrame: the answer to "stats", whole at "END", or an error line.
func memcachedFrame(b []byte) bool {
	if !bytes.HasPrefix(b, []byte("STAT ")) {
		return lineFrame(b)
	}
	return bytes.HasSuffix(b, []byte("END\r\n"))
}

// lengthFrame16: a message behind a two-byte big-endian length (DNS over
// TCP).
func lengthFrame16(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	return len(b) >= 2+int(binary.BigEndian.Uint16(b))
}

// anyFrame: one byte is the whole answer (PostgreSQL's SSLRequest).
func anyFrame(b []byte) bool { return len(b) > 0 }
