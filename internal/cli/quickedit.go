package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/yamledit"
)

func init() {
	register(command{"allow", "allow PORT [--from vpn|CIDR]: open a port in moat.yaml, then plan and apply", 35, runAllow})
	register(command{"deny", "deny PORT: close a port in moat.yaml, then plan and apply", 36, runDeny})
	register(command{"expose", "expose ssh public|vpn+public|vpn: stage SSH's exposure in moat.yaml, then plan and apply", 37, runExpose})
}

// quickFlags are the flags every quick edit takes: where the config is,
// and how far to go (edit only, plan, or the normal apply).
type quickFlags struct {
	*flags
	dryRun, noApply, yes, force *bool
	window                      *string
}

func newQuickFlags(e *env, name, synopsis string) *quickFlags {
	f := &quickFlags{flags: newFlags(e, name, synopsis+" [-c FILE] [--dry-run | --no-apply] [--yes] [--confirm 120s] [--root DIR]").withRoot()}
	f.dryRun = f.Bool("dry-run", false, "print the edit and the plan; change nothing")
	f.noApply = f.Bool("no-apply", false, "edit moat.yaml and print the plan; do not apply")
	f.yes = f.Bool("yes", false, "passed to moat apply: confirm at once if its self-probe passes")
	f.force = f.Bool("force", false, "passed to moat apply (ssh.exposure vpn before a VPN login was seen)")
	f.window = f.String("confirm", "", "passed to moat apply: how long the change waits for moat confirm")
	return f
}

// quickEdit is one edit: it returns the new file, a summary, or "" new
// bytes when nothing needs changing (summary says why).
type quickEdit struct {
	verb string
	// edit computes the new file from the old.
	edit func(src []byte, cfg *config.Config) (out []byte, summary string, err error)
	// holds checks the edited config says what was asked.
	holds func(c *config.Config) bool
	// same blanks what the edit may change, so that everything else can
	// be compared: an edit that moved anything else is refused.
	same func(c *config.Config)
}

// quickEditPlans is false in tests of the edit alone, which stop after
// writing moat.yaml (the plan and apply paths have their own tests).
var quickEditPlans = true

func runQuickEdit(e *env, f *quickFlags, q quickEdit) int {
	path := config.Path(f.config)
	// A moat.yaml that is a link (to a checkout, say) is edited where it
	// points, and stays a link.
	file := path
	if real, err := filepath.EvalSymlinks(path); err == nil {
		file = real
	}
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	_, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(e.stderr, "moat %s: %s not found (hint: moat init > %s writes a starter)\n", q.verb, path, path)
		return ExitUsage
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "moat %s: %v\n", q.verb, err)
		return ExitRuntime
	}
	src, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat %s: %v\n", q.verb, err)
		return ExitRuntime
	}
	old, err := config.Parse(path, src)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		fmt.Fprintf(e.stderr, "moat %s: %s is not valid now; fix it first (moat config check), nothing was changed\n", q.verb, path)
		return ExitUsage
	}
	out, summary, err := q.edit(src, old)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat %s: refusing, nothing was changed: %v\n", q.verb, err)
		return ExitUsage
	}
	if out == nil {
		fmt.Fprintf(e.stdout, "%s: %s\n", path, summary)
		return ExitOK
	}
	// The same validation as moat config check, then proof that the
	// edit did what was asked and nothing else.
	next, err := config.Parse(path, out)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		fmt.Fprintf(e.stderr, "moat %s: refusing, the edited config would not be valid; %s is untouched\n", q.verb, path)
		return ExitUsage
	}
	if !q.holds(next) {
		fmt.Fprintf(e.stderr, "moat %s: refusing, the edit did not take (a YAML shape the editor misread: edit %s by hand); it is untouched\n", q.verb, path)
		return ExitRuntime
	}
	a, b := *old, *next
	q.same(&a)
	q.same(&b)
	if !config.Same(&a, &b) {
		fmt.Fprintf(e.stderr, "moat %s: refusing, the edit would change more than asked (a YAML shape the editor misread: edit %s by hand); it is untouched\n", q.verb, path)
		return ExitRuntime
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", path, summary)
	cw := colourPlan(e.stdout)
	fmt.Fprint(cw, firewall.UnifiedDiff(path, path+" (edited)", string(src), string(out)))
	cw.Flush()
	if *f.dryRun {
		if !quickEditPlans {
			return ExitOK
		}
		return planDraft(e, f.root, path, out)
	}
	// Someone else's edit since we read it is not overwritten.
	if now, err := os.ReadFile(file); err != nil || !bytes.Equal(now, src) {
		fmt.Fprintf(e.stderr, "moat %s: %s changed while this edit was prepared; run it again (it is untouched)\n", q.verb, path)
		return ExitRuntime
	}
	if !quickEditPlans || *f.noApply {
		// Edit only: no transaction, the operator applies later.
		if err := writeConfigKeep(file, src, out); err != nil {
			fmt.Fprintf(e.stderr, "moat %s: write %s: %v (it is untouched)\n", q.verb, path, err)
			return ExitRuntime
		}
		if !quickEditPlans {
			return ExitOK
		}
		fmt.Fprintln(e.stdout)
		return runPlan(e, rootArgs([]string{"-c", path}, f.root))
	}
	// moat.yaml is written by the change once its rollback timer is
	// armed, and rolled back with it (internal/change/config.go): a moat
	// apply killed in the window leaves config and host agreeing.
	named := path // as named, absolute: the watchdog that may roll it back runs in /
	if abs, err := filepath.Abs(path); err == nil {
		named = abs
	}
	d := &change.ConfigEdit{Path: named, File: file, Before: src, After: out}
	plan := rootArgs([]string{"-c", path}, f.root)
	args := append([]string(nil), plan...)
	if *f.yes {
		args = append(args, "--yes")
	}
	if *f.force {
		args = append(args, "--force")
	}
	if *f.window != "" {
		args = append(args, "--confirm", *f.window)
	}
	fmt.Fprintln(e.stdout)
	if code := runPlanDraft(e, plan, d); code != ExitOK {
		fmt.Fprintf(e.stderr, "moat %s: the change was not applied; %s is untouched\n", q.verb, path)
		return code
	}
	fmt.Fprintln(e.stdout)
	code := runApplyDraft(e, args, d)
	if code != ExitOK {
		now, err := os.ReadFile(file)
		switch {
		case err == nil && bytes.Equal(now, src):
			fmt.Fprintf(e.stderr, "moat %s: the change was not applied; %s is as it was\n", q.verb, path)
		case err == nil && bytes.Equal(now, out):
			fmt.Fprintf(e.stderr, "moat %s: %s still holds the edit (see the rollback above: moat change list)\n", q.verb, path)
		default:
			fmt.Fprintf(e.stderr, "moat %s: the change was not applied; %s was edited since and is kept as you left it (see above)\n", q.verb, path)
		}
	}
	return code
}

func rootArgs(args []string, root string) []string {
	if root != "" {
		args = append(args, "--root", root)
	}
	return args
}

// writeConfigKeep writes the edit over src, keeping the file's mode and
// owner: only when nothing needs the transaction (--no-apply, or no host
// layer changes).
func writeConfigKeep(file string, src, out []byte) error {
	now, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if !bytes.Equal(now, src) {
		return errors.New("changed while this edit was prepared; run it again")
	}
	return change.WriteOver(file, out)
}

// loadDraft is loadConfig, or the draft of a quick edit when given.
func loadDraft(e *env, f *flags, d *change.ConfigEdit) (*config.Config, int, bool) {
	if d == nil {
		return loadConfig(e, f)
	}
	c, err := config.Parse(d.Path, d.After)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return nil, ExitUsage, false
	}
	return c, 0, true
}

// writeDraftOnly writes a quick edit that changes no host layer (the
// firewall is off, say): there is nothing to roll back.
func writeDraftOnly(e *env, d *change.ConfigEdit) int {
	if err := writeConfigKeep(d.File, d.Before, d.After); err != nil {
		fmt.Fprintf(e.stderr, "moat: write %s: %v (it is untouched)\n", d.Path, err)
		return ExitRuntime
	}
	fmt.Fprintf(e.stdout, "%s updated; nothing to change on the host: every layer is as it says\n", d.Path)
	return ExitOK
}

// planDraft prints the plan of the edited config without writing it:
// the plan reads the draft, named as moat.yaml.
func planDraft(e *env, root, path string, data []byte) int {
	fmt.Fprintf(e.stdout, "\n--dry-run: %s is untouched; the plan with the edit:\n", path)
	return runPlanDraft(e, rootArgs([]string{"-c", path}, root), &change.ConfigEdit{Path: path, After: data})
}

// target is where a port goes: public, vpn, or allow from a source.
type target struct {
	where string // "public", "vpn" or "allow"
	src   schema.CIDR
}

func parsePortTarget(from string) (target, error) {
	switch from {
	case "", "any", "anywhere", "public":
		return target{where: "public"}, nil
	case "vpn":
		return target{where: "vpn"}, nil
	}
	c, err := schema.ParseCIDR(from)
	if err != nil {
		return target{}, fmt.Errorf("--from %q: expected vpn or an address or CIDR: %w", from, err)
	}
	return target{where: "allow", src: c}, nil
}

func covers(list []schema.PortSpec, p schema.PortSpec) bool {
	for _, l := range list {
		if l.Proto == p.Proto && l.From <= p.From && p.To <= l.To {
			return true
		}
	}
	return false
}

func overlaps(l, p schema.PortSpec) bool {
	return l.Proto == p.Proto && l.From <= p.To && p.From <= l.To
}

// allowed reports whether cfg opens p to t.
func allowed(c *config.Config, p schema.PortSpec, t target) bool {
	switch t.where {
	case "public":
		return covers(c.Firewall.Public, p)
	case "vpn":
		return covers(c.Firewall.VPN, p)
	}
	if covers(c.Firewall.Public, p) {
		return true
	}
	for _, r := range c.Firewall.Allow {
		if !covers(r.Ports, p) {
			continue
		}
		for _, s := range r.Sources {
			if s.Bits() <= t.src.Bits() && s.Contains(t.src.Addr()) {
				return true
			}
		}
	}
	return false
}

// sshGuard refuses an edit of sshd's own port, which ssh.exposure rules.
func sshGuard(c *config.Config, p schema.PortSpec, verb string) error {
	ssh := uint16(c.SSH.Port)
	if !overlaps(p, schema.PortSpec{Proto: "tcp", From: ssh, To: ssh}) {
		return nil
	}
	exp := c.SSH.Exposure
	if exp == "" {
		exp = schema.ExposurePublic
	}
	if verb == "deny" {
		return fmt.Errorf("port %d/tcp is sshd's (ssh.port %d), which moat opens as ssh.exposure says (%s): closing it would cut the way you log in; to take SSH off the internet, log in over the VPN once and run moat expose ssh vpn", ssh, ssh, exp)
	}
	return fmt.Errorf("port %d/tcp is sshd's (ssh.port %d), which moat opens as ssh.exposure says (%s): use moat expose ssh public|vpn+public|vpn", ssh, ssh, exp)
}

func runAllow(e *env, args []string) int {
	f := newQuickFlags(e, "allow", "allow PORT[/tcp|/udp] [--from vpn|CIDR]")
	from := f.String("from", "", "who may connect: vpn (firewall.vpn) or an address or CIDR (firewall.allow); everyone (firewall.public) when absent")
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() != 1 {
		f.Usage()
		return ExitUsage
	}
	p, err := schema.ParsePortSpec(f.Arg(0))
	if err != nil {
		fmt.Fprintf(e.stderr, "moat allow: %v\n", err)
		return ExitUsage
	}
	t, err := parsePortTarget(*from)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat allow: %v\n", err)
		return ExitUsage
	}
	return runQuickEdit(e, f, quickEdit{
		verb: "allow",
		edit: func(src []byte, c *config.Config) ([]byte, string, error) {
			if err := sshGuard(c, p, "allow"); err != nil {
				return nil, "", err
			}
			if allowed(c, p, t) {
				return nil, fmt.Sprintf("%s is already allowed%s: nothing to change", p, describeTarget(t)), nil
			}
			if t.where == "vpn" && len(c.VPN.Interfaces) == 0 && len(c.VPN.Ranges) == 0 {
				fmt.Fprintln(e.stderr, "warning: no vpn.interfaces or vpn.ranges: nothing can reach firewall.vpn ports until a VPN is configured")
			}
			out, err := allowEdit(src, c, p, t)
			return out, fmt.Sprintf("allow %s%s", p, describeTarget(t)), err
		},
		holds: func(c *config.Config) bool { return allowed(c, p, t) },
		same: func(c *config.Config) {
			c.Firewall.Public, c.Firewall.VPN, c.Firewall.Allow = nil, nil, nil
		},
	})
}

func describeTarget(t target) string {
	switch t.where {
	case "vpn":
		return " from the VPN (firewall.vpn)"
	case "allow":
		return " from " + t.src.String() + " (firewall.allow)"
	}
	return " from everyone (firewall.public)"
}

func allowEdit(src []byte, c *config.Config, p schema.PortSpec, t target) ([]byte, error) {
	d, err := yamledit.Parse(src)
	if err != nil {
		return nil, err
	}
	switch t.where {
	case "public", "vpn":
		path := []string{"firewall", t.where}
		if d.Get(path...) == nil && t.where == "public" {
			// Absent, public is the default (80 and 443): keep those.
			var items []string
			for _, x := range c.Firewall.Public {
				items = append(items, x.String())
			}
			return d.SetList(path, append(items, p.String()))
		}
		return d.Append(path, []string{p.String()})
	}
	src1 := yamledit.Quote(t.src.String())
	// A rule for exactly this source takes the port.
	for i, r := range c.Firewall.Allow {
		if len(r.Sources) == 1 && r.Sources[0] == t.src {
			return d.Append([]string{"firewall", "allow", fmt.Sprint(i), "ports"}, []string{p.String()})
		}
	}
	return d.Append([]string{"firewall", "allow"}, []string{"ports: [" + p.String() + "]", "sources: [" + src1 + "]"})
}

func runDeny(e *env, args []string) int {
	f := newQuickFlags(e, "deny", "deny PORT[/tcp|/udp]")
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() != 1 {
		f.Usage()
		return ExitUsage
	}
	p, err := schema.ParsePortSpec(f.Arg(0))
	if err != nil {
		fmt.Fprintf(e.stderr, "moat deny: %v\n", err)
		return ExitUsage
	}
	open := func(c *config.Config) bool {
		for _, l := range [][]schema.PortSpec{c.Firewall.Public, c.Firewall.VPN} {
			for _, x := range l {
				if overlaps(x, p) {
					return true
				}
			}
		}
		for _, r := range c.Firewall.Allow {
			for _, x := range r.Ports {
				if overlaps(x, p) {
					return true
				}
			}
		}
		return false
	}
	return runQuickEdit(e, f, quickEdit{
		verb: "deny",
		edit: func(src []byte, c *config.Config) ([]byte, string, error) {
			if err := sshGuard(c, p, "deny"); err != nil {
				return nil, "", err
			}
			if !open(c) {
				return nil, fmt.Sprintf("%s is not open: nothing to change (moat drops every port it does not open)", p), nil
			}
			out, err := denyEdit(src, c, p)
			return out, "deny " + p.String() + " (removed from every list that opened it)", err
		},
		holds: func(c *config.Config) bool { return !open(c) },
		same: func(c *config.Config) {
			c.Firewall.Public, c.Firewall.VPN, c.Firewall.Allow = nil, nil, nil
		},
	})
}

// denyEdit removes p from public, vpn and every allow rule, one item at a
// time (each removal re-reads the file). A range that holds p but is not
// p is refused: splitting it is the operator's call.
func denyEdit(src []byte, c *config.Config, p schema.PortSpec) ([]byte, error) {
	check := func(where string, l []schema.PortSpec) error {
		for i, x := range l {
			if overlaps(x, p) && x != p {
				return fmt.Errorf("%s lies in %s (%s[%d]): edit that range by hand", p, x, where, i)
			}
		}
		return nil
	}
	if err := check("firewall.public", c.Firewall.Public); err != nil {
		return nil, err
	}
	if err := check("firewall.vpn", c.Firewall.VPN); err != nil {
		return nil, err
	}
	for i, r := range c.Firewall.Allow {
		if err := check(fmt.Sprintf("firewall.allow[%d].ports", i), r.Ports); err != nil {
			return nil, err
		}
	}
	out := src
	d, err := yamledit.Parse(out)
	if err != nil {
		return nil, err
	}
	if d.Get("firewall", "public") == nil && covers(c.Firewall.Public, p) {
		// public is absent, so the default: write the rest of it out.
		var rest []string
		for _, x := range c.Firewall.Public {
			if x != p {
				rest = append(rest, x.String())
			}
		}
		if out, err = d.SetList([]string{"firewall", "public"}, rest); err != nil {
			return nil, err
		}
	}
	for _, list := range []string{"public", "vpn"} {
		for {
			d, err := yamledit.Parse(out)
			if err != nil {
				return nil, err
			}
			i := indexOf(d, []string{"firewall", list}, p)
			if i < 0 {
				break
			}
			if out, err = d.Remove([]string{"firewall", list}, i); err != nil {
				return nil, err
			}
		}
	}
	for r := len(c.Firewall.Allow) - 1; r >= 0; r-- {
		rule := c.Firewall.Allow[r]
		if !covers(rule.Ports, p) {
			continue
		}
		path := []string{"firewall", "allow", fmt.Sprint(r), "ports"}
		d, err := yamledit.Parse(out)
		if err != nil {
			return nil, err
		}
		if len(rule.Ports) == 1 {
			// The rule opened p alone: the whole rule goes.
			out, err = d.Remove(path[:2], r)
		} else {
			out, err = d.Remove(path, indexOf(d, path, p))
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// indexOf finds the item of the list at path that reads as p.
func indexOf(d *yamledit.Doc, path []string, p schema.PortSpec) int {
	n := d.Get(path...)
	if n == nil {
		return -1
	}
	for i, it := range n.Content {
		if x, err := schema.ParsePortSpec(it.Value); err == nil && x == p {
			return i
		}
	}
	return -1
}

func runExpose(e *env, args []string) int {
	f := newQuickFlags(e, "expose", "expose ssh public|vpn+public|vpn")
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() != 2 || f.Arg(0) != "ssh" {
		f.Usage()
		return ExitUsage
	}
	want := schema.Exposure(f.Arg(1))
	switch want {
	case schema.ExposurePublic, schema.ExposureVPNPublic, schema.ExposureVPN:
	default:
		fmt.Fprintf(e.stderr, "moat expose ssh: expected public, vpn+public or vpn, found %q\n", f.Arg(1))
		return ExitUsage
	}
	cur := func(c *config.Config) schema.Exposure {
		if c.SSH.Exposure == "" {
			return schema.ExposurePublic
		}
		return c.SSH.Exposure
	}
	return runQuickEdit(e, f, quickEdit{
		verb: "expose",
		edit: func(src []byte, c *config.Config) ([]byte, string, error) {
			if cur(c) == want {
				return nil, fmt.Sprintf("ssh.exposure is already %s: nothing to change", want), nil
			}
			d, err := yamledit.Parse(src)
			if err != nil {
				return nil, "", err
			}
			out, err := d.SetScalar([]string{"ssh", "exposure"}, string(want))
			return out, fmt.Sprintf("ssh.exposure %s → %s", cur(c), want), err
		},
		holds: func(c *config.Config) bool { return cur(c) == want },
		same:  func(c *config.Config) { c.SSH.Exposure = "" },
	})
}
