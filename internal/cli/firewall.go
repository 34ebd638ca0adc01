package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/geo"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

// layerCommand is one layer's `moat plan LAYER` or `moat apply LAYER`.
// Each layer's file adds its own; part 4's transaction layer will run
// them all together.
type layerCommand func(e *env, args []string) int

var (
	planners = map[string]layerCommand{}
	appliers = map[string]layerCommand{}
)

func init() {
	planners["firewall"] = runPlanFirewall
	appliers["firewall"] = runApplyFirewall
	// moat plan and moat apply (change.go) run every layer as one
	// transaction, and hand "plan firewall" and "apply firewall" here.
	register(command{"firewall", "the firewall's live state: firewall status [--json]", 40, runFirewall})
}

func runPlanFirewall(e *env, args []string) int {
	f := newFlags(e, "plan firewall", "plan firewall [-c FILE]")
	if code, ok := f.parse(args); !ok {
		return code
	}
	c, code, ok := loadConfig(e, f)
	if !ok {
		return code
	}
	if !c.Firewall.IsEnabled() {
		fmt.Fprintln(e.stdout, "firewall.enabled is false: moat does not manage table inet moat")
		return ExitOK
	}
	ctx := context.Background()
	spec, code, ok := firewallSpec(e, c, host.New(""))
	if !ok {
		return code
	}
	plan, err := firewall.MakePlan(ctx, &spec)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat plan firewall: %v\n", err)
		return ExitRuntime
	}
	if !plan.Changes() {
		fmt.Fprintln(e.stdout, "table inet moat: no changes")
	} else {
		if plan.Live == "" {
			fmt.Fprintln(e.stdout, "table inet moat is not loaded; apply would load:")
		}
		io.WriteString(e.stdout, plan.Diff)
		if plan.GeoAdd > 0 || plan.GeoDel > 0 {
			fmt.Fprintf(e.stdout, "geo sets: +%d -%d prefixes\n", plan.GeoAdd, plan.GeoDel)
		}
	}
	// The lockout check is read-only too: show where apply would stand.
	paths, err := firewall.OperatorPaths(&spec, operatorReach(host.New(""), os.Getenv))
	if err != nil {
		fmt.Fprintf(e.stdout, "\napply would refuse: %v\n", err)
		return ExitOK
	}
	results, err := firewall.CheckLockout(ctx, plan.Table, paths)
	var lock *firewall.LockoutError
	if err != nil && !errors.As(err, &lock) {
		fmt.Fprintf(e.stderr, "moat plan firewall: %v\n", err)
		return ExitRuntime
	}
	fmt.Fprintln(e.stdout, "\nyour ways into sshd after apply:")
	writePaths(e.stdout, results)
	if lock != nil {
		fmt.Fprintln(e.stdout, "apply would refuse: none of them stays open")
	}
	return ExitOK
}

func writePaths(w io.Writer, results []firewall.PathResult) {
	for _, r := range results {
		mark := "open   "
		if !r.Verdict.Accepted {
			mark = "DROPPED"
		}
		fmt.Fprintf(w, "  %s %s (%s)\n", mark, r.Path, r.Verdict)
	}
}

func runApplyFirewall(e *env, args []string) int {
	f := newFlags(e, "apply firewall", "apply firewall --yes [-c FILE] [--root DIR]")
	yes := f.Bool("yes", false, "apply without the confirm-or-rollback transaction (required until moat apply has one)")
	f.StringVar(&f.root, "root", "", "write the boot files (moat.nft, the unit) under `dir` instead of /")
	if code, ok := f.parse(args); !ok {
		return code
	}
	if !*yes {
		fmt.Fprintln(e.stderr, "moat apply firewall: add --yes: the confirm-or-rollback transaction is not there yet, so apply asks you to be sure (run moat plan firewall first); the lockout check runs either way")
		return ExitUsage
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(e.stderr, "moat apply firewall: needs root (run with sudo)")
		return ExitRuntime
	}
	// One change at a time: a pending change's rollback would delete
	// what this writes, and its confirm would overwrite it.
	recoverExpired(context.Background(), e, f.root)
	if err := change.NewStore(f.root).RefusePending(); err != nil {
		fmt.Fprintf(e.stderr, "moat apply firewall: refusing, nothing was changed: %v\n", err)
		return ExitUsage
	}
	c, code, ok := loadConfig(e, f)
	if !ok {
		return code
	}
	if !c.Firewall.IsEnabled() {
		fmt.Fprintln(e.stdout, "firewall.enabled is false: nothing to apply")
		return ExitOK
	}
	live := host.New("")
	spec, code, ok := firewallSpec(e, c, live)
	if !ok {
		return code
	}
	paths, err := firewall.OperatorPaths(&spec, operatorReach(live, os.Getenv))
	if err != nil {
		fmt.Fprintf(e.stderr, "moat apply firewall: refusing: %v\n", err)
		return ExitUsage
	}
	a, err := firewall.Apply(context.Background(), &spec, firewall.ApplyOptions{Paths: paths, Root: f.root})
	var lock *firewall.LockoutError
	switch {
	case errors.As(err, &lock):
		fmt.Fprintf(e.stderr, "moat apply firewall: %v\n", err)
		return ExitUsage
	case err != nil:
		fmt.Fprintf(e.stderr, "moat apply firewall: %v\n", err)
		return ExitRuntime
	}
	how := "replaced in place, bans kept"
	if !a.Replaced.Incremental {
		how = "loaded"
		if a.Replaced.RestoredBans > 0 {
			how = fmt.Sprintf("replaced, %d bans carried over", a.Replaced.RestoredBans)
		}
	}
	fmt.Fprintf(e.stdout, "table inet moat %s in one transaction (%s)\n", how, a.Replaced.Took.Round(100_000))
	writePaths(e.stdout, a.Paths)
	fmt.Fprintf(e.stdout, "persisted for boot: %s (loaded by moat-firewall.service)\n", filepath.Join(f.root, firewall.BootPath))
	return ExitOK
}

func runFirewall(e *env, args []string) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(e.stderr, "Usage: moat firewall status [--json]")
		return ExitUsage
	}
	f := newFlags(e, "firewall status", "firewall status [--json] [--root DIR]")
	asJSON := f.Bool("json", false, "print the status as JSON")
	f.StringVar(&f.root, "root", "", "look for the boot files under `dir` instead of /")
	if code, ok := f.parse(args[1:]); !ok {
		return code
	}
	st, err := firewall.ReadStatus(context.Background(), f.root)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat firewall status: %v (run as root)\n", err)
		return ExitRuntime
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return ExitRuntime
		}
		return ExitOK
	}
	st.WriteText(e.stdout)
	return ExitOK
}

// firewallSpec resolves what the table depends on: the firewall, ssh, vpn
// and admin sections, the public interface (from the default route when
// not configured) and the geo ranges from the country database.
func firewallSpec(e *env, c *config.Config, h *host.Host) (firewall.Spec, int, bool) {
	s := firewall.SpecFrom(c.Firewall)
	s.Source = c.File
	s.SSH = firewall.SSH{Port: uint16(c.SSH.Port), Exposure: c.SSH.Exposure, RateLimit: c.SSH.RateLimit}
	s.VPN = c.VPN
	s.Blocklists = c.Guard.IsEnabled() && len(c.Guard.Blocklists) > 0
	if p, ok := wireGuardPort(c); ok && !slices.ContainsFunc(s.Public, func(q schema.PortSpec) bool { return q.Contains("udp", p.From) }) {
		s.Public = append(s.Public, p) // peers must reach the VPN from anywhere
	}
	for _, a := range c.Host.Admin.Sources {
		s.Admin = append(s.Admin, a.Prefix)
	}
	if s.PublicInterface == "" {
		if routes, err := h.DefaultRoutes(); err == nil && len(routes) > 0 {
			s.PublicInterface = routes[0].Iface
		}
	}
	if ifs, err := h.Interfaces(); err == nil {
		for _, i := range ifs {
			s.Links = append(s.Links, vpn.Link{Name: i.Name, Addrs: i.Addrs})
		}
	}
	for _, p := range c.VPN.Unpinned(s.Links, s.PublicInterface) {
		fmt.Fprintf(e.stderr, "moat: warning: vpn.ranges %s is on no interface of this host and vpn.interfaces is empty: the firewall trusts it from nowhere (a VPN source is only the VPN's on the VPN's interface); list the VPN's interface under vpn.interfaces\n", p)
	}
	if g := c.Firewall.Geo; g.Mode != "" {
		db, err := geo.Open(g.Database)
		if err != nil {
			fmt.Fprintf(e.stderr, "moat: firewall.geo.database: %v\n", err)
			return s, ExitUsage, false
		}
		defer db.Close()
		countries := make([]string, len(g.Countries))
		for i, c := range g.Countries {
			countries[i] = string(c)
		}
		if s.Geo.V4, s.Geo.V6, err = db.Prefixes(countries); err != nil {
			fmt.Fprintf(e.stderr, "moat: firewall.geo: %v\n", err)
			return s, ExitUsage, false
		}
	}
	if err := s.Validate(); err != nil {
		fmt.Fprintf(e.stderr, "moat: firewall: %v\n", err)
		return s, ExitUsage, false
	}
	return s, 0, true
}

// operatorReach gathers how the operator reaches sshd: the interfaces,
// their SSH session, and the ports sshd listens on.
func operatorReach(h *host.Host, getenv func(string) string) firewall.Reach {
	var r firewall.Reach
	r.Interfaces, _ = h.Interfaces()
	if o := h.Operator(os.Getpid(), getenv); o.Conn.Valid() {
		r.Operator, r.Server = o.Conn.Client.Addr(), o.Conn.Server.Addr()
	}
	if ls, err := h.Listeners(); err == nil {
		for _, l := range ls {
			if l.Process == "sshd" && l.Proto == "tcp" && !l.Addr.Addr().IsLoopback() && !slices.Contains(r.SSHDPorts, l.Addr.Port()) {
				r.SSHDPorts = append(r.SSHDPorts, l.Addr.Port())
			}
		}
	}
	return r
}
