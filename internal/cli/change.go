package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/harden"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/vpn"
)

func init() {
	register(command{"plan", "show what apply would change, per layer, as diffs (plan firewall: that layer alone)", 30, runPlan})
	register(command{"apply", "apply every host layer as one transaction, rolled back unless confirmed", 31, runApply})
	register(command{"confirm", "confirm [ID]: keep an applied change (run it from a NEW ssh session)", 32, runConfirm})
	register(command{"rollback", "rollback [ID]: undo a change's own edits (others' edits since are kept)", 33, runRollback})
	register(command{"change", "change list | change show ID: the changes moat made and their state", 34, runChange})
}

// transaction is every host layer's step, planned.
type transaction struct {
	steps    []*change.Step
	refusals []string
	ssh      harden.SSHPlan
	cfg      *config.Config
	root     string
	session  string
	live     *host.Host // live facts: interfaces, listeners (the files are under root)
}

// planAll plans every host layer. It changes nothing.
func planAll(ctx context.Context, e *env, f *flags, force bool) (*transaction, int, bool) {
	return planAllDraft(ctx, e, f, force, nil)
}

// planAllDraft plans from a quick edit's draft of moat.yaml when one is
// given: the file itself is written by the change (quickedit.go).
func planAllDraft(ctx context.Context, e *env, f *flags, force bool, d *change.ConfigEdit) (*transaction, int, bool) {
	c, code, ok := loadDraft(e, f, d)
	if !ok {
		return nil, code, false
	}
	live := host.New("")
	op := live.Operator(os.Getpid(), os.Getenv)
	tx := &transaction{cfg: c, root: f.root, live: live, session: op.Conn.String()}
	opt := harden.Options{Root: f.root, Session: tx.session, Operator: operatorUser(op, os.Getenv), Force: force,
		SecondPaths: secondPaths(c, f.root)}
	if k, ok := host.New(f.root).SessionKeyOf(ctx, op.Conn); ok {
		opt.OperatorKey = k.Fingerprint
	}
	hp, err := harden.MakePlan(ctx, harden.Input{Host: c.Host, SSH: c.SSH, VPN: c.VPN, Source: c.File}, opt)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat: plan the host layers: %v\n", err)
		return nil, ExitRuntime, false
	}
	tx.steps, tx.refusals, tx.ssh = hp.Steps, hp.Refusals, hp.SSH
	fw, refusals, err := firewallStep(ctx, e, c, live, f.root, hp.SSH)
	if err != nil {
		tx.refusals = append(tx.refusals, "firewall: "+err.Error()+" (set firewall.enabled: false to leave the firewall to something else)")
	}
	tx.refusals = append(tx.refusals, refusals...)
	if fw != nil {
		tx.steps = append(tx.steps, fw)
	}
	if st, err := vpnStep(ctx, c, f.root); err != nil {
		tx.refusals = append(tx.refusals, "vpn: "+err.Error())
	} else if st != nil {
		tx.steps = append(tx.steps, st)
	}
	return tx, 0, true
}

// operatorUser is the user the operator logged in as: sshd's title for
// the session, else (no sshd found above us) SUDO_USER or USER when the
// environment says SSH.
func operatorUser(op host.Operator, getenv func(string) string) string {
	if op.User != "" {
		return op.User
	}
	if !op.Conn.Valid() {
		return ""
	}
	if u := getenv("SUDO_USER"); u != "" {
		return u
	}
	return getenv("USER")
}

// writeWarnings prints every step's warnings: apply says them before
// anything changes.
func writeWarnings(w io.Writer, tx *transaction) {
	for _, st := range tx.steps {
		for _, s := range st.Warnings {
			fmt.Fprintf(w, "warning: %s: %s\n", st.Layer, s)
		}
	}
}

func runPlan(e *env, args []string) int { return runPlanDraft(e, args, nil) }

func runPlanDraft(e *env, args []string, d *change.ConfigEdit) int {
	if d == nil && len(args) > 0 && planners[args[0]] != nil {
		return planners[args[0]](e, args[1:])
	}
	f := newFlags(e, "plan", "plan [LAYER] [-c FILE] [--root DIR]").withRoot()
	force := f.Bool("force", false, "plan as apply --force would (ssh.exposure vpn before a VPN login was seen)")
	if code, ok := f.parse(args); !ok {
		return code
	}
	if !onlyFlags(e, "plan", f) {
		return ExitUsage
	}
	ctx := context.Background()
	recoverExpired(ctx, e, f.root)
	tx, code, ok := planAllDraft(ctx, e, f, *force, d)
	if !ok {
		return code
	}
	cw := colourPlan(e.stdout)
	writePlan(cw, tx)
	cw.Flush()
	if len(tx.refusals) > 0 {
		fmt.Fprintln(e.stdout, "\napply would refuse:")
		for _, r := range tx.refusals {
			fmt.Fprintf(e.stdout, "  - %s\n", r)
		}
	}
	return ExitOK
}

// onlyFlags refuses arguments after the flags: a layer must come first.
func onlyFlags(e *env, verb string, f *flags) bool {
	if f.NArg() == 0 {
		return true
	}
	names := make([]string, 0, len(planners))
	for n := range planners {
		names = append(names, n)
	}
	slices.Sort(names)
	fmt.Fprintf(e.stderr, "Usage: moat %s [LAYER] [flags]\n\nunknown layer %q. Layers: %s; without one, %s runs every host layer as one transaction.\n",
		verb, f.Arg(0), strings.Join(names, ", "), verb)
	return false
}

// writePlan prints each layer's summary, warnings and diffs.
func writePlan(w io.Writer, tx *transaction) {
	for i, st := range tx.steps {
		if i > 0 {
			fmt.Fprintln(w)
		}
		state := "changes"
		if st.Empty() {
			state = "no changes"
		}
		fmt.Fprintf(w, "== %s: %s\n", st.Layer, state)
		for _, s := range st.Summary {
			fmt.Fprintf(w, "  %s\n", s)
		}
		for _, s := range st.Warnings {
			fmt.Fprintf(w, "  warning: %s\n", s)
		}
		window := map[string][]byte{}
		for _, fl := range st.Files {
			writeFileDiff(w, tx.root, fl, nil, "")
			window[fl.Path] = fl.Data
		}
		for _, fl := range st.Final {
			writeFileDiff(w, tx.root, fl, window[fl.Path], " (on confirm)")
		}
		if st.Diff != "" {
			io.WriteString(w, st.Diff)
		}
	}
}

// writeFileDiff prints the diff from the file as it is (or as the window
// leaves it, for a file written again on confirm) to what fl writes.
func writeFileDiff(w io.Writer, root string, fl change.File, window []byte, when string) {
	cur, err := change.ReadCurrent(root, fl.Path)
	if err != nil {
		fmt.Fprintf(w, "  %s: cannot read: %v\n", fl.Path, err)
		return
	}
	from := "a" + fl.Path
	if window != nil {
		cur, from = window, "a"+fl.Path+" (during the window)"
	}
	if cur == nil {
		from = "/dev/null"
	}
	d := firewall.UnifiedDiff(from, "b"+fl.Path+when, string(cur), string(fl.Data))
	io.WriteString(w, d)
}

func runApply(e *env, args []string) int { return runApplyDraft(e, args, nil) }

// runApplyDraft is moat apply; with a quick edit's draft, moat.yaml is
// written by the change once its timer is armed and rolled back with it.
func runApplyDraft(e *env, args []string, d *change.ConfigEdit) int {
	if d == nil && len(args) > 0 && appliers[args[0]] != nil {
		return appliers[args[0]](e, args[1:])
	}
	f := newFlags(e, "apply", "apply [LAYER] [-c FILE] [--root DIR] [--confirm 120s] [--yes] [--force]").withRoot()
	window := f.Duration("confirm", change.DefaultWindow, "how long the change waits for `moat confirm` before rolling back (30s to 30m)")
	yes := f.Bool("yes", false, "automation: confirm at once if the self-probe passes (no wait, no second session)")
	force := f.Bool("force", false, "allow ssh.exposure vpn before a login over the VPN was seen (prints a break-glass recipe)")
	if code, ok := f.parse(args); !ok {
		return code
	}
	if !onlyFlags(e, "apply", f) {
		return ExitUsage
	}
	if err := change.CheckWindow(*window, minWindow()); err != nil {
		fmt.Fprintf(e.stderr, "moat apply: %v\n", err)
		return ExitUsage
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(e.stderr, "moat apply: needs root (run with sudo)")
		return ExitRuntime
	}
	ctx := context.Background()
	recoverExpired(ctx, e, f.root)
	store := change.NewStore(f.root)
	if err := store.RefusePending(); err != nil {
		fmt.Fprintf(e.stderr, "moat apply: %v\n", err)
		return ExitUsage
	}
	tx, code, ok := planAllDraft(ctx, e, f, *force, d)
	if !ok {
		return code
	}
	writeWarnings(e.stderr, tx)
	if len(tx.refusals) > 0 {
		fmt.Fprintln(e.stderr, "moat apply: refusing, nothing was changed:")
		for _, r := range tx.refusals {
			fmt.Fprintf(e.stderr, "  - %s\n", r)
		}
		return ExitUsage
	}
	if !slices.ContainsFunc(tx.steps, func(s *change.Step) bool { return !s.Empty() }) {
		if d != nil {
			return writeDraftOnly(e, d)
		}
		fmt.Fprintln(e.stdout, "nothing to change: every layer is as moat.yaml says")
		return ExitOK
	}
	if *force && tx.cfg.SSH.Exposure == "vpn" && (tx.ssh.VPNLogin == "" || tx.ssh.Forced) {
		fmt.Fprint(e.stderr, breakGlass)
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(e.stderr, "moat apply: find moat's own binary: %v\n", err)
		return ExitRuntime
	}
	sd, _ := tx.live.SystemdPID1()
	out := colourApply(e.stdout)
	defer out.Flush()
	opt := change.RunOptions{
		Steps: tx.steps, Window: *window, Yes: *yes, Session: tx.session, Config: tx.cfg.File, ConfigEdit: d,
		Moat: exe, SystemdPID1: sd, Handlers: changeHandlers(e), Log: e.log, Notify: notifier(e), Out: out,
		Hint: "ssh", AfterStep: testHold(),
		Probe: &change.ProbePlan{Targets: probeTargets(tx), User: tx.ssh.ProbeUser, PerTarget: 5 * time.Second,
			Serving: func(ctx context.Context) bool { return harden.SSHDRunning(ctx, f.root) }},
	}
	if tx.ssh.Moved() {
		opt.ConfirmPorts = []uint16{tx.ssh.Port}
		opt.Hint = "ssh -p " + strconv.Itoa(int(tx.ssh.Port))
	}
	if tx.cfg.SSH.Exposure == "vpn" {
		// SSH becomes VPN-only: the confirming connection must prove the
		// VPN path, by its client (a VPN range) or where it arrived.
		opt.ConfirmVia = tx.cfg.VPN.Prefixes()
		for _, a := range vpnAddrs(tx) {
			opt.ConfirmVia = append(opt.ConfirmVia, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	m, err := store.Run(ctx, opt)
	if m != nil && m.State == change.RollbackFailed {
		fmt.Fprintf(e.stderr, "moat apply: %s", m.Report())
		return ExitRuntime
	}
	var rb *change.RolledBackError
	var pe *change.PendingError
	switch {
	case errors.As(err, &rb):
		if len(rb.Errors) > 0 {
			fmt.Fprintf(e.stderr, "moat apply: %v\nThe rollback is INCOMPLETE and is retried: moat change show %s, moat rollback %s.\n", err, rb.ID, rb.ID)
			return ExitRuntime
		}
		fmt.Fprintf(e.stderr, "moat apply: %v\n", err)
		if m != nil {
			fmt.Fprint(e.stderr, m.Report())
		}
		fmt.Fprintf(e.stderr, "moat's edits are undone (moat change show %s).\n", rb.ID)
		return ExitRollback
	case errors.As(err, &pe):
		fmt.Fprintf(e.stderr, "moat apply: %v\n", err)
		return ExitUsage
	case err != nil:
		fmt.Fprintf(e.stderr, "moat apply: %v\n", err)
		return ExitRuntime
	}
	if m != nil {
		harden.RecordVPNLogin(f.root, tx.session, tx.cfg.VPN, vpnAddrs(tx))
	}
	return ExitOK
}

// minWindow is the shortest --confirm: change.MinWindow, or, for the
// end-to-end tests only, MOAT_TEST_MIN_WINDOW (at least 1s).
func minWindow() time.Duration {
	if v := os.Getenv("MOAT_TEST_MIN_WINDOW"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d >= time.Second && d < change.MinWindow {
			return d
		}
	}
	return change.MinWindow
}

// testHold is a test-only hook: with MOAT_TEST_HOLD_AFTER=LAYER and
// MOAT_TEST_HOLD_FILE=PATH, moat apply creates PATH after LAYER's step
// and waits (2 minutes at most) until it is removed, so that a test can
// kill it at that step boundary. "activated" holds after the last step.
func testHold() func(string) {
	layer, file := os.Getenv("MOAT_TEST_HOLD_AFTER"), os.Getenv("MOAT_TEST_HOLD_FILE")
	if layer == "" || file == "" {
		return nil
	}
	return func(l string) {
		if l != layer {
			return
		}
		if err := os.WriteFile(file, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return
		}
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(file); err != nil {
				return
			}
		}
	}
}

const breakGlass = `
--force: SSH will be reachable over the VPN only, and moat could not prove the VPN lets you in
(no VPN login seen, or no second working path: a recent admin-peer handshake, a Tailscale key far from expiry).
If the VPN does not let you in, break glass:
  1. open your provider's web console (serial / VNC / "rescue console") and log in as root;
  2. run: moat rollback        (restores sshd and the firewall as they were)
     or, after the change was confirmed: moat expose ssh public
     (or set ssh.exposure: vpn+public in moat.yaml and run moat apply --yes)
Keep that console open in another tab until moat confirm has run.

`

// probeTargets are where a new login must find sshd: the public address
// and the VPN address, each on every port of the window.
func probeTargets(tx *transaction) []change.Target {
	var out []change.Target
	add := func(name string, a netip.Addr) {
		for _, p := range tx.ssh.Ports {
			out = append(out, change.Target{Name: name, Addr: netip.AddrPortFrom(a, p).String()})
		}
	}
	exp := tx.cfg.SSH.Exposure
	vpns := vpnAddrs(tx)
	if exp.Public() && len(tx.ssh.Listen) == 0 {
		if a, ok := publicAddr(tx, vpns); ok {
			add("public", a)
		}
	}
	if exp.VPN() && len(vpns) > 0 {
		add("vpn", vpns[0])
	}
	if len(out) == 0 && len(tx.ssh.Listen) == 0 {
		add("loopback", netip.MustParseAddr("127.0.0.1"))
	}
	return out
}

func vpnAddrs(tx *transaction) []netip.Addr {
	ifs, _ := tx.live.Interfaces()
	var out []netip.Addr
	for _, i := range ifs {
		if !i.Up || !slices.ContainsFunc(tx.cfg.VPN.Interfaces, func(p string) bool { return vpn.MatchInterface(p, i.Name) }) {
			continue
		}
		for _, a := range i.Addrs {
			if !a.Addr().IsLinkLocalUnicast() {
				out = append(out, a.Addr())
			}
		}
	}
	return out
}

// publicAddr is the address the operator's session arrived on, if it is
// not a VPN one, else the first global address of the default route's
// interface.
func publicAddr(tx *transaction, vpns []netip.Addr) (netip.Addr, bool) {
	if s, ok := change.ParseSession(tx.session); ok && !slices.Contains(vpns, s.Server.Addr()) && !tx.cfg.VPN.Contains(s.Client.Addr()) {
		return s.Server.Addr(), true
	}
	routes, _ := tx.live.DefaultRoutes()
	ifs, _ := tx.live.Interfaces()
	for _, r := range routes {
		for _, i := range ifs {
			if i.Name != r.Iface {
				continue
			}
			for _, a := range i.Addrs {
				if a.Addr().IsGlobalUnicast() {
					return a.Addr(), true
				}
			}
		}
	}
	if iface := tx.cfg.Firewall.PublicInterface; iface != "" {
		for _, i := range ifs {
			if i.Name == iface && len(i.Addrs) > 0 {
				return i.Addrs[0].Addr(), true
			}
		}
	}
	return netip.Addr{}, false
}

func notifier(e *env) func(change.Notice) {
	return func(n change.Notice) {
		e.log.Info("change", "id", n.ID, "state", string(n.State), "text", n.Text)
	}
}

// changeHandlers runs every layer's undo and confirm actions.
func changeHandlers(e *env) change.Handlers {
	h := harden.Handlers(e.log)
	for k, v := range firewallHandlers() {
		h[k] = v
	}
	for k, v := range vpn.Handlers() {
		h[k] = v
	}
	return h
}

func recoverExpired(ctx context.Context, e *env, root string) {
	m, err := change.NewStore(root).RecoverExpired(ctx, change.RollbackOptions{Handlers: changeHandlers(e), Log: e.log, Notify: notifier(e)})
	if m != nil {
		fmt.Fprintf(e.stderr, "moat: change %s had not been confirmed and its timer was gone: rolled back (%s)\n", m.ID, m.Reason)
	} else if err != nil {
		e.log.Warn("check pending change", "err", err)
	}
}

func runConfirm(e *env, args []string) int {
	f := newFlags(e, "confirm", "confirm [ID] [-c FILE] [--root DIR]").withRoot()
	if code, ok := f.parse(flagsFirst(f, args)); !ok {
		return code
	}
	if !rootOK(e, "confirm", f.root) {
		return ExitRuntime
	}
	store := change.NewStore(f.root)
	id, code, ok := changeID(e, store, f.Args(), true)
	if !ok {
		return code
	}
	live := host.New("")
	proof := change.SelfProof()
	sess := proof.Operator.Conn.String()
	m, err := store.Confirm(context.Background(), id, change.ConfirmOptions{Proof: proof, Handlers: changeHandlers(e), Log: e.log, Notify: notifier(e)})
	var rb *change.RolledBackError
	switch {
	case errors.As(err, &rb):
		fmt.Fprintf(e.stderr, "moat confirm: %v\n", err)
		return ExitRollback
	case err != nil:
		fmt.Fprintf(e.stderr, "moat confirm: %v\n", err)
		return ExitUsage
	}
	fmt.Fprintf(e.stdout, "change %s confirmed: it stays, boot files written, rollback timer disarmed\n", m.ID)
	// A confirm over the VPN is the proof stage 3 (ssh.exposure vpn) asks for.
	if c, err := config.Load(config.Path(f.config), f.explicitConfig()); err == nil {
		tx := &transaction{cfg: c, live: live}
		harden.RecordVPNLogin(f.root, sess, c.VPN, vpnAddrs(tx))
	}
	return ExitOK
}

func runRollback(e *env, args []string) int {
	f := newFlags(e, "rollback", "rollback [ID] [--root DIR]").withRoot()
	boot := f.Bool("boot", false, "at boot: roll back the change still waiting for confirm, if any (moat-change-guard.service)")
	if code, ok := f.parse(flagsFirst(f, args)); !ok {
		return code
	}
	if !rootOK(e, "rollback", f.root) {
		return ExitRuntime
	}
	ctx := context.Background()
	store := change.NewStore(f.root)
	opt := change.RollbackOptions{Handlers: changeHandlers(e), Log: e.log, Notify: notifier(e)}
	if *boot {
		m, err := store.RollbackAtBoot(ctx, opt)
		if err != nil {
			fmt.Fprintf(e.stderr, "moat rollback --boot: %v\n", err)
			return ExitRuntime
		}
		if m != nil {
			fmt.Fprintf(e.stdout, "change %s rolled back at boot\n", m.ID)
		}
		return ExitOK
	}
	id, code, ok := changeID(e, store, f.Args(), false)
	if !ok {
		return code
	}
	if prev, err := store.Load(id); err == nil && prev.State == change.RolledBack {
		fmt.Fprintf(e.stdout, "change %s was already rolled back (%s): nothing to do\n", id, prev.Reason)
		return ExitOK
	}
	m, err := store.Rollback(ctx, id, "moat rollback", opt)
	if m != nil && (m.State == change.RolledBack || m.State == change.RollbackFailed) {
		// What was restored, merged, kept and failed, path by path.
		fmt.Fprint(e.stdout, m.Report())
	}
	if err != nil {
		var rf *change.RollbackFailedError
		if !errors.As(err, &rf) {
			fmt.Fprintf(e.stderr, "moat rollback: %v\n", err)
		}
		return ExitRuntime
	}
	return ExitOK
}

// flagsFirst moves flags before the positional arguments, so that
// "moat confirm ID --root DIR" reads as "moat confirm --root DIR ID"
// (the flag package stops at the first non-flag). "--" ends the flags.
func flagsFirst(f *flags, args []string) []string {
	var fl, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		fl = append(fl, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if def := f.Lookup(name); def != nil && i+1 < len(args) {
			if b, ok := def.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				continue
			}
			i++
			fl = append(fl, args[i])
		}
	}
	return append(append(fl, "--"), pos...)
}

// rootOK refuses to touch the live system's changes without root: they
// restore /etc and reload sshd.
func rootOK(e *env, verb, root string) bool {
	if (root == "" || root == "/") && os.Geteuid() != 0 {
		fmt.Fprintf(e.stderr, "moat %s: needs root (run with sudo)\n", verb)
		return false
	}
	return true
}

// changeID is the ID given, or the pending change, or (for rollback) the
// latest.
func changeID(e *env, s *change.Store, args []string, pendingOnly bool) (string, int, bool) {
	if len(args) > 1 {
		fmt.Fprintln(e.stderr, "moat: one change ID at most")
		return "", ExitUsage, false
	}
	if len(args) == 1 {
		if err := change.ValidID(args[0]); err != nil {
			fmt.Fprintf(e.stderr, "moat: %v\n", err)
			return "", ExitUsage, false
		}
		return args[0], 0, true
	}
	id, err := s.Pending()
	if err != nil {
		fmt.Fprintf(e.stderr, "moat: %v\n", err)
		return "", ExitRuntime, false
	}
	if id == "" && !pendingOnly {
		if m, _ := s.Latest(); m != nil {
			id = m.ID
		}
	}
	if id == "" {
		fmt.Fprintln(e.stderr, "moat: no change is waiting for confirm (see moat change list)")
		return "", ExitUsage, false
	}
	return id, 0, true
}

func runChange(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, "Usage: moat change list [--json] | moat change show ID")
		return ExitUsage
	}
	sub := args[0]
	f := newFlags(e, "change "+sub, "change "+sub+" [--root DIR]").withRoot()
	asJSON := f.Bool("json", false, "JSON output")
	timer := f.Bool("timer", false, "run as the systemd timer's service")
	if code, ok := f.parse(flagsFirst(f, args[1:])); !ok {
		return code
	}
	store := change.NewStore(f.root)
	ctx := context.Background()
	opt := change.RollbackOptions{Handlers: changeHandlers(e), Log: e.log, Notify: notifier(e)}
	switch sub {
	case "list":
		recoverExpired(ctx, e, f.root)
		all, err := store.List()
		if err != nil {
			fmt.Fprintf(e.stderr, "moat change list: %v\n", err)
			return ExitRuntime
		}
		if *asJSON {
			return printJSON(e, all)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tLAYERS\tNOTE")
		for _, m := range all {
			note := m.Reason
			switch m.State {
			case change.Waiting:
				note = "confirm by " + m.Deadline.Format(time.TimeOnly)
			case change.RollbackFailed:
				note = fmt.Sprintf("%d failed (moat change show %s); retry: moat rollback %s", len(m.Errors), m.ID, m.ID)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.ID, m.State, strings.Join(m.Layers, ","), note)
		}
		tw.Flush()
		if n, _ := store.LastRollback(); n != nil {
			fmt.Fprintf(e.stdout, "\nlast rollback: %s at %s: %s\n", n.ID, n.Time.Format(time.RFC3339), n.Reason)
		}
		return ExitOK
	case "show":
		if len(f.Args()) != 1 {
			fmt.Fprintln(e.stderr, "Usage: moat change show ID")
			return ExitUsage
		}
		m, err := store.Load(f.Args()[0])
		if err != nil {
			fmt.Fprintf(e.stderr, "moat change show: %v\n", err)
			return ExitUsage
		}
		if *asJSON {
			return printJSON(e, m)
		}
		fmt.Fprintf(e.stdout, "change %s: %s\nlayers: %s\n", m.ID, m.State, strings.Join(m.Layers, ", "))
		for _, s := range m.Summary {
			fmt.Fprintf(e.stdout, "  %s\n", s)
		}
		fmt.Fprintln(e.stdout, "history:")
		for _, ev := range m.Events {
			fmt.Fprintf(e.stdout, "  %s  %s\n", ev.Time.Format(time.TimeOnly), ev.Text)
		}
		if m.Outcome != nil {
			fmt.Fprint(e.stdout, m.Report())
		} else {
			for _, x := range m.Errors {
				fmt.Fprintf(e.stdout, "  error: %s\n", x)
			}
		}
		return ExitOK
	case "watchdog", "rollback":
		// The rollback timer's bodies: the detached watchdog, and the
		// service a systemd timer starts.
		if len(f.Args()) != 1 || (sub == "rollback" && !*timer) {
			fmt.Fprintln(e.stderr, "Usage: moat change watchdog ID | moat change rollback --timer ID (run by moat itself)")
			return ExitUsage
		}
		id := f.Args()[0]
		var err error
		if sub == "watchdog" {
			_, err = store.RunWatchdog(ctx, id, opt)
		} else {
			opt.FromTimer = true
			_, err = store.Watch(ctx, id, opt)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "moat change %s: %v\n", sub, err)
			return ExitRuntime
		}
		return ExitOK
	}
	fmt.Fprintln(e.stderr, "Usage: moat change list [--json] | moat change show ID")
	return ExitUsage
}
