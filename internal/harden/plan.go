package harden

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

// Input is what the host layers are planned from.
type Input struct {
	Host HostConfig
	SSH  SSHConfig
	VPN  vpn.Config
	// Source names the config file for the headers of written files; ""
	// means moat's built-in defaults.
	Source string
}

// Options say how to read the host.
type Options struct {
	// Root is a fixture tree prefix; "" is the live system.
	Root string
	// Session is SSH_CONNECTION of the operator's session, "" if unknown.
	Session string
	// Operator is the user the operator's SSH session logged in as, ""
	// if unknown: plan warns when the change would no longer let it in.
	Operator string
	// OperatorKey is the fingerprint (SHA256:…) of the key the
	// operator's session logged in with, from sshd's log; "" if unknown.
	OperatorKey string
	// Force allows ssh.exposure vpn before a login over the VPN was seen.
	Force bool
	// SSHD is the sshd binary; "" finds it.
	SSHD string
	// SecondPaths prove a working way back in over the VPN other than
	// this session (a recent WireGuard admin-peer handshake, a Tailscale
	// node key far from expiry). When any are given, ssh.exposure vpn
	// needs one of them to pass (or --force).
	SecondPaths []PathCheck
}

// PathCheck checks one VPN's second working path: the evidence when it
// holds, else an error saying what is missing.
type PathCheck func(ctx context.Context) (evidence string, err error)

// Plan is what applying the host layers would do.
type Plan struct {
	// Steps, in the order they apply: admin, updates, swap, sysctl, sshd.
	Steps []*change.Step
	// Refusals are why apply must not go ahead; plan shows them.
	Refusals []string
	// SSH is what the firewall and the self-probe need to know of sshd.
	SSH SSHPlan
}

// SSHPlan is sshd's reachability before and after.
type SSHPlan struct {
	// Port is sshd's port after confirm; Ports, all it listens on during
	// the window (the old ones too, after a move).
	Port  uint16
	Ports []uint16
	// OldPorts are the ports sshd listens on now.
	OldPorts []uint16
	// Listen are the addresses sshd is limited to (exposure vpn); empty
	// means every address.
	Listen []netip.Addr
	// ProbeUser is who the self-probe asks for authentication methods.
	ProbeUser string
	// VPNLogin is the evidence that a login over the VPN works, "" if none
	// was found.
	VPNLogin string
	// SecondPath is the evidence of a second working path into the VPN,
	// "" if none was asked for or found.
	SecondPath string
	// Forced is set when --force let ssh.exposure vpn past a missing
	// proof: apply prints the break-glass recipe.
	Forced bool
}

// Moved reports whether the port changes.
func (p SSHPlan) Moved() bool {
	return len(p.OldPorts) > 0 && !slices.Equal(p.OldPorts, []uint16{p.Port})
}

// MakePlan reads the host and plans every host layer. It changes nothing
// (sshd -T runs on temporary copies of the configuration).
func MakePlan(ctx context.Context, in Input, opt Options) (*Plan, error) {
	f, err := gather(ctx, in, opt)
	if err != nil {
		return nil, err
	}
	p := &Plan{}
	admin, err := planAdmin(f, in)
	if err != nil {
		return nil, err
	}
	sshd, err := planSSHD(ctx, f, in, admin, p)
	if err != nil {
		return nil, err
	}
	// sshd last (and the firewall after it, in the caller): the changes
	// that can lock the operator out run right before the self-probe,
	// after the slow ones (a package install).
	p.Steps = append(p.Steps, admin.step)
	p.Steps = append(p.Steps, planUpdates(f, in)...)
	swap, swappiness := planSwap(f, in, p)
	if swap != nil {
		p.Steps = append(p.Steps, swap)
	}
	if st := planSysctl(f, in, swappiness); st != nil {
		p.Steps = append(p.Steps, st)
	}
	p.Steps = append(p.Steps, sshd)
	p.Steps = slices.DeleteFunc(p.Steps, func(s *change.Step) bool { return s == nil })
	return p, nil
}

// facts is what planning reads of the host, once.
type facts struct {
	root    string
	h       *host.Host
	live    bool
	session change.Session
	hasSess bool
	opt     Options

	users    map[string]host.User
	order    []string // user names in passwd order
	groups   map[string]host.Group
	packages map[string]host.Package // nil: unknown
	mem      *host.MemInfo
	swaps    []host.Swap
	virt     host.Virt
	ifaces   []host.Interface
	vpnIfs   []host.VPNInterface
	wan      string // interface of the default route
	docker   bool
	sudoers  []host.SudoRule
}

func gather(ctx context.Context, in Input, opt Options) (*facts, error) {
	h := host.New(opt.Root)
	f := &facts{root: opt.Root, h: h, live: h.Live(), opt: opt}
	f.session, f.hasSess = change.ParseSession(opt.Session)
	users, err := h.Users()
	if len(users) == 0 && err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	f.users = map[string]host.User{}
	for _, u := range users {
		if _, dup := f.users[u.Name]; !dup {
			f.users[u.Name] = u
			f.order = append(f.order, u.Name)
		}
	}
	if f.groups, err = h.Groups(); err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	if pk, err := h.Packages(); err == nil {
		f.packages = pk
	}
	if m, err := h.Memory(); err == nil {
		f.mem = &m
	}
	f.swaps, _ = h.Swaps()
	f.virt, _ = h.Virtualization()
	f.ifaces, _ = h.Interfaces()
	f.vpnIfs, _ = h.VPNInterfaces()
	if routes, err := h.DefaultRoutes(); err == nil && len(routes) > 0 {
		f.wan = routes[0].Iface
	}
	f.docker = h.DockerPresent()
	f.sudoers, _ = h.SudoRules()
	return f, nil
}

// vpnAddrs are the host's addresses on the configured VPN interfaces (or
// any VPN interface when none is configured), up interfaces only.
func (f *facts) vpnAddrs(c vpn.Config) []netip.Addr {
	var out []netip.Addr
	for _, i := range f.ifaces {
		if !i.Up {
			continue
		}
		named := slices.ContainsFunc(c.Interfaces, func(p string) bool { return vpn.MatchInterface(p, i.Name) })
		if !named && len(c.Interfaces) > 0 {
			continue
		}
		if !named && !vpn.IsVPNInterface(i.Name) {
			continue
		}
		for _, a := range i.Addrs {
			if a.Addr().IsLinkLocalUnicast() {
				continue
			}
			out = append(out, a.Addr())
		}
	}
	return out
}

// inSudoGroup names the sudo group of this system ("sudo" on Debian and
// Ubuntu, "wheel" elsewhere).
func (f *facts) sudoGroup() (string, bool) {
	for _, g := range []string{"sudo", "wheel"} {
		if _, ok := f.groups[g]; ok {
			return g, true
		}
	}
	return "", false
}

func (f *facts) memberOf(user, group string) bool {
	g, ok := f.groups[group]
	if !ok {
		return false
	}
	if slices.Contains(g.Members, user) {
		return true
	}
	u, ok := f.users[user]
	return ok && u.GID == g.GID
}

// groupsOf lists the groups of user, primary first.
func (f *facts) groupsOf(user string) []string {
	u, ok := f.users[user]
	var out []string
	for name, g := range f.groups {
		if (ok && g.GID == u.GID) || slices.Contains(g.Members, user) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func enabled(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// header starts every file moat writes: it names moat and the config.
func header(source string, lines ...string) string {
	if source == "" {
		source = "moat's built-in defaults (no moat.yaml)"
	}
	var b strings.Builder
	b.WriteString("# Written by moat from " + source + ".\n")
	b.WriteString("# moat apply rewrites this file: change moat.yaml instead.\n")
	for _, l := range lines {
		if l == "" {
			b.WriteString("#\n")
			continue
		}
		b.WriteString("# " + l + "\n")
	}
	return b.String()
}

// exposure normalises the ssh exposure (empty is public).
func exposure(e schema.Exposure) schema.Exposure {
	if e == "" {
		return schema.ExposurePublic
	}
	return e
}
