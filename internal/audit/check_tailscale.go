package audit

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/tailscale"
)

// Tailscale: what tailscaled's local API says, judged against the host.
// The checks join the layers they endanger: a node key that expires
// takes SSH-over-VPN with it, a Funnel is exposure, rp_filter is the
// kernel's.
func init() {
	catalog["TS-001"] = def{LayerSSH, "The Tailscale node key expires within 14 days", Critical,
		"disable key expiry for this machine in the Tailscale admin console (Machines, the machine's menu, Disable key expiry), or re-authenticate now with tailscale up --force-reauth from a second way in; a headless server whose key expires drops off the tailnet, and SSH over the VPN with it", Anchors{}}
	catalog["TS-002"] = def{LayerExposure, "Tailscale Funnel publishes a local port not declared public", High,
		"tailscale funnel --https=PORT off (or tailscale funnel reset) unless the service is meant for the internet; if it is, list its port under firewall.public or put it behind the gateway", Anchors{}}
	catalog["TS-003"] = def{LayerKernel, "Strict reverse-path filtering with Tailscale subnet routes", Medium,
		"sysctl -w net.ipv4.conf.all.rp_filter=2 (loose) and persist it under /etc/sysctl.d/; with strict (1) filtering the kernel drops the subnet router's forwarded replies", Anchors{}}
	catalog["TS-004"] = def{LayerExposure, "Tailscale node", Info,
		"nothing to fix: what tailscaled says of this node (addresses, MagicDNS name, key expiry, routes, Serve and Funnel)", Anchors{}}
	const na = "tailscaled is not running on this host (no local API socket, no tailscale command); under --root"
	notApplicable["TS-001"] = na + "; not logged in to a tailnet"
	notApplicable["TS-002"] = na
	notApplicable["TS-003"] = na + "; no subnet routes advertised"
	notApplicable["TS-004"] = na
}

// tsExpiryWarn is how close a node key's expiry must be for TS-001.
const tsExpiryWarn = 14 * 24 * time.Hour

func (f *facts) loadTailscale() (*tailscale.State, error) {
	if f.o.Root != "" && f.o.TailscaleSocket == "" {
		return nil, tailscale.ErrAbsent
	}
	c := &tailscale.Client{Socket: f.o.TailscaleSocket, CLI: f.o.TailscaleCLI}
	return c.Read(f.ctx)
}

func checkTailscale(f *facts, o *out) {
	st, err := f.tailscale()
	if err != nil {
		if errors.Is(err, tailscale.ErrAbsent) {
			why := "tailscaled is not running on this host"
			if f.o.Root != "" && f.o.TailscaleSocket == "" {
				why = "under --root: tailscaled's local API is read on the live host only"
			}
			for _, id := range []string{"TS-001", "TS-002", "TS-003", "TS-004"} {
				o.na(id, why)
			}
			return
		}
		for _, id := range []string{"TS-001", "TS-002", "TS-003", "TS-004"} {
			o.unknown(id, err)
		}
		return
	}
	src := "tailscaled (" + st.Source + ")"
	checkTailscaleExpiry(f, o, st, src)
	checkTailscaleFunnel(f, o, st, src)
	checkTailscaleRPFilter(f, o, st, src)
	o.pass("TS-004", st.DNSName(), tailscaleInventory(st, src)...)
}

// tailscaleInventory is what tailscaled says of this node, for people.
func tailscaleInventory(st *tailscale.State, src string) []string {
	ev := []string{fmt.Sprintf("%s: %s, version %s", src, st.Status.BackendState, st.Status.Version)}
	if ips := st.IPs(); len(ips) > 0 {
		var s []string
		for _, a := range ips {
			s = append(s, a.String())
		}
		ev = append(ev, "addresses: "+strings.Join(s, ", "))
	}
	if n := st.DNSName(); n != "" {
		ev = append(ev, "MagicDNS name: "+n)
	}
	if exp, disabled, ok := st.KeyExpiry(); ok {
		if disabled {
			ev = append(ev, "node key: expiry disabled")
		} else {
			ev = append(ev, "node key expires "+exp.UTC().Format(time.RFC3339))
		}
	}
	if r := st.SubnetRoutes(); len(r) > 0 {
		var s []string
		for _, p := range r {
			s = append(s, p.String())
		}
		ev = append(ev, "subnet routes advertised: "+strings.Join(s, ", "))
	}
	if st.AdvertisesExitNode() {
		ev = append(ev, "offered as an exit node")
	}
	if st.Serve != nil {
		for _, port := range slices.Sorted(maps.Keys(st.Serve.TCP)) {
			if h := st.Serve.TCP[port]; h != nil {
				ev = append(ev, fmt.Sprintf("Serve: tailnet port %d (https %v, http %v, forward %q)", port, h.HTTPS, h.HTTP, h.TCPForward))
			}
		}
	}
	for _, fn := range st.Funnels() {
		ev = append(ev, "Funnel on: https://"+fn.HostPort)
	}
	return ev
}

// sshPublic says whether sshd is reachable from the internet (listening
// beyond loopback and the VPN, and let through by the firewall), and
// whether sshd runs at all.
func (f *facts) sshPublic() (public, present bool) {
	sf, err := f.sshd()
	if err != nil {
		return false, false
	}
	ls, running, _ := f.sshdListeners([]int{sf.port})
	vpn := f.vpnRanges()
	for _, l := range ls {
		if s := host.ClassifyAddr(l.Addr.Addr(), vpn); s != host.ScopeWildcard && s != host.ScopePublic {
			continue
		}
		if f.reachable(l).ok {
			return true, true
		}
	}
	return false, running || len(ls) > 0
}

func checkTailscaleExpiry(f *facts, o *out, st *tailscale.State, src string) {
	exp, disabled, ok := st.KeyExpiry()
	if !ok || !st.Running() {
		o.na("TS-001", fmt.Sprintf("tailscale is %q: not logged in to a tailnet", st.Status.BackendState))
		return
	}
	name := st.DNSName()
	if disabled {
		o.pass("TS-001", name, src+": key expiry is disabled for this node")
		return
	}
	left := exp.Sub(f.o.Now())
	ev := []string{fmt.Sprintf("%s: the node key expires %s (%s)", src, exp.UTC().Format(time.RFC3339), leftText(left))}
	if left > tsExpiryWarn && !st.Status.Self.Expired {
		o.pass("TS-001", name, ev...)
		return
	}
	public, present := f.sshPublic()
	switch {
	case !present:
		o.failAt("TS-001", Medium, name, append(ev, "no sshd here: the tailnet path is lost, not the only way in")...)
	case public:
		o.failAt("TS-001", Medium, name, append(ev, "sshd is also reachable from the internet: a way in stays when the tailnet drops this node")...)
	default:
		o.fail("TS-001", name, append(ev, "sshd is not reachable from the internet: when the key expires, SSH over the tailnet is the way in that goes")...)
	}
}

func leftText(d time.Duration) string {
	switch {
	case d <= 0:
		return "EXPIRED"
	case d < 48*time.Hour:
		return fmt.Sprintf("in %dh", int(d.Hours()))
	}
	return fmt.Sprintf("in %d days", int(d.Hours()/24))
}

// funnelExposed returns the local ports Funnel publishes, with a line
// saying how, for the exposure view.
func (f *facts) funnelExposed() map[uint16]string {
	st, err := f.tailscale()
	if err != nil {
		return nil
	}
	out := map[uint16]string{}
	for _, fn := range st.Funnels() {
		for _, t := range fn.Targets {
			if t.Local.IsValid() && (t.Local.Addr().IsLoopback() || t.Local.Addr().IsUnspecified() || f.isLocalAddr(t.Local.Addr())) {
				out[t.Local.Port()] = fmt.Sprintf("Tailscale Funnel publishes it to the internet at https://%s%s (%s %s)", fn.HostPort, t.Mount, t.Kind, t.To)
			}
		}
	}
	return out
}

// isLocalAddr reports whether a is an address of this host.
func (f *facts) isLocalAddr(a netip.Addr) bool {
	ifs, err := f.ifaces()
	if err != nil {
		return false
	}
	for _, i := range ifs {
		for _, p := range i.Addrs {
			if p.Addr().Unmap() == a.Unmap() {
				return true
			}
		}
	}
	return false
}

func checkTailscaleFunnel(f *facts, o *out, st *tailscale.State, src string) {
	if st.Serve == nil {
		o.unknown("TS-002", fmt.Errorf("%s: the Serve/Funnel config was not readable", src))
		return
	}
	fns := st.Funnels()
	if len(fns) == 0 {
		o.pass("TS-002", "", src+": no Funnel is on")
		return
	}
	bad := 0
	var fine []string
	for _, fn := range fns {
		for _, t := range fn.Targets {
			url := "https://" + fn.HostPort + t.Mount
			if !t.Local.IsValid() {
				switch t.Kind {
				case "path":
					fine = append(fine, fmt.Sprintf("%s serves the files under %s to the internet", url, t.To))
				case "proxy", "tcp":
					fine = append(fine, fmt.Sprintf("%s forwards to %s (not an address of this host)", url, t.To))
				}
				continue
			}
			port := t.Local.Port()
			if f.o.declaredPublic("tcp", port) {
				fine = append(fine, fmt.Sprintf("%s → %s: port %d is declared public", url, t.Local, port))
				continue
			}
			bad++
			subject := fmt.Sprintf("tcp/%d", port)
			ev := []string{fmt.Sprintf("%s: Funnel publishes %s to the internet at %s (%s %s)", src, t.Local, url, t.Kind, t.To),
				fmt.Sprintf("port %d is not in firewall.public: moat's firewall cannot see this path (it arrives over the tailnet's relays)", port)}
			if name, ok := sensitivePorts[port]; ok {
				o.failAt("TS-002", Critical, subject, append([]string{name + " is published to the internet through Funnel"}, ev...)...)
			} else {
				o.fail("TS-002", subject, ev...)
			}
		}
	}
	if bad == 0 {
		o.pass("TS-002", "", fine...)
	}
}

func checkTailscaleRPFilter(f *facts, o *out, st *tailscale.State, src string) {
	routes := st.SubnetRoutes()
	if len(routes) == 0 {
		o.na("TS-003", src+": no subnet routes advertised")
		return
	}
	var rs []string
	for _, r := range routes {
		rs = append(rs, r.String())
	}
	ev := []string{fmt.Sprintf("%s: advertises subnet routes %s", src, strings.Join(rs, ", "))}
	// The kernel applies the larger of all and the interface's value.
	strict := false
	for _, k := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.tailscale0.rp_filter"} {
		v, err := f.h.Sysctl(k)
		if err != nil {
			continue
		}
		ev = append(ev, k+" = "+v)
		strict = strict || strings.TrimSpace(v) == "1"
	}
	o.check("TS-003", !strict, "net.ipv4.conf.all.rp_filter", ev...)
}
