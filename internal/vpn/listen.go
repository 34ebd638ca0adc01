package vpn

import (
	"fmt"
	"net"
	"net/netip"
)

// CheckListen is the one rule for moat's private listeners (the status
// page; Prometheus metrics): a literal address that is loopback or inside
// the VPN's ranges, so what moat sees is never served to the internet. A
// wildcard (0.0.0.0, ::) or a host name is refused: either could bind the
// public interface.
func (c Config) CheckListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("expected host:port like 127.0.0.1:9470, found %q", addr)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("listen address %q is not an IP address: name a loopback or VPN address (host names are not resolved)", host)
	}
	if !c.AllowedSource(a) {
		return fmt.Errorf("%s is neither loopback nor inside vpn.ranges: bind 127.0.0.1 or the VPN address, or add its range to vpn.ranges", a)
	}
	return nil
}

// AllowedSource reports whether a is loopback or inside the VPN's ranges:
// the sources moat's private listeners serve.
func (c Config) AllowedSource(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || c.Contains(a)
}
