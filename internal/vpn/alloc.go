package vpn

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// PickSubnet4 picks a random 10.x.y.0/24 that overlaps none of taken (the
// host's routes and addresses, Docker's bridges), and returns the host's
// address in it (.1). Random, so two hosts' VPNs rarely collide when one
// day they are joined.
func PickSubnet4(taken []netip.Prefix) (netip.Prefix, error) {
	for range 256 {
		var b [2]byte
		rand.Read(b[:])
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, b[0], b[1], 0}), 24)
		if !overlapsAny(p, taken) {
			return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, b[0], b[1], 1}), 24), nil
		}
	}
	return netip.Prefix{}, errors.New("no free 10.x.y.0/24: every one tried overlaps a route; set vpn.wireguard.address by hand")
}

// PickSubnet6 picks a random ULA /64 (fdXX:XXXX:XXXX:YYYY::/64, RFC 4193)
// that overlaps none of taken, and returns the host's address in it (::1).
func PickSubnet6(taken []netip.Prefix) (netip.Prefix, error) {
	for range 256 {
		var a [16]byte
		rand.Read(a[1:8])
		a[0] = 0xfd
		a[15] = 1
		p := netip.PrefixFrom(netip.AddrFrom16(a), 64)
		if !overlapsAny(p.Masked(), taken) {
			return p, nil
		}
	}
	return netip.Prefix{}, errors.New("no free ULA /64 found")
}

func overlapsAny(p netip.Prefix, taken []netip.Prefix) bool {
	return slices.ContainsFunc(taken, func(t netip.Prefix) bool { return t.IsValid() && t.Overlaps(p) })
}

// NextFree returns the lowest address of the interface's subnet in
// family (4 or 6) that neither the host nor any peer uses.
func (w *WireGuard) NextFree(family int) (netip.Addr, error) {
	var subnet netip.Prefix
	for _, a := range w.Address {
		if (family == 4) == a.Addr().Is4() {
			subnet = a.Subnet()
		}
	}
	if !subnet.IsValid() {
		return netip.Addr{}, fmt.Errorf("%s has no IPv%d address: add one to vpn.wireguard.address", w.Name(), family)
	}
	used := map[netip.Addr]bool{}
	for _, a := range w.Address {
		used[a.Addr()] = true
	}
	for _, p := range w.Peers {
		for _, a := range p.Addresses {
			used[a.Addr()] = true
		}
	}
	a := subnet.Addr().Next() // skip the network address
	for n := 0; subnet.Contains(a) && n < 1<<16; n, a = n+1, a.Next() {
		if used[a] {
			continue
		}
		if a.Is4() && !subnet.Contains(a.Next()) {
			break // the broadcast address
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("%s's subnet %s is full: remove a peer or widen vpn.wireguard.address", w.Name(), subnet)
}
