package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Resolver looks a host name up; net.DefaultResolver fits.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Target is what the probe may send packets to: the addresses of one host,
// and nothing else.
type Target struct {
	// Name is what the user typed: a host name or an address.
	Name string
	// Addrs are the addresses probed, IPv4 first.
	Addrs []netip.Addr
}

// ResolveTarget turns the user's TARGET into the addresses to probe. An IP
// literal is used as it is, with no DNS; a name is resolved once, here, and
// only its addresses are probed afterwards (a later answer cannot redirect
// the scan). Ranges and addresses that reach more than one host
// (unspecified, broadcast, multicast) are refused.
func ResolveTarget(ctx context.Context, r Resolver, s string) (Target, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Target{}, errors.New("no target: name one host, e.g. moat probe 203.0.113.7 or moat probe vps.example.com")
	}
	if strings.Contains(s, "/") {
		return Target{}, fmt.Errorf("target %q is a range: moat probe scans one host (give one address or name)", s)
	}
	if strings.ContainsAny(s, "*, ") {
		return Target{}, fmt.Errorf("target %q is not one host name or address", s)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if err := CheckAddr(a); err != nil {
			return Target{}, err
		}
		return Target{Name: s, Addrs: []netip.Addr{a}}, nil
	}
	if strings.Contains(host, ":") || strings.HasPrefix(host, "-") {
		return Target{}, fmt.Errorf("target %q is neither an address nor a host name", s)
	}
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return Target{}, fmt.Errorf("resolve %s: %w (give an address instead to skip DNS)", host, err)
	}
	var out []netip.Addr
	var refused []error
	for _, a := range addrs {
		a = a.Unmap()
		if err := CheckAddr(a); err != nil {
			refused = append(refused, err)
			continue
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		if len(refused) > 0 {
			return Target{}, fmt.Errorf("%s: %w", host, errors.Join(refused...))
		}
		return Target{}, fmt.Errorf("%s has no address", host)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int {
		if a.Is4() != b.Is4() {
			if a.Is4() {
				return -1
			}
			return 1
		}
		return a.Compare(b)
	})
	return Target{Name: s, Addrs: out}, nil
}

// limitedBroadcast is 255.255.255.255: every host on the link.
var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// CheckAddr refuses addresses that are not one host: unspecified (0.0.0.0,
// ::, which the kernel turns into "this host"), broadcast and multicast.
// Loopback and private addresses are allowed: probing one's own host or a
// lab namespace is legitimate.
func CheckAddr(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return errors.New("no address")
	case a.IsUnspecified():
		return fmt.Errorf("refusing %s: the unspecified address is not a host", a)
	case a == limitedBroadcast:
		return fmt.Errorf("refusing %s: the limited broadcast address reaches every host on the link", a)
	case a.IsMulticast():
		return fmt.Errorf("refusing %s: a multicast address reaches a group of hosts", a)
	case a.Is4() && a.As4()[0] == 0:
		return fmt.Errorf("refusing %s: 0.0.0.0/8 means this network, not a host", a)
	case a.Is4() && a.As4()[0] >= 240:
		return fmt.Errorf("refusing %s: 240.0.0.0/4 is reserved", a)
	}
	return nil
}
