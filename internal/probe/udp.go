package probe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// UDP states beyond Open and Closed: no answer may mean a dropped probe or
// a service that ignores a malformed one (WireGuard stays silent by
// design).
const OpenFiltered State = 10

// UDPResult is one UDP port's outcome.
type UDPResult struct {
	Addr    string `json:"addr"`
	Port    uint16 `json:"port"`
	Service string `json:"service"`
	State   string `json:"state"` // "open", "closed", "open|filtered"
	Answer  string `json:"answer,omitempty"`
}

type udpProbe struct {
	port    uint16
	service string
	payload func() []byte
	// recognise says whether an answer is this protocol's.
	recognise func([]byte) (string, bool)
}

// UDPProbes are the UDP ports moat probe tries, each with a payload its
// service answers (or, for WireGuard, a packet of the handshake
// initiation's shape, which a WireGuard peer silently drops: no answer is
// what a WireGuard port looks like).
var udpProbes = []udpProbe{
	{53, "dns", dnsQuery, parseDNSAnswer},
	{123, "ntp", ntpRequest, parseNTPAnswer},
	{161, "snmp", snmpGetPublic, parseSNMPAnswer},
	{443, "quic", quicInitial, parseQUICAnswer},
	{51820, "wireguard", wireguardInitiation, func(b []byte) (string, bool) { return "", len(b) > 0 }},
}

// UDPPorts lists the UDP ports probed.
func UDPPorts() []uint16 {
	var out []uint16
	for _, p := range udpProbes {
		out = append(out, p.port)
	}
	return out
}

// ScanUDP sends each UDP probe to addr, twice when no answer comes.
func (p *Prober) ScanUDP(ctx context.Context, addr netip.Addr) []UDPResult {
	out := make([]UDPResult, len(udpProbes))
	var wg sync.WaitGroup
	for i, up := range udpProbes {
		wg.Go(func() { out[i] = p.udpPort(ctx, addr, up) })
	}
	wg.Wait()
	return out
}

func (p *Prober) udpPort(ctx context.Context, addr netip.Addr, up udpProbe) UDPResult {
	r := UDPResult{Addr: addr.String(), Port: up.port, Service: up.service, State: "open|filtered"}
	{
		for try := 0; try < 2 && ctx.Err() == nil; try++ {
			st, ans := p.udpOnce(ctx, netip.AddrPortFrom(addr, up.port), up)
			if st == Closed {
				r.State = "closed"
				break
			}
			if st == Open {
				r.State, r.Answer = "open", ans
				break
			}
		}
	}
	return r
}

func (p *Prober) udpOnce(ctx context.Context, ap netip.AddrPort, up udpProbe) (State, string) {
	cctx, cancel := context.WithTimeout(ctx, p.ioTimeout())
	defer cancel()
	c, err := p.dial()(cctx, "udp", ap.String())
	if err != nil {
		return OpenFiltered, ""
	}
	defer c.Close()
	wait := min(p.ioTimeout(), 1500*time.Millisecond)
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write(up.payload()); err != nil {
		return OpenFiltered, ""
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return Closed, ""
		}
		return OpenFiltered, ""
	}
	if what, ok := up.recognise(buf[:n]); ok {
		return Open, what
	}
	return Open, "an answer not of this protocol: " + Clean(buf[:min(n, 60)], 60)
}

// dnsQuery asks for the root's NS records, recursion desired: an open
// resolver answers it.
func dnsQuery() []byte {
	q := []byte{0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1}
	var id [2]byte
	rand.Read(id[:])
	copy(q, id[:])
	return q
}

// ParseDNSAnswer is exported for fuzzing through parseDNSAnswer.
func parseDNSAnswer(b []byte) (string, bool) {
	if len(b) < 12 || b[2]&0x80 == 0 {
		return "", false
	}
	rcode := b[3] & 0x0f
	ra := b[3]&0x80 != 0
	an := binary.BigEndian.Uint16(b[6:8])
	what := "DNS answer, rcode " + itoaU(uint64(rcode))
	if ra && rcode == 0 && an > 0 {
		what += ", recursion available (an open resolver)"
	}
	return what, true
}

// ntpRequest is an NTPv4 client request (mode 3).
func ntpRequest() []byte {
	b := make([]byte, 48)
	b[0] = 0x23 // LI 0, VN 4, mode 3
	return b
}

func parseNTPAnswer(b []byte) (string, bool) {
	if len(b) < 48 || b[0]&0x07 != 4 {
		return "", false
	}
	return "NTP server, stratum " + itoaU(uint64(b[1])), true
}

// snmpGetPublic is an SNMPv2c GetRequest for sysDescr.0 with the
// community "public": the well-known default, which any SNMP agent that
// answers it hands to everyone.
func snmpGetPublic() []byte {
	return []byte{
		0x30, 0x29, 0x02, 0x01, 0x01, 0x04, 0x06, 'p', 'u', 'b', 'l', 'i', 'c',
		0xa0, 0x1c, 0x02, 0x04, 0x6d, 0x6f, 0x61, 0x74, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00,
		0x30, 0x0e, 0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, 0x05, 0x00,
	}
}

func parseSNMPAnswer(b []byte) (string, bool) {
	if len(b) < 10 || b[0] != 0x30 {
		return "", false
	}
	return "SNMP agent answered the community \"public\"", true
}

// quicInitial is a long-header packet for a version no server speaks,
// padded to 1200 bytes: a QUIC server must answer it with Version
// Negotiation (RFC 9000 section 6), which proves QUIC without a handshake.
func quicInitial() []byte {
	b := make([]byte, 1200)
	b[0] = 0xc0
	binary.BigEndian.PutUint32(b[1:5], 0x1a2a3a4a)
	b[5] = 8
	rand.Read(b[6:14])
	b[14] = 8
	rand.Read(b[15:23])
	return b
}

func parseQUICAnswer(b []byte) (string, bool) {
	if len(b) < 7 || b[0]&0x80 == 0 || binary.BigEndian.Uint32(b[1:5]) != 0 {
		return "", false
	}
	return "QUIC version negotiation", true
}

// wireguardInitiation has the shape of a WireGuard handshake initiation
// (type 1, 148 bytes) with random content: a WireGuard peer drops it
// (its MAC is wrong) and says nothing.
func wireguardInitiation() []byte {
	b := make([]byte, 148)
	rand.Read(b)
	b[0], b[1], b[2], b[3] = 1, 0, 0, 0
	return b
}

func itoaU(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
