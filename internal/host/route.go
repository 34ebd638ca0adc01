package host

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strconv"
)

// Route flags from <linux/route.h>.
const (
	rtfUp     = 0x0001
	rtfReject = 0x0200
)

// Route is a default route of the main routing table.
type Route struct {
	Iface   string
	Gateway netip.Addr // invalid (zero) for a directly connected default
	Metric  uint32
}

// DefaultRoutes returns the IPv4 and IPv6 default routes from
// <root>/proc/net/route and <root>/proc/net/ipv6_route; their interfaces
// face the Internet. Only the main table is visible there: defaults in
// policy-routing tables (Tailscale's table 52, for one) are not listed.
func (h *Host) DefaultRoutes() ([]Route, error) {
	var out []Route
	b, err := h.ReadFile("/proc/net/route")
	if err != nil {
		return nil, fmt.Errorf("default routes: %w", err)
	}
	v4, err := parseRoute(b)
	if err != nil {
		return nil, fmt.Errorf("default routes: /proc/net/route: %w", err)
	}
	out = append(out, v4...)
	b, err = os.ReadFile(h.Path("/proc/net/ipv6_route"))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil // IPv6 disabled
	}
	if err != nil {
		return nil, fmt.Errorf("default routes: %w", hint(err))
	}
	v6, err := parseIPv6Route(b)
	if err != nil {
		return nil, fmt.Errorf("default routes: /proc/net/ipv6_route: %w", err)
	}
	return append(out, v6...), nil
}

// parseRoute reads /proc/net/route: Iface Destination Gateway Flags RefCnt
// Use Metric Mask …, addresses as hex 32-bit words in host byte order.
func parseRoute(b []byte) ([]Route, error) {
	var out []Route
	sc := bufio.NewScanner(bytes.NewReader(b))
	var f [][]byte
	for n := 1; sc.Scan(); n++ {
		f = splitFields(sc.Bytes(), f[:0], 8)
		if len(f) == 0 || string(f[0]) == "Iface" {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("line %d: want at least 8 fields", n)
		}
		dst, ok1 := parseHex32(f[1])
		gw, ok2 := parseHex32(f[2])
		flags, ok3 := parseHex32(f[3])
		mask, ok4 := parseHex32(f[7])
		metric, err := strconv.ParseUint(string(f[6]), 10, 32)
		if !ok1 || !ok2 || !ok3 || !ok4 || err != nil {
			return nil, fmt.Errorf("line %d: bad number", n)
		}
		if dst != 0 || mask != 0 || flags&rtfUp == 0 || flags&rtfReject != 0 {
			continue
		}
		r := Route{Iface: string(f[0]), Metric: uint32(metric)}
		if gw != 0 {
			var a [4]byte
			binary.NativeEndian.PutUint32(a[:], gw)
			r.Gateway = netip.AddrFrom4(a)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// parseIPv6Route reads /proc/net/ipv6_route: dest dest_plen src src_plen
// next_hop metric refcnt use flags iface, addresses in network order.
func parseIPv6Route(b []byte) ([]Route, error) {
	var out []Route
	sc := bufio.NewScanner(bytes.NewReader(b))
	var f [][]byte
	for n := 1; sc.Scan(); n++ {
		f = splitFields(sc.Bytes(), f[:0], 10)
		if len(f) == 0 {
			continue
		}
		if len(f) < 10 {
			return nil, fmt.Errorf("line %d: want 10 fields", n)
		}
		var dst, hop [16]byte
		if len(f[0]) != 32 || hexDecode(dst[:], f[0]) != nil {
			return nil, fmt.Errorf("line %d: bad destination", n)
		}
		if len(f[4]) != 32 || hexDecode(hop[:], f[4]) != nil {
			return nil, fmt.Errorf("line %d: bad next hop", n)
		}
		plen, ok1 := parseHex32(f[1])
		metric, ok2 := parseHex32(f[5])
		flags, ok3 := parseHex32(f[8])
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("line %d: bad number", n)
		}
		iface := string(f[9])
		if plen != 0 || dst != [16]byte{} || flags&rtfUp == 0 || flags&rtfReject != 0 || iface == "lo" {
			continue
		}
		r := Route{Iface: iface, Metric: metric}
		if hop != [16]byte{} {
			r.Gateway = netip.AddrFrom16(hop)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

func hexDecode(dst, src []byte) error {
	_, err := hex.Decode(dst, src)
	return err
}
