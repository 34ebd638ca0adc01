package host

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// tcpListen is the kernel's TCP_LISTEN state as printed in /proc/net/tcp.
const tcpListen = 0x0A

// Socket is one line of /proc/net/{tcp,tcp6,udp,udp6}.
type Socket struct {
	Proto  string // "tcp" or "udp"
	Local  netip.AddrPort
	Remote netip.AddrPort
	State  uint8 // kernel TCP state number (TCP_LISTEN = 0x0A, TCP_CLOSE = 0x07)
	UID    int
	Inode  uint64
	// V6Only is IPV6_V6ONLY of an IPv6 socket, as sock_diag reports it
	// (V6OnlyKnown); /proc/net does not show it.
	V6Only, V6OnlyKnown bool
}

// Listening reports whether s accepts traffic from anyone: a TCP socket in
// LISTEN, or a UDP socket that is bound but not connected.
func (s Socket) Listening() bool {
	if s.Proto == "tcp" {
		return s.State == tcpListen
	}
	return s.Remote.Port() == 0 && s.Remote.Addr().IsUnspecified()
}

// ParseProcNet parses the contents of /proc/net/<proto>, where proto is
// one of tcp, tcp6, udp, udp6. Addresses are printed by the kernel as
// 32-bit words in host byte order, so this parser is right for the
// machine it runs on (every little-endian VPS architecture). A malformed
// line is an error naming the line; nothing in the input can make it
// panic or loop.
func ParseProcNet(r io.Reader, proto string) ([]Socket, error) {
	var out []Socket
	err := parseProcNet(r, proto, false, func(s Socket) { out = append(out, s) })
	return out, err
}

// parseProcNet calls fn for every socket, or only for listening ones when
// listenOnly is set; skipping the others before their addresses are
// decoded keeps a busy host's connection table cheap to read.
func parseProcNet(r io.Reader, proto string, listenOnly bool, fn func(Socket)) error {
	var base string
	var addrLen int
	switch proto {
	case "tcp":
		base, addrLen = "tcp", 8
	case "tcp6":
		base, addrLen = "tcp", 32
	case "udp":
		base, addrLen = "udp", 8
	case "udp6":
		base, addrLen = "udp", 32
	default:
		return fmt.Errorf("parse /proc/net: unknown protocol %q (want tcp, tcp6, udp or udp6)", proto)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	var f [][]byte
	for n := 1; sc.Scan(); n++ {
		f = splitFields(sc.Bytes(), f[:0], 10)
		if len(f) == 0 || string(f[0]) == "sl" {
			continue
		}
		if len(f) < 10 {
			return fmt.Errorf("parse /proc/net/%s line %d: want at least 10 fields, have %d", proto, n, len(f))
		}
		st, err := strconv.ParseUint(string(f[3]), 16, 8)
		if err != nil {
			return fmt.Errorf("parse /proc/net/%s line %d: state %q: bad hex", proto, n, f[3])
		}
		s := Socket{Proto: base, State: uint8(st)}
		if listenOnly && base == "tcp" && s.State != tcpListen {
			continue
		}
		if s.Remote, err = parseHexAddrPort(f[2], addrLen); err != nil {
			return fmt.Errorf("parse /proc/net/%s line %d: remote address: %w", proto, n, err)
		}
		if listenOnly && !s.Listening() {
			continue
		}
		if s.Local, err = parseHexAddrPort(f[1], addrLen); err != nil {
			return fmt.Errorf("parse /proc/net/%s line %d: local address: %w", proto, n, err)
		}
		uid, err := strconv.ParseUint(string(f[7]), 10, 32)
		if err != nil {
			return fmt.Errorf("parse /proc/net/%s line %d: uid %q: not a number", proto, n, f[7])
		}
		s.UID = int(uid)
		if s.Inode, err = strconv.ParseUint(string(f[9]), 10, 64); err != nil {
			return fmt.Errorf("parse /proc/net/%s line %d: inode %q: not a number", proto, n, f[9])
		}
		fn(s)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read /proc/net/%s: %w", proto, err)
	}
	return nil
}

// parseHexAddrPort decodes "0100007F:0277": the address as 32-bit words in
// host byte order, then the port in plain hex.
func parseHexAddrPort(b []byte, addrLen int) (netip.AddrPort, error) {
	i := bytes.IndexByte(b, ':')
	if i != addrLen || len(b) != addrLen+5 {
		return netip.AddrPort{}, fmt.Errorf("%q: want %d hex digits, a colon and 4 hex digits", b, addrLen)
	}
	var raw [16]byte
	for w := 0; w < addrLen/8; w++ {
		v, ok := parseHex32(b[w*8 : w*8+8])
		if !ok {
			return netip.AddrPort{}, fmt.Errorf("%q: bad hex", b)
		}
		binary.NativeEndian.PutUint32(raw[w*4:], v)
	}
	port, ok := parseHex32(b[i+1:])
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%q: bad hex port", b)
	}
	var a netip.Addr
	if addrLen == 8 {
		a = netip.AddrFrom4([4]byte(raw[:4]))
	} else {
		a = netip.AddrFrom16(raw)
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// parseHex32 parses up to 8 hex digits without allocating.
func parseHex32(b []byte) (uint32, bool) {
	if len(b) == 0 || len(b) > 8 {
		return 0, false
	}
	var v uint32
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(c)
	}
	return v, true
}

// splitFields appends the first max whitespace-separated fields of line to
// dst and returns it; later fields are ignored. Reusing dst across lines
// keeps parsing allocation-free.
func splitFields(line []byte, dst [][]byte, max int) [][]byte {
	for len(line) > 0 && len(dst) < max {
		i := 0
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		line = line[i:]
		if len(line) == 0 {
			break
		}
		j := 0
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		dst = append(dst, line[:j])
		line = line[j:]
	}
	return dst
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}
