package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"unsafe"
)

// Interface is a network interface and its addresses.
type Interface struct {
	Name  string
	Index int
	MTU   int
	Up    bool
	Flags net.Flags
	Addrs []netip.Prefix // address with its prefix length, e.g. 203.0.113.5/24
}

// interfaceJSON is one entry of <root>/.fixture/interfaces.json (see
// Host.Interfaces for the schema).
type interfaceJSON struct {
	Name  string   `json:"name"`
	Index int      `json:"index"`
	MTU   int      `json:"mtu"`
	Flags []string `json:"flags"`
	Addrs []string `json:"addrs"`
}

var flagNames = map[string]net.Flags{
	"up": net.FlagUp, "broadcast": net.FlagBroadcast, "loopback": net.FlagLoopback,
	"pointtopoint": net.FlagPointToPoint, "multicast": net.FlagMulticast, "running": net.FlagRunning,
}

// Interfaces lists the network interfaces. Live, it asks the kernel (one
// netlink dump for links, one for addresses). Under a fixture it reads
// <root>/.fixture/interfaces.json, a list of objects:
//
//	[{"name": "eth0", "index": 2, "mtu": 1500,
//	  "flags": ["up", "broadcast", "running", "multicast"],
//	  "addrs": ["203.0.113.5/24", "2001:db8::5/64"]}]
//
// where flags are the names net.Flags prints (up, broadcast, loopback,
// pointtopoint, multicast, running) and addrs are the interface's own
// addresses with their prefix lengths. Without that file it returns
// ErrUnavailable.
func (h *Host) Interfaces() ([]Interface, error) {
	if !h.Live() {
		return h.fixtureInterfaces()
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	addrs, err := interfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	out := make([]Interface, 0, len(ifs))
	for _, ifi := range ifs {
		out = append(out, Interface{
			Name: ifi.Name, Index: ifi.Index, MTU: ifi.MTU,
			Up: ifi.Flags&net.FlagUp != 0, Flags: ifi.Flags,
			Addrs: addrs[ifi.Index],
		})
	}
	return out, nil
}

func (h *Host) fixtureInterfaces() ([]Interface, error) {
	b, err := os.ReadFile(h.fixture("interfaces.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list interfaces: %w under a fixture root without .fixture/interfaces.json", ErrUnavailable)
	}
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var in []interfaceJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("list interfaces: .fixture/interfaces.json: %w", err)
	}
	out := make([]Interface, 0, len(in))
	for _, j := range in {
		ifi := Interface{Name: j.Name, Index: j.Index, MTU: j.MTU}
		for _, f := range j.Flags {
			fl, ok := flagNames[f]
			if !ok {
				return nil, fmt.Errorf("list interfaces: .fixture/interfaces.json: %s: unknown flag %q", j.Name, f)
			}
			ifi.Flags |= fl
		}
		ifi.Up = ifi.Flags&net.FlagUp != 0
		for _, a := range j.Addrs {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				return nil, fmt.Errorf("list interfaces: .fixture/interfaces.json: %s: %w", j.Name, err)
			}
			ifi.Addrs = append(ifi.Addrs, p)
		}
		out = append(out, ifi)
	}
	return out, nil
}

// interfaceAddrs dumps every address in one netlink request, where
// net.Interface.Addrs would dump them all once per interface.
func interfaceAddrs() (map[int][]netip.Prefix, error) {
	rib, err := syscall.NetlinkRIB(syscall.RTM_GETADDR, syscall.AF_UNSPEC)
	if err != nil {
		return nil, err
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, err
	}
	out := map[int][]netip.Prefix{}
	for _, m := range msgs {
		if m.Header.Type != syscall.RTM_NEWADDR || len(m.Data) < syscall.SizeofIfAddrmsg {
			continue
		}
		ifam := (*syscall.IfAddrmsg)(unsafe.Pointer(&m.Data[0]))
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			continue
		}
		var addr, local []byte
		for _, a := range attrs {
			switch a.Attr.Type {
			case syscall.IFA_ADDRESS:
				addr = a.Value
			case syscall.IFA_LOCAL:
				local = a.Value // on point-to-point links IFA_ADDRESS is the peer
			}
		}
		if local != nil {
			addr = local
		}
		ip, ok := netip.AddrFromSlice(addr)
		if !ok {
			continue
		}
		p := netip.PrefixFrom(ip, int(ifam.Prefixlen)) // the host's address, not the network's
		if !p.IsValid() {
			continue
		}
		out[int(ifam.Index)] = append(out[int(ifam.Index)], p)
	}
	return out, nil
}

// VPNInterface is a network interface that carries a VPN.
type VPNInterface struct {
	Name  string
	Kind  string // "tailscale", "wireguard", "zerotier" or "tun"
	Up    bool
	Addrs []netip.Prefix
}

// VPNInterfaces lists the interfaces that carry a VPN: tailscale* or any
// interface holding an address in [TailscaleV4] or [TailscaleV6]
// (Tailscale); wg* or DEVTYPE=wireguard in
// <root>/sys/class/net/<name>/uevent (WireGuard); zt* (ZeroTier);
// tun* (OpenVPN and the like).
func (h *Host) VPNInterfaces() ([]VPNInterface, error) {
	ifs, err := h.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []VPNInterface
	for _, ifi := range ifs {
		if kind := h.vpnKind(ifi); kind != "" {
			out = append(out, VPNInterface{Name: ifi.Name, Kind: kind, Up: ifi.Up, Addrs: ifi.Addrs})
		}
	}
	return out, nil
}

func (h *Host) vpnKind(ifi Interface) string {
	switch {
	case strings.HasPrefix(ifi.Name, "tailscale"):
		return "tailscale"
	case slices.ContainsFunc(ifi.Addrs, func(p netip.Prefix) bool {
		return TailscaleV4.Contains(p.Addr()) || TailscaleV6.Contains(p.Addr())
	}):
		return "tailscale"
	case strings.HasPrefix(ifi.Name, "wg"):
		return "wireguard"
	case strings.HasPrefix(ifi.Name, "zt"):
		return "zerotier"
	case strings.HasPrefix(ifi.Name, "tun"):
		return "tun"
	}
	if !strings.ContainsRune(ifi.Name, '/') {
		if b, err := os.ReadFile(h.Path("/sys/class/net/" + ifi.Name + "/uevent")); err == nil &&
			slices.Contains(strings.Split(string(b), "\n"), "DEVTYPE=wireguard") {
			return "wireguard"
		}
	}
	return ""
}

// VPNPrefixes returns the host's own addresses on VPN interfaces as
// single-address prefixes, ready for [ClassifyAddr]. Exact addresses
// rather than the interfaces' subnets, so that a wide VPN prefix cannot
// swallow a LAN address.
func (h *Host) VPNPrefixes() ([]netip.Prefix, error) {
	vpns, err := h.VPNInterfaces()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, v := range vpns {
		for _, p := range v.Addrs {
			a := p.Addr().Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}
