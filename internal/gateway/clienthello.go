package gateway

import (
	"errors"
	"io"
)

// The gateway reads each TLS connection's ClientHello itself, before
// crypto/tls sees a byte of it, to decide by server name whether the
// connection gets a handshake at all (see screenHello). crypto/tls checks
// the name only after version, ALPN, suite and group negotiation, each of
// which can answer a stranger with an alert; closing before that leaves a
// client that names no site with nothing to fingerprint.
//
// The parser reads what RFC 8446 (5.1, 4.1.2) and RFC 6066 (3) allow: a
// handshake message fragmented over any number of records, records split
// over any number of reads. Its limits are crypto/tls's own, so that no
// hello crypto/tls would serve is refused for its size.

const (
	recordTypeHandshake     = 0x16
	handshakeTypeClientHelo = 1
	extServerName           = 0
	// maxHelloRecord is the largest record crypto/tls reads before a
	// version is agreed (maxCiphertext).
	maxHelloRecord = 1<<14 + 2048
	// maxHelloMsg is crypto/tls's limit on one handshake message.
	maxHelloMsg = 1 << 16
	// maxHelloRaw bounds what is read for one hello, record headers
	// included, however it is fragmented: the message, one record's
	// worth of overshoot, and a generous allowance of headers.
	maxHelloRaw = maxHelloMsg + 4 + maxHelloRecord + 4096
)

var (
	errNotHandshake = errors.New("first record is not a TLS handshake")
	errBadHello     = errors.New("malformed ClientHello")
	errHelloTooBig  = errors.New("ClientHello too large")
)

// clientHello is what the gateway needs from a ClientHello.
type clientHello struct {
	serverName string // the host_name as sent (not normalised); "" when absent
}

// readClientHello reads records from r until it holds a whole ClientHello
// and returns every byte read (to be replayed to crypto/tls) and the parsed
// hello. On error, raw holds what was read so far.
func readClientHello(r io.Reader) (raw []byte, h clientHello, err error) {
	var msg []byte // the handshake message, defragmented
	var hdr [5]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return raw, h, err
		}
		raw = append(raw, hdr[:]...)
		// Any record version 3.x: TLS 1.3 hellos say 3.1, some say 3.3.
		// SSLv2-framed hellos (first byte 0x80) crypto/tls refuses too.
		if hdr[0] != recordTypeHandshake || hdr[1] != 3 {
			return raw, h, errNotHandshake
		}
		n := int(hdr[3])<<8 | int(hdr[4])
		if n == 0 || n > maxHelloRecord {
			return raw, h, errBadHello
		}
		if len(raw)+n > maxHelloRaw {
			return raw, h, errHelloTooBig
		}
		start := len(raw)
		raw = append(raw, make([]byte, n)...)
		if _, err := io.ReadFull(r, raw[start:]); err != nil {
			return raw[:start], h, err
		}
		msg = append(msg, raw[start:]...)
		if len(msg) < 4 {
			continue
		}
		if msg[0] != handshakeTypeClientHelo {
			return raw, h, errBadHello
		}
		l := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
		if l > maxHelloMsg {
			return raw, h, errHelloTooBig
		}
		if len(msg) >= 4+l {
			h, err = parseClientHello(msg[4 : 4+l])
			return raw, h, err
		}
	}
}

// parseClientHello parses a ClientHello's body (RFC 8446 4.1.2) as far as
// the server name, with crypto/tls's structural rules: lengths that add up,
// no duplicate extension, at most one host_name.
func parseClientHello(b []byte) (clientHello, error) {
	var h clientHello
	s := helloReader(b)
	if !s.skip(2+32) || // legacy_version, random
		!s.skipVec8(255) || // legacy_session_id (crypto/tls checks its length later)
		!s.skipVec16Even() || // cipher_suites
		!s.skipVec8(255) { // legacy_compression_methods
		return h, errBadHello
	}
	if len(s) == 0 {
		return h, nil // no extensions: no server name
	}
	exts, ok := s.vec16()
	if !ok || len(s) != 0 {
		return h, errBadHello
	}
	seen := map[uint16]bool{}
	for len(exts) > 0 {
		typ, ok1 := exts.u16()
		data, ok2 := exts.vec16()
		if !ok1 || !ok2 || seen[typ] {
			return h, errBadHello
		}
		seen[typ] = true
		if typ != extServerName {
			continue
		}
		list, ok := data.vec16()
		if !ok || len(data) != 0 || len(list) == 0 {
			return h, errBadHello
		}
		for len(list) > 0 {
			typ, ok1 := list.u8()
			name, ok2 := list.vec16()
			if !ok1 || !ok2 || len(name) == 0 {
				return h, errBadHello
			}
			if typ != 0 {
				continue // not a host_name
			}
			if h.serverName != "" {
				return h, errBadHello // two host_names
			}
			h.serverName = string(name)
		}
	}
	return h, nil
}

// helloReader is a cursor over a hello's bytes; each method consumes what
// it reads and reports false when b is too short.
type helloReader []byte

func (s *helloReader) skip(n int) bool {
	if len(*s) < n {
		return false
	}
	*s = (*s)[n:]
	return true
}

func (s *helloReader) u8() (byte, bool) {
	if len(*s) < 1 {
		return 0, false
	}
	v := (*s)[0]
	*s = (*s)[1:]
	return v, true
}

func (s *helloReader) u16() (uint16, bool) {
	if len(*s) < 2 {
		return 0, false
	}
	v := uint16((*s)[0])<<8 | uint16((*s)[1])
	*s = (*s)[2:]
	return v, true
}

func (s *helloReader) vec16() (helloReader, bool) {
	n, ok := s.u16()
	if !ok || len(*s) < int(n) {
		return nil, false
	}
	v := (*s)[:n]
	*s = (*s)[n:]
	return v, true
}

func (s *helloReader) skipVec8(max int) bool {
	n, ok := s.u8()
	return ok && int(n) <= max && s.skip(int(n))
}

func (s *helloReader) skipVec16Even() bool {
	v, ok := s.vec16()
	return ok && len(v)%2 == 0
}
