//go:build linux

package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"net"
	"net/netip"
	"os"
	"testing"
)

// answerFor builds the IPv4 packet a target sends back to a SYN: flags
// 0x12 (SYN-ACK) or 0x14 (RST-ACK), acknowledging ack.
func answerFor(from netip.Addr, sport, dport uint16, ack uint32, flags byte) []byte {
	pkt := make([]byte, 40)
	pkt[0] = 0x45
	f4 := from.As4()
	copy(pkt[12:16], f4[:])
	binary.BigEndian.PutUint16(pkt[20:], sport)
	binary.BigEndian.PutUint16(pkt[22:], dport)
	binary.BigEndian.PutUint32(pkt[28:], ack)
	pkt[32] = 5 << 4
	pkt[33] = flags
	return pkt
}

// TestSynAnswerMatchesOnlyTheCookie: an answer counts only when it comes
// from the target, to the source port the SYN used, acknowledging the
// scan's keyed cookie; a forged or stray packet sets no verdict.
func TestSynAnswerMatchesOnlyTheCookie(t *testing.T) {
	target := netip.MustParseAddr("192.0.2.7")
	s := &synScanner{addrs: []netip.Addr{target}, hostOf: map[netip.Addr]int{target: 0}, srcBase: 61000, seed: maphash.MakeSeed()}
	sp := s.srcPort(443)
	c := s.cookie(target, 443, sp)
	if a, ok := s.parseAnswer(answerFor(target, 443, sp, c+1, 0x12), netip.Addr{}, false); !ok || !a.open || a.key.port != 443 {
		t.Errorf("the SYN-ACK was not matched: %+v %v", a, ok)
	}
	if a, ok := s.parseAnswer(answerFor(target, 443, sp, c+1, 0x14), netip.Addr{}, false); !ok || a.open {
		t.Errorf("the RST was not matched as closed: %+v %v", a, ok)
	}
	for name, pkt := range map[string][]byte{
		"wrong ack":         answerFor(target, 443, sp, c+2, 0x12),
		"another host":      answerFor(netip.MustParseAddr("192.0.2.8"), 443, sp, c+1, 0x12),
		"another src port":  answerFor(target, 443, sp+1, c+1, 0x12),
		"no ACK flag":       answerFor(target, 443, sp, c+1, 0x02),
		"another port":      answerFor(target, 444, s.srcPort(444), c+1, 0x12),
		"short":             answerFor(target, 443, sp, c+1, 0x12)[:30],
		"not IPv4":          append([]byte{0x60}, answerFor(target, 443, sp, c+1, 0x12)[1:]...),
		"header length bad": append([]byte{0x4f}, answerFor(target, 443, sp, c+1, 0x12)[1:]...),
	} {
		if a, ok := s.parseAnswer(pkt, netip.Addr{}, false); ok {
			t.Errorf("%s: matched %+v", name, a)
		}
	}
	// Another scan (another key) cannot be confused with this one.
	other := &synScanner{addrs: s.addrs, hostOf: s.hostOf, srcBase: 61000, seed: maphash.MakeSeed()}
	if _, ok := other.parseAnswer(answerFor(target, 443, sp, c+1, 0x12), netip.Addr{}, false); ok {
		t.Errorf("another scan's answer matched (cookies %#x, %#x)", c, other.cookie(target, 443, sp))
	}
}

func TestSynSegmentChecksum(t *testing.T) {
	src, dst := netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.1")
	seg := synSegment(src, dst, 61000, 22, 0xdeadbeef)
	// A segment with its checksum in place sums to zero.
	if got := tcpChecksum4(src, dst, seg); got != 0 {
		t.Errorf("checksum does not verify: %#04x", got)
	}
	if seg[13] != 0x02 || binary.BigEndian.Uint32(seg[4:]) != 0xdeadbeef || binary.BigEndian.Uint16(seg[2:]) != 22 {
		t.Errorf("segment % x", seg)
	}
}

func FuzzSynParseAnswer(f *testing.F) {
	target := netip.MustParseAddr("192.0.2.7")
	s := &synScanner{addrs: []netip.Addr{target}, hostOf: map[netip.Addr]int{target: 0}, srcBase: 61000, seed: maphash.MakeSeed()}
	f.Add(answerFor(target, 443, s.srcPort(443), s.cookie(target, 443, s.srcPort(443))+1, 0x12), false)
	f.Add([]byte{0x45}, false)
	f.Add(make([]byte, 20), true)
	f.Fuzz(func(t *testing.T, pkt []byte, v6 bool) {
		s.parseAnswer(pkt, target, v6)
	})
}

// TestSynScanLoopback runs the SYN scan against the kernel on loopback
// (root): a listener is open, its neighbours closed, as the connect scan
// says; without a raw socket it refuses with the hint.
func TestSynScanLoopback(t *testing.T) {
	if err := CanSYN(); err != nil {
		if !errors.Is(err, ErrNoRawSocket) {
			t.Fatal(err)
		}
		if os.Getenv("MOAT_TEST_STRICT") == "1" && os.Geteuid() == 0 {
			t.Fatal("root but no raw socket")
		}
		if _, _, err := (&Scanner{SYN: true}).ScanTCP(context.Background(), []netip.Addr{netip.MustParseAddr("127.0.0.1")}, []uint16{1}); !errors.Is(err, ErrNoRawSocket) {
			t.Errorf("without a raw socket: %v", err)
		}
		t.Skip("needs root (CAP_NET_RAW) for the SYN scan")
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := netip.MustParseAddrPort(l.Addr().String()).Port()
	var ports []uint16
	for q := max(int(port)-100, 1); q <= min(int(port)+100, 65535); q++ {
		ports = append(ports, uint16(q))
	}
	addrs := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	syn, st, err := (&Scanner{SYN: true}).ScanTCP(context.Background(), addrs, ports)
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := (&Scanner{}).ScanTCP(context.Background(), addrs, ports)
	if err != nil {
		t.Fatal(err)
	}
	if syn[0].State(port) != Open || st.Method != "syn" {
		t.Errorf("listener port %d: %v (%s)", port, syn[0].State(port), st.Method)
	}
	for _, p := range ports {
		if syn[0].State(p) != conn[0].State(p) {
			t.Errorf("port %d: SYN scan %v, connect scan %v", p, syn[0].State(p), conn[0].State(p))
		}
	}
}
