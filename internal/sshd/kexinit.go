package sshd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// SSH message numbers used here (RFC 4253 section 12).
const (
	msgIgnore  = 2
	msgDebug   = 4
	msgKexInit = 20
)

// KexInit is what a peer offers in its SSH_MSG_KEXINIT (RFC 4253 section
// 7.1), in its order of preference. CS is client to server, SC server to
// client.
type KexInit struct {
	Kex                          []string
	HostKey                      []string
	CiphersCS, CiphersSC         []string
	MACsCS, MACsSC               []string
	CompressionCS, CompressionSC []string
	LanguagesCS, LanguagesSC     []string
	FirstKexFollows              bool
}

// StrictKex reports whether the server announces strict key exchange.
func (k KexInit) StrictKex() bool { return slices.Contains(k.Kex, StrictKexServer) }

// ParseKexInit parses an SSH_MSG_KEXINIT payload (starting with the
// message number 20, without packet framing). Names must be non-empty
// printable US-ASCII without commas (RFC 4251 section 6), which also keeps
// a hostile server from planting terminal escapes in a report.
func ParseKexInit(payload []byte) (KexInit, error) {
	var k KexInit
	if len(payload) < 1 || payload[0] != msgKexInit {
		return k, errors.New("kexinit: not an SSH_MSG_KEXINIT")
	}
	rest := payload[1:]
	if len(rest) < 16 {
		return k, errors.New("kexinit: truncated cookie")
	}
	rest = rest[16:]
	lists := []*[]string{
		&k.Kex, &k.HostKey,
		&k.CiphersCS, &k.CiphersSC,
		&k.MACsCS, &k.MACsSC,
		&k.CompressionCS, &k.CompressionSC,
		&k.LanguagesCS, &k.LanguagesSC,
	}
	for i, dst := range lists {
		var err error
		*dst, rest, err = parseNameList(rest)
		if err != nil {
			return KexInit{}, fmt.Errorf("kexinit: name-list %d: %w", i+1, err)
		}
	}
	if len(rest) < 5 {
		return KexInit{}, errors.New("kexinit: truncated after name-lists")
	}
	k.FirstKexFollows = rest[0] != 0
	// rest[1:5] is reserved; anything after is tolerated, as OpenSSH does.
	return k, nil
}

func parseNameList(b []byte) ([]string, []byte, error) {
	if len(b) < 4 {
		return nil, nil, errors.New("truncated length")
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) {
		return nil, nil, fmt.Errorf("length %d exceeds remaining %d bytes", n, len(b))
	}
	s, rest := b[:n], b[n:]
	if len(s) == 0 {
		return nil, rest, nil
	}
	for _, c := range s {
		if c < 0x21 || c > 0x7e {
			return nil, nil, fmt.Errorf("byte 0x%02x is not printable ASCII", c)
		}
	}
	names := strings.Split(string(s), ",")
	if slices.Contains(names, "") {
		return nil, nil, errors.New("empty name")
	}
	return names, rest, nil
}

// Wire bounds for reading a server's greeting.
const (
	maxBannerLine   = 1024  // RFC 4253 caps the version line at 255; other lines are unbounded there
	maxPreBanner    = 64    // lines a server may send before its version
	maxPacketLength = 35000 // RFC 4253 section 6.1: what every implementation must accept
	maxSkipPackets  = 8     // IGNORE/DEBUG packets tolerated before KEXINIT
)

// readVersion reads the server identification line, skipping the other
// lines RFC 4253 section 4.2 allows before it.
func readVersion(r *bufio.Reader) (string, error) {
	for range maxPreBanner {
		line, err := readLine(r)
		if err != nil {
			return "", fmt.Errorf("read server version: %w", err)
		}
		if !strings.HasPrefix(line, "SSH-") {
			continue
		}
		if !strings.HasPrefix(line, "SSH-2.0-") && !strings.HasPrefix(line, "SSH-1.99-") {
			return line, fmt.Errorf("server speaks %q, not SSH 2", clip(line))
		}
		return line, nil
	}
	return "", fmt.Errorf("no SSH version line within %d lines", maxPreBanner)
}

// readLine reads one CRLF- or LF-terminated line of printable text.
func readLine(r *bufio.Reader) (string, error) {
	var b []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if c == '\n' {
			break
		}
		if len(b) >= maxBannerLine {
			return "", fmt.Errorf("line longer than %d bytes", maxBannerLine)
		}
		b = append(b, c)
	}
	s := strings.TrimSuffix(string(b), "\r")
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return "", fmt.Errorf("control byte 0x%02x in version line", s[i])
		}
	}
	return s, nil
}

// readKexInitPacket reads unencrypted binary packets (RFC 4253 section 6)
// until the KEXINIT and returns its payload.
func readKexInitPacket(r io.Reader) ([]byte, error) {
	for range maxSkipPackets {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, fmt.Errorf("read packet header: %w", err)
		}
		length := binary.BigEndian.Uint32(hdr[:4])
		pad := uint32(hdr[4])
		if length < 1+pad+1 || length > maxPacketLength {
			return nil, fmt.Errorf("bad packet: length %d, padding %d", length, pad)
		}
		body := make([]byte, length-1)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, fmt.Errorf("read packet: %w", err)
		}
		payload := body[:len(body)-int(pad)]
		switch payload[0] {
		case msgKexInit:
			return payload, nil
		case msgIgnore, msgDebug:
			continue
		default:
			return nil, fmt.Errorf("server sent message %d before KEXINIT", payload[0])
		}
	}
	return nil, fmt.Errorf("no KEXINIT within %d packets", maxSkipPackets)
}
