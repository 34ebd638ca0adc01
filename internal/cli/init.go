package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
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
	f := newFlags(e, "init", "init [-o FILE [--force]] [--root DIR]").withRoot()
	out := f.String("o", "", "write the starter to `file` (its directory is made, mode 0700) instead of printing it")
	force := f.Bool("force", false, "with -o: replace an existing file")
	if code, ok := f.parse(args); !ok {
		return code
	}
	if *force && *out == "" {
		fmt.Fprintln(e.stderr, "moat init: --force needs -o FILE")
		return ExitUsage
	}
	if *out != "" && !*force {
		// Before looking at the host: a refusal should be quick and clear.
		if _, err := os.Lstat(*out); err == nil {
			fmt.Fprintf(e.stderr, "moat init: %s exists; not overwritten (check it with: moat config check %s; or replace it with --force)\n", *out, *out)
			return ExitUsage
		}
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
	for _, n := range s.notes {
		fmt.Fprintln(e.stderr, "moat init: "+n)
	}
	if *out == "" {
		io.WriteString(e.stdout, b.String())
		return ExitOK
	}
	if err := writeStarter(*out, []byte(b.String()), *force); err != nil {
		fmt.Fprintf(e.stderr, "moat init: %v\n", err)
		if errors.Is(err, fs.ErrExist) {
			return ExitUsage
		}
		return ExitRuntime
	}
	fmt.Fprintf(e.stdout, "moat init: wrote %s; review it, then: moat config check %s\n", *out, *out)
	return ExitOK
}

// writeStarter writes the starter config at path, mode 0600 (it names the
// admin user and the operator's address), making its directory with mode
// 0700 when missing. Without force an existing file is kept, also one
// that appears while init runs: the new file is linked into place, which
// fails where a file exists, instead of renamed over it.
func writeStarter(path string, data []byte, force bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".moat-init-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if force {
		err = os.Rename(tmp.Name(), path)
	} else if err = os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists; not overwritten (replace it with --force): %w", path, fs.ErrExist)
	}
	if err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
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
	p("# Review it, then: moat config check FILE; moat audit; moat plan.")
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
