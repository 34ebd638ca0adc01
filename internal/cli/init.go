package cli

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/moat-sh/moat/internal/audit"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/sshd"
	"github.com/moat-sh/moat/internal/vpn"
)

func runInit(e *env, args []string) int {
	f := newFlags(e, "init", "init [--root DIR] > /etc/moat/moat.yaml").withRoot()
	if code, ok := f.parse(args); !ok {
		return code
	}
	s := inspect(context.Background(), host.New(f.root), os.Getenv)
	var b strings.Builder
	s.write(&b)
	// What init prints must load: a starter config that fails its own
	// check would be a poor start.
	if _, err := config.Parse("moat init", []byte(b.String())); err != nil {
		fmt.Fprintf(e.stderr, "moat init: generated config does not validate (a bug; please report it):\n%v\n", err)
		return ExitRuntime
	}
	io.WriteString(e.stdout, b.String())
	for _, n := range s.notes {
		fmt.Fprintln(e.stderr, "moat init: "+n)
	}
	return ExitOK
}

// noAdmin is said on stderr and in the YAML, where it cannot be missed.
const noAdmin = "no admin user found: set host.admin.user to the non-root sudo account you log in as; without one, moat apply may leave only root, and a root-less sshd config would shut you out"

// starter is what init found.
type starter struct {
	sshPorts     []uint16
	admin, why   string
	operator     netip.Addr
	publicIface  string
	vpnIfaces    []string
	vpnRanges    []netip.Prefix
	public, vpnP []string          // port specs
	comments     map[string]string // port spec → why
	others       []string          // commented lines for listeners to decide on
	local        []string          // loopback listeners, for the record
	notes        []string
}

func inspect(ctx context.Context, h *host.Host, getenv func(string) string) *starter {
	s := &starter{comments: map[string]string{}}
	// The operator: the SSH session moat init runs in (through sudo too).
	op := h.Operator(os.Getpid(), getenv)
	if op.Conn.Valid() {
		s.operator = op.Conn.Client.Addr()
	}
	switch {
	case getenv("SUDO_USER") != "" && getenv("SUDO_USER") != "root":
		s.admin, s.why = getenv("SUDO_USER"), "from SUDO_USER: you ran moat init through sudo"
	case getenv("USER") != "" && getenv("USER") != "root":
		s.admin, s.why = getenv("USER"), "from USER"
	case op.User != "" && op.User != "root":
		s.admin, s.why = op.User, "the user your SSH session logged in as"
	default:
		if groups, err := h.Groups(); err == nil {
			if g, ok := groups["sudo"]; ok && len(g.Members) > 0 {
				s.admin, s.why = g.Members[0], "the first member of group sudo"
			}
		}
	}
	if s.admin == "" {
		s.notes = append(s.notes, noAdmin)
	}
	if !s.operator.IsValid() {
		s.notes = append(s.notes, "SSH_CONNECTION is not set (not over SSH?): add your address to host.admin.sources so no change can lock you out")
	}

	if routes, err := h.DefaultRoutes(); err == nil && len(routes) > 0 {
		s.publicIface = routes[0].Iface
	}
	if vifs, err := h.VPNInterfaces(); err == nil {
		for _, v := range vifs {
			s.vpnIfaces = append(s.vpnIfaces, v.Name)
			if v.Kind == "tailscale" {
				s.vpnRanges = append(s.vpnRanges, vpn.TailscaleV4, vpn.TailscaleV6)
				continue
			}
			for _, a := range v.Addrs {
				if !a.Addr().IsLinkLocalUnicast() {
					s.vpnRanges = append(s.vpnRanges, a.Masked())
				}
			}
		}
	}

	ls, err := h.Listeners()
	if err != nil {
		s.notes = append(s.notes, fmt.Sprintf("listeners not read: %v", err))
	}
	vpnRanges := s.vpnRanges
	if len(vpnRanges) == 0 {
		vpnRanges = []netip.Prefix{vpn.TailscaleV4, vpn.TailscaleV6}
	}
	seen := map[string]bool{}
	for _, l := range ls {
		spec := fmt.Sprintf("%d/%s", l.Addr.Port(), l.Proto)
		who := l.Process
		if who == "" {
			who = "unknown process"
		}
		if l.Process == "sshd" && l.Proto == "tcp" {
			if !slices.Contains(s.sshPorts, l.Addr.Port()) {
				s.sshPorts = append(s.sshPorts, l.Addr.Port())
			}
			continue
		}
		if seen[spec] {
			continue
		}
		seen[spec] = true
		scope := host.ClassifyAddr(l.Addr.Addr(), vpnRanges)
		switch {
		case scope == host.ScopeLoopback:
			s.local = append(s.local, fmt.Sprintf("%s %s on %s", spec, who, l.Addr.Addr()))
		case scope == host.ScopeVPN || scope == host.ScopePrivate:
			s.vpnP = append(s.vpnP, spec)
			s.comments[spec] = fmt.Sprintf("%s, bound to %s (%s)", who, l.Addr.Addr(), scope)
		case audit.IsSensitive(l.Addr.Port(), l.Process):
			s.vpnP = append(s.vpnP, spec)
			s.comments[spec] = fmt.Sprintf("%s on %s: a datastore or admin port, never public; also bind it to 127.0.0.1 or the VPN address", who, l.Addr.Addr())
		case l.Addr.Port() == 80 || l.Addr.Port() == 443:
			s.public = append(s.public, spec)
			s.comments[spec] = fmt.Sprintf("%s on %s: web", who, l.Addr.Addr())
		default:
			s.others = append(s.others, fmt.Sprintf("%-10s # %s on %s: public? move it to public:, or to vpn:, or bind it to 127.0.0.1", spec, who, l.Addr.Addr()))
		}
	}
	if len(s.sshPorts) == 0 {
		if eff, err := (sshd.Runner{Root: h.Root}).Effective(ctx, sshd.Context{User: "root", Host: "198.51.100.1", Addr: "198.51.100.1"}); err == nil {
			for _, p := range eff.All("port") {
				var n uint16
				if _, err := fmt.Sscan(p, &n); err == nil {
					s.sshPorts = append(s.sshPorts, n)
				}
			}
		}
	}
	if len(s.sshPorts) == 0 {
		s.sshPorts = []uint16{22}
	}
	for _, w := range []string{"80/tcp", "443/tcp"} {
		if !slices.Contains(s.public, w) {
			s.public = append(s.public, w)
			s.comments[w] = "web, for the gateway (nothing listens yet)"
		}
	}
	byPort(s.public)
	byPort(s.vpnP)
	sort.Strings(s.others)
	sort.Strings(s.local)
	return s
}

func (s *starter) write(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	p("# moat.yaml, written by moat init from what it found on this host.")
	p("# Review it, then: moat config check -c FILE; moat audit; moat plan.")
	p("")
	p("host:")
	p("  admin:")
	if s.admin != "" {
		p("    user: %s                 # %s", s.admin, s.why)
	} else {
		p("    # NOTE: %s", noAdmin)
		p("    # user: deploy            # the non-root sudo user you log in as")
	}
	if s.operator.IsValid() {
		p("    sources:")
		p("      - %s   # your address now (SSH_CONNECTION): never banned, always let in to SSH", s.operator)
	} else {
		p("    sources: []               # add the addresses you work from")
	}
	p("")
	p("ssh:")
	p("  port: %d                      # sshd listens here now", s.sshPorts[0])
	if len(s.sshPorts) > 1 {
		p("  # sshd also listens on %v", s.sshPorts[1:])
	}
	if len(s.vpnIfaces) > 0 {
		p("  exposure: vpn+public          # stage 2: a VPN is up; move to vpn once you have logged in over it")
	} else {
		p("  exposure: public              # stage 1: no VPN found; install Tailscale or WireGuard to move SSH behind it")
	}
	p("")
	p("vpn:")
	if len(s.vpnIfaces) > 0 {
		p("  interfaces: [%s]", strings.Join(s.vpnIfaces, ", "))
		p("  ranges:")
		for _, r := range s.vpnRanges {
			p("    - %s", r)
		}
	} else {
		p("  interfaces: []               # none found; tailscale0 and wg0 are the usual")
		p("  ranges: []")
	}
	p("")
	p("firewall:")
	if s.publicIface != "" {
		p("  public_interface: %s        # the default route's interface", s.publicIface)
	}
	p("  public:")
	for _, sp := range s.public {
		p("    - %-12s # %s", sp, s.comments[sp])
	}
	if len(s.vpnP) > 0 {
		p("  vpn:")
		for _, sp := range s.vpnP {
			p("    - %-12s # %s", sp, s.comments[sp])
		}
	} else {
		p("  vpn: []")
	}
	if len(s.others) > 0 {
		p("  # Listening on every address, not yet declared (the firewall will drop them):")
		for _, o := range s.others {
			p("  #  - %s", o)
		}
	}
	if len(s.local) > 0 {
		p("  # Local only, nothing to do: %s", strings.Join(s.local, "; "))
	}
	p("")
	p("guard:")
	p("  jails:")
	p("    sshd: {}                    # bans after 5 failures in 10m, for 1h, longer for repeat offenders")
}

// byPort sorts port specs ("443/tcp") by number, then protocol.
func byPort(specs []string) {
	sort.Slice(specs, func(i, j int) bool {
		var a, b int
		fmt.Sscan(strings.TrimRight(specs[i], "/tcpud"), &a)
		fmt.Sscan(strings.TrimRight(specs[j], "/tcpud"), &b)
		if a != b {
			return a < b
		}
		return specs[i] < specs[j]
	})
}
