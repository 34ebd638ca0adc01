package firewall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/ruleset"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

// Path is one way the operator reaches sshd: a new TCP connection
// arriving on IIf from Saddr to Daddr:Port.
type Path struct {
	Name         string // for reports: "you (SSH_CONNECTION)", "admin source 203.0.113.7", …
	IIf          string
	Saddr, Daddr netip.Addr
	Port         uint16
}

func (p Path) String() string {
	iif := p.IIf
	if iif == "" {
		iif = "any interface"
	}
	src := "any source"
	if p.Saddr.IsValid() {
		src = p.Saddr.String()
	}
	return fmt.Sprintf("%s: %s on %s to port %d", p.Name, src, iif, p.Port)
}

// PathResult is the lockout check's answer for one path.
type PathResult struct {
	Path    Path
	Verdict ruleset.Verdict
}

// LockoutError refuses a table that would leave the operator no way into
// sshd: every path is dropped (or not surely accepted).
type LockoutError struct {
	Results []PathResult
}

func (e *LockoutError) Error() string {
	var b strings.Builder
	b.WriteString("refusing to apply: no way into sshd would stay open, you would be locked out")
	for _, r := range e.Results {
		fmt.Fprintf(&b, "\n  %s: %s", r.Path, r.Verdict)
	}
	b.WriteString("\nhint: keep ssh.exposure public (or vpn+public) until the VPN path works, add your address to host.admin.sources, or check ssh.port against the port sshd listens on")
	return b.String()
}

// Reach is what the caller knows about how the operator reaches sshd.
type Reach struct {
	// Interfaces are the host's interfaces (host.Host.Interfaces).
	Interfaces []host.Interface
	// Operator and Server are the client and server addresses of the
	// operator's SSH session (SSH_CONNECTION); zero when unknown.
	Operator, Server netip.Addr
	// SSHDPorts are the ports sshd listens on; empty means the Spec's.
	SSHDPorts []uint16
}

// internetV4 stands for any address on the internet.
var internetV4 = netip.MustParseAddr("198.51.100.1")

// ErrVPNDown refuses a vpn-only exposure while no VPN interface is up
// with an address: applying it would leave SSH reachable from nowhere.
var ErrVPNDown = errors.New("ssh.exposure is vpn but no VPN interface is up with an address")

// OperatorPaths lists the ways the operator may reach sshd under s: their
// own session (SSH_CONNECTION), each admin source from the public
// interface, and the VPN when the exposure includes it and a VPN
// interface is up; when none of these is known and SSH is public, an
// internet address stands in. The lockout check wants at least one of
// them to stay open.
func OperatorPaths(s *Spec, r Reach) ([]Path, error) {
	ports := slices.Clone(r.SSHDPorts)
	if len(ports) == 0 {
		ports = []uint16{s.SSH.Port}
	}
	slices.Sort(ports)
	ports = slices.Compact(ports)
	pubAddr := func(v6 bool) netip.Addr { return ifaceAddr(r.Interfaces, s.PublicInterface, v6) }

	var paths []Path
	add := func(p Path) {
		for _, port := range ports {
			p.Port = port
			paths = append(paths, p)
		}
	}
	if r.Operator.IsValid() {
		op := r.Operator.Unmap()
		iif := ifaceOf(r.Interfaces, r.Server)
		if iif == "" {
			iif = s.PublicInterface
		}
		daddr := r.Server.Unmap()
		if !daddr.IsValid() {
			daddr = pubAddr(op.Is6())
		}
		add(Path{Name: "your session (SSH_CONNECTION)", IIf: iif, Saddr: op, Daddr: daddr})
	}
	for _, a := range s.Admin {
		if !a.IsValid() {
			continue
		}
		addr := a.Masked().Addr()
		if !a.IsSingleIP() && addr.Next().IsValid() {
			addr = addr.Next() // a host inside, not the network address
		}
		add(Path{Name: "admin source " + prefixString(a), IIf: s.PublicInterface, Saddr: addr, Daddr: pubAddr(addr.Is6())})
	}
	if s.SSH.Exposure.VPN() {
		iif, own := upVPN(r.Interfaces, s.VPN.Interfaces)
		if iif == "" && s.SSH.Exposure == schema.ExposureVPN {
			return nil, fmt.Errorf("%w (vpn.interfaces: %s): bring the VPN up, or use exposure vpn+public until it works", ErrVPNDown, strings.Join(s.VPN.Interfaces, ", "))
		}
		if iif != "" {
			add(Path{Name: "the VPN via " + iif, IIf: iif, Saddr: vpnPeer(s.VPN, own), Daddr: own.Addr()})
		}
	}
	if len(paths) == 0 && s.SSH.Exposure.Public() {
		// Nothing known of the operator: any internet address stands in.
		add(Path{Name: "an internet address", IIf: s.PublicInterface, Saddr: internetV4, Daddr: pubAddr(false)})
	}
	return paths, nil
}

// ifaceAddr returns an address of the named interface in the family, or
// the zero address ("any").
func ifaceAddr(ifs []host.Interface, name string, v6 bool) netip.Addr {
	for _, i := range ifs {
		if i.Name != name {
			continue
		}
		for _, a := range i.Addrs {
			if a.Addr().Is6() == v6 && !a.Addr().IsLinkLocalUnicast() {
				return a.Addr()
			}
		}
	}
	return netip.Addr{}
}

// ifaceOf returns the interface holding addr: where the operator's
// session arrives, as a rule.
func ifaceOf(ifs []host.Interface, addr netip.Addr) string {
	addr = addr.Unmap()
	for _, i := range ifs {
		for _, a := range i.Addrs {
			if a.Addr() == addr {
				return i.Name
			}
		}
	}
	return ""
}

// upVPN returns the first VPN interface (patterns like wg* allowed) that
// is up with an address, and that address.
func upVPN(ifs []host.Interface, names []string) (string, netip.Prefix) {
	for _, n := range names {
		for _, i := range ifs {
			if !i.Up || len(i.Addrs) == 0 || !ifaceMatch(n, i.Name) {
				continue
			}
			for _, a := range i.Addrs {
				if !a.Addr().IsLinkLocalUnicast() {
					return i.Name, a
				}
			}
		}
	}
	return "", netip.Prefix{}
}

func ifaceMatch(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	return pattern == name
}

// vpnPeer picks a source address a VPN peer would use: in the first VPN
// range of own's family, else in own's subnet; never own itself.
func vpnPeer(c vpn.Config, own netip.Prefix) netip.Addr {
	pick := func(p netip.Prefix) netip.Addr {
		a := p.Masked().Addr().Next()
		if a == own.Addr() {
			a = a.Next()
		}
		if !p.Contains(a) {
			return netip.Addr{}
		}
		return a
	}
	for _, r := range c.Ranges {
		if r.Addr().Is4() == own.Addr().Is4() {
			if a := pick(r.Prefix); a.IsValid() {
				return a
			}
		}
	}
	if own.IsValid() && !own.IsSingleIP() {
		return pick(own)
	}
	return netip.Addr{}
}

// CheckLockout evaluates table (rendered by Render) in place of the live
// table inet moat, together with every other table of the caller's
// network namespace, for each path, pessimistically: a path counts only
// if its packets are surely accepted. It returns every path's verdict,
// and a *LockoutError when none stays open.
func CheckLockout(ctx context.Context, table string, paths []Path) ([]PathResult, error) {
	if len(paths) == 0 {
		return nil, &LockoutError{}
	}
	cand, err := candidateRuleset(table)
	if err != nil {
		return nil, err
	}
	live, err := liveOthers(ctx)
	if err != nil {
		return nil, fmt.Errorf("lockout check: %w", err)
	}
	rs := live.Merge(cand)
	results := make([]PathResult, 0, len(paths))
	open := false
	for _, p := range paths {
		v := rs.Evaluate(ruleset.Packet{
			Hook: ruleset.HookInput, IIf: p.IIf, Saddr: p.Saddr, Daddr: p.Daddr,
			V6: p.Saddr.Is6() || p.Daddr.Is6(), Proto: "tcp", Sport: 50000, Dport: p.Port,
		}, ruleset.Pessimistic)
		open = open || v.Accepted
		results = append(results, PathResult{Path: p, Verdict: v})
	}
	if !open {
		return results, &LockoutError{Results: results}
	}
	return results, nil
}

// candidateRuleset loads table into a scratch network namespace and reads
// it back as the kernel holds it, so the check judges exactly what nft
// would load.
func candidateRuleset(table string) (*ruleset.Ruleset, error) {
	var out []byte
	err := inScratch(func() error {
		ctx := context.Background()
		if _, err := runNFT(ctx, []byte(table), "-f", "-"); err != nil {
			return err
		}
		var err error
		out, err = runNFT(ctx, nil, "-j", "list", "table", Family, Table)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lockout check: load the candidate table in a scratch namespace: %w", err)
	}
	rs, err := ruleset.ParseNFT(out)
	if err != nil {
		return nil, fmt.Errorf("lockout check: %w", err)
	}
	return rs, nil
}

// liveOthers reads every table of the caller's network namespace but
// table inet moat, set elements included, as ruleset.Live would, without
// listing moat's own sets: `nft -j list ruleset` with 100,000 bans takes
// seconds (the kernel dumps an interval set in quadratic time, and nft
// post-processes every element). It lists the ruleset tersely, then each
// other table's sets; iptables-legacy tables come from iptables-legacy-save.
// When a table holds iptables extensions nft cannot show (xt matches), it
// falls back to ruleset.Live, which re-reads those through
// iptables-nft-save, slow or not.
func liveOthers(ctx context.Context) (*ruleset.Ruleset, error) {
	out, err := runNFT(ctx, nil, "-t", "-j", "list", "ruleset")
	if err != nil {
		return nil, fmt.Errorf("read ruleset: %w", err)
	}
	if bytes.Contains(out, []byte(`"xt":`)) {
		rs, err := ruleset.Live(ctx)
		if err != nil {
			return nil, err
		}
		return rs.Without(ruleset.FamilyInet, Table), nil
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("read ruleset: %w", err)
	}
	keep := doc.Nftables[:0]
	for _, o := range doc.Nftables {
		var kind string
		var v struct{ Family, Table, Name string }
		for k, raw := range o {
			kind = k
			_ = json.Unmarshal(raw, &v)
		}
		if v.Family == Family && (v.Table == Table || kind == "table" && v.Name == Table) {
			continue
		}
		if kind == "set" || kind == "map" {
			full, err := runNFT(ctx, nil, "-j", "list", kind, v.Family, v.Table, v.Name)
			if err != nil {
				return nil, fmt.Errorf("read ruleset: %w", err)
			}
			var one struct {
				Nftables []map[string]json.RawMessage `json:"nftables"`
			}
			if err := json.Unmarshal(full, &one); err != nil {
				return nil, fmt.Errorf("read ruleset: %w", err)
			}
			for _, x := range one.Nftables {
				if x[kind] != nil {
					o = x
				}
			}
		}
		keep = append(keep, o)
	}
	doc.Nftables = keep
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	rs, err := ruleset.ParseNFT(b)
	if err != nil {
		return nil, fmt.Errorf("read ruleset: %w", err)
	}
	for _, l := range []struct {
		family      ruleset.Family
		names, tool string
	}{
		{ruleset.FamilyIP, "/proc/thread-self/net/ip_tables_names", "iptables-legacy-save"},
		{ruleset.FamilyIP6, "/proc/thread-self/net/ip6_tables_names", "ip6tables-legacy-save"},
	} {
		names, err := os.ReadFile(l.names)
		if err != nil || len(bytes.TrimSpace(names)) == 0 {
			continue // no legacy tables loaded
		}
		tool, err := toolPath(l.tool)
		if err != nil {
			return nil, fmt.Errorf("read ruleset: the kernel holds iptables-legacy tables but %w (install iptables)", err)
		}
		save, err := exec.CommandContext(ctx, tool).Output()
		if err != nil {
			return nil, fmt.Errorf("read ruleset: the kernel holds iptables-legacy tables but %s failed: %w (install iptables)", l.tool, err)
		}
		legacy, err := ruleset.ParseIptablesSave(string(save), l.family)
		if err != nil {
			return nil, fmt.Errorf("read ruleset: %s: %w", l.tool, err)
		}
		rs = rs.Merge(legacy)
	}
	return rs, nil
}
