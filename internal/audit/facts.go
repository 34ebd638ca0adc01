package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/ruleset"
	"github.com/moat-sh/moat/internal/sshd"
	"github.com/moat-sh/moat/internal/tailscale"
)

// Addresses standing for "someone on the internet" and "a VPN peer" when
// sshd evaluates Match blocks and the ruleset is walked: documentation
// ranges (RFC 5737, RFC 3849) that no real rule should single out, and a
// Tailscale address.
var (
	internetV4 = netip.MustParseAddr("198.51.100.77")
	internetV6 = netip.MustParseAddr("2001:db8:77::77")
	vpnPeerV4  = netip.MustParseAddr("100.100.100.77")
)

// facts are read once per run, lazily, and shared by the layer checks,
// which run concurrently.
type facts struct {
	ctx context.Context
	o   *Options
	h   *host.Host

	mu       sync.Mutex
	notesSet map[string]bool

	users      func() ([]host.User, error)
	listeners  func() ([]host.Listener, error)
	ifaces     func() ([]host.Interface, error)
	routes     func() ([]host.Route, error)
	vpnIfaces  func() ([]host.VPNInterface, error)
	processes  func() ([]host.Process, error)
	packages   func() (map[string]host.Package, error)
	ruleset    func() (*ruleset.Ruleset, error)
	docker     func() ([]host.PublishedPort, error)
	virt       func() (host.Virt, error)
	sshd       func() (*sshdFacts, error)
	sshVersion func() (sshd.Version, error)
	tailscale  func() (*tailscale.State, error)
}

func newFacts(ctx context.Context, o *Options, h *host.Host) *facts {
	f := &facts{ctx: ctx, o: o, h: h, notesSet: map[string]bool{}}
	f.users = sync.OnceValues(h.Users)
	f.listeners = sync.OnceValues(h.Listeners)
	f.ifaces = sync.OnceValues(h.Interfaces)
	f.routes = sync.OnceValues(h.DefaultRoutes)
	f.vpnIfaces = sync.OnceValues(h.VPNInterfaces)
	f.processes = sync.OnceValues(h.Processes)
	f.packages = sync.OnceValues(h.Packages)
	f.virt = sync.OnceValues(h.Virtualization)
	f.docker = sync.OnceValues(func() ([]host.PublishedPort, error) { return h.DockerPublished(ctx) })
	f.ruleset = sync.OnceValues(f.loadRuleset)
	f.sshVersion = sync.OnceValues(func() (sshd.Version, error) { return sshd.Runner{}.Version(ctx) })
	f.sshd = sync.OnceValues(f.loadSSHD)
	f.tailscale = sync.OnceValues(f.loadTailscale)
	return f
}

// note records something the run could not read, once.
func (f *facts) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	f.mu.Lock()
	f.notesSet[s] = true
	f.mu.Unlock()
}

func (f *facts) notes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.notesSet))
	for n := range f.notesSet {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// denied notes a permission failure and reports whether err was one.
func (f *facts) denied(err error, what string) bool {
	if errors.Is(err, fs.ErrPermission) {
		f.note("could not read %s: permission denied (run moat audit as root for full results)", what)
		return true
	}
	return false
}

// socketOwnerNote says why a listening socket has no known owner, naming
// the real cause: not being root, a PID namespace that hides the process
// (a container), or a socket no visible process holds.
func (f *facts) socketOwnerNote() string {
	switch v, _ := f.virt(); {
	case !f.h.Live():
		return "owners of some sockets are unknown: no process in the fixture holds them"
	case os.Geteuid() != 0:
		return "owners of some sockets are unknown (run as root to see every process)"
	case v.Container:
		return fmt.Sprintf("owners of some sockets are unknown: inside a %s container (%s), the process holding them lives outside this PID namespace", v.Kind, v.Signal)
	default:
		return "owners of some sockets are unknown: no process visible here holds them (a kernel socket, or a process in another PID namespace sharing this network namespace)"
	}
}

func (f *facts) hostname() string { return hostnameOf(f.h) }

// vpnRanges are the configured VPN ranges, or those found on the host.
func (f *facts) vpnRanges() []netip.Prefix {
	if len(f.o.VPNRanges) > 0 {
		return f.o.VPNRanges
	}
	p, _ := f.h.VPNPrefixes()
	return p
}

// publicIfaces are the interfaces of the default routes: where the
// internet comes in.
func (f *facts) publicIfaces() []string {
	rs, err := f.routes()
	var out []string
	if err == nil {
		for _, r := range rs {
			if !slices.Contains(out, r.Iface) {
				out = append(out, r.Iface)
			}
		}
	}
	return out
}

// publicAddrs are the addresses on the public interfaces, by family.
func (f *facts) publicAddrs() (v4, v6 netip.Addr) {
	ifs, err := f.ifaces()
	if err != nil {
		return
	}
	pub := f.publicIfaces()
	for _, i := range ifs {
		if !slices.Contains(pub, i.Name) {
			continue
		}
		for _, a := range i.Addrs {
			ad := a.Addr()
			switch {
			case ad.Is4() && !v4.IsValid():
				v4 = ad
			case ad.Is6() && !ad.IsLinkLocalUnicast() && !v6.IsValid():
				v6 = ad
			}
		}
	}
	return
}

func (f *facts) loadRuleset() (*ruleset.Ruleset, error) {
	if f.h.Live() {
		return ruleset.Live(f.ctx)
	}
	b, err := f.h.ReadFile("/.fixture/nft.json")
	if errors.Is(err, fs.ErrNotExist) {
		return ruleset.ParseNFT([]byte(`{"nftables":[{"metainfo":{"json_schema_version":1}}]}`))
	}
	if err != nil {
		return nil, err
	}
	return ruleset.ParseNFT(b)
}

// sshdFacts is sshd's effective config for each (user, source, port)
// that matters, and what the live probe saw.
type sshdFacts struct {
	port     int   // the first port
	ports    []int // every port sshd listens on (capped)
	contexts []sshd.Context
	eff      []sshd.Effective
	base     sshd.Effective // root from the internet: the global view
	probe    *sshd.ProbeResult
	probeErr error
	// failed lists contexts sshd -T could not evaluate, with why; their
	// eff entries are empty and checks skip them.
	failed []string
}

// maxSSHPorts bounds the ports evaluated per user and source.
const maxSSHPorts = 4

// sshUsers adds to names (root, the admin) the accounts sshd would
// consider: every account with a login shell or an authorized_keys file
// (where authorizedKeysFile, AuthorizedKeysFile as sshd reports it, puts
// one), capped so a host with thousands of accounts stays fast.
func (f *facts) sshUsers(names []string, authorizedKeysFile string) []string {
	users, _ := f.users()
	for _, u := range users {
		if len(names) >= 16 {
			break
		}
		if slices.Contains(names, u.Name) {
			continue
		}
		if u.LoginShell || len(u.AuthorizedKeys) > 0 || f.hasKeyFile(u, authorizedKeysFile) {
			names = append(names, u.Name)
		}
	}
	return names
}

// hasKeyFile reports whether one of the files AuthorizedKeysFile names for
// u exists.
func (f *facts) hasKeyFile(u host.User, authorizedKeysFile string) bool {
	for _, p := range host.ExpandAuthorizedKeysFile(authorizedKeysFile, u) {
		if _, err := os.Stat(f.h.Path(p)); err == nil {
			return true
		}
	}
	return false
}

// noSSHD says why there is no sshd to audit, from what is installed:
// "" when an sshd binary (live) or /etc/ssh/sshd_config (fixture) is
// there.
func (f *facts) noSSHD() string {
	if f.h.Live() {
		if _, err := findInPath("sshd"); err != nil {
			return "sshd is not installed"
		}
	} else if _, err := f.h.ReadFile("/etc/ssh/sshd_config"); err != nil {
		return "sshd is not installed (no /etc/ssh/sshd_config)"
	}
	return ""
}

// sshdListeners returns the sockets listening on sshd's ports, and
// whether sshd runs at all; known is false when neither could be read.
func (f *facts) sshdListeners(ports []int) (ls []host.Listener, running, known bool) {
	ps, perr := f.processes()
	for _, p := range ps {
		running = running || p.Is("sshd")
	}
	all, lerr := f.listeners()
	for _, l := range all {
		if l.Proto == "tcp" && slices.Contains(ports, int(l.Addr.Port())) {
			ls = append(ls, l)
		}
	}
	return ls, running, (perr == nil && len(ps) > 0) || lerr == nil
}

// sshdExposure says where sshd can be reached: "private" when every one
// of its sockets listens on a loopback or VPN address, "public"
// otherwise (a private RFC 1918 address counts as public: a cloud VM's
// only address is one, with the internet NATed onto it), "" when nothing
// listens or it cannot be told.
func (f *facts) sshdExposure(sf *sshdFacts) string {
	ls, _, _ := f.sshdListeners(sf.ports)
	if len(ls) == 0 {
		return ""
	}
	vpn := f.vpnRanges()
	for _, l := range ls {
		if s := host.ClassifyAddr(l.Addr.Addr(), vpn); s != host.ScopeLoopback && s != host.ScopeVPN {
			return "public"
		}
	}
	return "private"
}

func (f *facts) loadSSHD() (*sshdFacts, error) {
	if why := f.noSSHD(); why != "" {
		return nil, &noSSHDError{why}
	}
	r := sshd.Runner{Root: f.o.Root}
	if f.h.Live() && os.Geteuid() != 0 {
		// sshd -T refuses to run without reading a host key, which only
		// root can. Evaluate a copy of /etc/ssh with a throwaway key, as for
		// a fixture tree: the same effective values, host keys aside.
		r.Unprivileged = true
		f.note("not root: sshd -T evaluated a copy of /etc/ssh with a throwaway host key")
	}
	base, err := r.Effective(f.ctx, sshd.Context{User: "root", Host: internetV4.String(), Addr: internetV4.String()})
	if err != nil {
		return nil, err
	}
	sf := &sshdFacts{base: base, port: 22}
	for _, v := range base.All("port") {
		if p, err := strconv.Atoi(v); err == nil && !slices.Contains(sf.ports, p) && len(sf.ports) < maxSSHPorts {
			sf.ports = append(sf.ports, p)
		}
	}
	if len(sf.ports) == 0 {
		sf.ports = []int{22}
	}
	sf.port = sf.ports[0]
	// Installed but not running and nothing on its ports (socket
	// activation would listen there): a container image that ships
	// openssh-server without starting it. Its config decides nothing.
	if ls, running, known := f.sshdListeners(sf.ports); known && !running && len(ls) == 0 {
		return nil, &noSSHDError{fmt.Sprintf("sshd is installed but not running, and nothing listens on its port (%s)", joinInts(sf.ports))}
	}
	laddr := "0.0.0.0"
	if v4, _ := f.publicAddrs(); v4.IsValid() {
		laddr = v4.String()
	}
	// The global view is the first port's: Match LocalPort blocks count.
	if b, err := r.Effective(f.ctx, sshd.Context{User: "root", Host: internetV4.String(), Addr: internetV4.String(), LAddr: laddr, LPort: sf.port}); err == nil {
		sf.base = b
	}
	vpnSrc := vpnPeerV4
	for _, p := range f.vpnRanges() {
		if p.Addr().Is4() {
			vpnSrc = p.Addr().Next()
			break
		}
	}
	first := []string{"root"}
	if f.o.AdminUser != "" {
		first = append(first, f.o.AdminUser)
	}
	for _, u := range f.sshUsers(first, sf.base.Get("authorizedkeysfile")) {
		for _, src := range []netip.Addr{internetV4, vpnSrc} {
			for _, port := range sf.ports {
				sf.contexts = append(sf.contexts, sshd.Context{User: u, Host: src.String(), Addr: src.String(), LAddr: laddr, LPort: port})
			}
		}
	}
	eff, err := r.EffectiveMany(f.ctx, sf.contexts)
	if err != nil {
		// Keep what sshd did evaluate: one context it refuses must not
		// hide every SSH finding.
		var ctxs []sshd.Context
		var effs []sshd.Effective
		for i, e := range eff {
			if e.Len() == 0 {
				sf.failed = append(sf.failed, sf.contexts[i].String())
				continue
			}
			ctxs, effs = append(ctxs, sf.contexts[i]), append(effs, e)
		}
		if len(effs) == 0 {
			return nil, err
		}
		f.note("sshd -T could not evaluate %s: %v", plural(len(sf.failed), "context", "contexts"), err)
		sf.contexts, eff = ctxs, effs
	}
	sf.eff = eff
	for _, e := range append([]sshd.Effective{sf.base}, eff...) {
		for _, n := range e.Notes() {
			f.note("sshd -T: %s", n)
		}
	}
	if f.h.Live() && !f.o.NoProbe {
		f.probeSSHD(sf)
	}
	return sf, nil
}

// noSSHDError says there is no sshd to audit, and why.
type noSSHDError struct{ why string }

func (e *noSSHDError) Error() string { return e.why }

// probeSSHD asks the running sshd, over loopback, what it offers each user.
func (f *facts) probeSSHD(sf *sshdFacts) {
	ls, err := f.listeners()
	if err != nil {
		sf.probeErr = err
		return
	}
	target := ""
	for _, l := range ls {
		if l.Proto != "tcp" || int(l.Addr.Port()) != sf.port {
			continue
		}
		a := l.Addr.Addr()
		switch {
		case a.IsUnspecified() && a.Is4():
			target = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), l.Addr.Port()).String()
		case a.IsUnspecified():
			target = netip.AddrPortFrom(netip.IPv6Loopback(), l.Addr.Port()).String()
		default:
			target = l.Addr.String()
		}
		if a.Is4() || a.IsUnspecified() {
			break
		}
	}
	if target == "" {
		sf.probeErr = fmt.Errorf("nothing listens on sshd's port %d", sf.port)
		return
	}
	users := []string{"root"}
	if f.o.AdminUser != "" {
		users = append(users, f.o.AdminUser)
	}
	for _, c := range sf.contexts { // sshUsers' order; f.sshd() is not ready yet
		if len(users) >= 4 {
			break
		}
		if !slices.Contains(users, c.User) {
			users = append(users, c.User)
		}
	}
	res, err := sshd.Probe(f.ctx, target, users, 0)
	sf.probe, sf.probeErr = &res, err
}

// running reports which of the named daemons run.
func (f *facts) running(names ...string) map[string]bool {
	ps, err := f.processes()
	out := map[string]bool{}
	if err != nil {
		return out
	}
	for _, p := range ps {
		for _, n := range names {
			if p.Is(n) {
				out[n] = true
			}
		}
	}
	return out
}

func installed(pk map[string]host.Package, name string) bool {
	p, ok := pk[name]
	return ok && p.Installed
}

func joinComma(ss []string) string { return strings.Join(ss, ", ") }

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
