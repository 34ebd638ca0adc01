package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/control"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/host"
)

// The ban commands ask the daemon; with no daemon running, `moat bans`
// reads the store read-only and `moat unban` edits the store and the
// kernel sets itself (holding the state directory's lock), saying so.

func stateFlag(f *flags) *string {
	return f.String("state", "/var/lib/moat", "state `dir`, read when the daemon is not running")
}

// daemonDown reports whether err means no daemon listens on the socket.
func daemonDown(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// enforcement says whether table inet moat's ban sets exist: "" when they
// do, else a line saying that nothing is enforced or that it could not be
// checked.
func enforcement() string {
	s, err := firewall.NewSets(128)
	if err != nil {
		return fmt.Sprintf("enforcement not checked: %v", err)
	}
	defer s.Close()
	ok, err := s.Present(firewall.KindBan)
	switch {
	case err != nil:
		return fmt.Sprintf("enforcement not checked: %v", err)
	case !ok:
		return "NOT ENFORCED: table inet moat has no ban sets (moat apply firewall, or firewall.mode: bans-only and moat run)"
	}
	return ""
}

func runBans(e *env, args []string) int {
	f := newFlags(e, "bans", "bans [--json] [--socket PATH] [--state DIR]")
	asJSON := f.Bool("json", false, "JSON output")
	sock := socketFlag(f)
	state := stateFlag(f)
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() > 0 {
		f.Usage()
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var bans []ban.Ban
	if err := control.Call(ctx, *sock, control.CmdBans, nil, &bans); err != nil {
		if !daemonDown(err) {
			fmt.Fprintf(e.stderr, "moat bans: %v\n", err)
			return ExitRuntime
		}
		path := filepath.Join(*state, "moat.db")
		if bans, err = ban.ReadActive(ctx, path, time.Now()); err != nil {
			fmt.Fprintf(e.stderr, "moat bans: daemon not running, and %v\n", err)
			return ExitRuntime
		}
		fmt.Fprintf(e.stderr, "moat bans: daemon not running: read from %s\n", path)
	}
	if *asJSON {
		return printJSON(e, bans)
	}
	notEnforced := enforcement()
	now := time.Now()
	for _, b := range bans {
		fmt.Fprintln(e.stdout, b.Line(now))
	}
	fmt.Fprintf(e.stdout, "%d active ban(s)\n", len(bans))
	if notEnforced != "" {
		fmt.Fprintln(e.stdout, notEnforced)
	}
	return ExitOK
}

// protectedRanges are what `moat ban` refuses without --force: the admin
// sources, the VPN, the operator's own SSH session, loopback and this
// host's addresses.
func protectedRanges(cfg *config.Config) []ban.Protected {
	out := append([]ban.Protected{}, ban.LoopbackRanges...)
	if cfg != nil {
		for _, c := range cfg.Host.Admin.Sources {
			out = append(out, ban.Protected{Prefix: c.Prefix, Why: "host.admin.sources, never banned"})
		}
		for _, p := range cfg.VPN.Prefixes() {
			out = append(out, ban.Protected{Prefix: p, Why: "the VPN"})
		}
	}
	if o := host.New("").Self(); o.Conn.Valid() {
		a := o.Conn.Client.Addr().Unmap()
		out = append(out, ban.Protected{Prefix: netip.PrefixFrom(a, a.BitLen()), Why: "your SSH session"})
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					ip = ip.Unmap()
					out = append(out, ban.Protected{Prefix: netip.PrefixFrom(ip, ip.BitLen()), Why: "an address of this host"})
				}
			}
		}
	}
	return out
}

// parseTarget parses the flags and the one ADDR|CIDR of `moat ban` and
// `moat unban`; ok is false with the exit code when they are wrong.
func parseTarget(e *env, f *flags, cmd string, args []string) (string, netip.Prefix, int, bool) {
	if code, ok := f.parse(args); !ok {
		return "", netip.Prefix{}, code, false
	}
	if f.NArg() != 1 {
		f.Usage()
		return "", netip.Prefix{}, ExitUsage, false
	}
	target := f.Arg(0)
	p, err := control.ParseTarget(target)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat %s: %v\n", cmd, err)
		return "", netip.Prefix{}, ExitUsage, false
	}
	return target, p, 0, true
}

func runBan(e *env, args []string) int {
	f := newFlags(e, "ban", "ban ADDR|CIDR [--for DURATION] [--reason TEXT] [--force]")
	dur := f.String("for", "", "ban `duration` (e.g. 1h, 7d); until unbanned when empty")
	reason := f.String("reason", "", "why, for the record and alerts")
	force := f.Bool("force", false, "ban even an admin source, the VPN, your own session, loopback or this host")
	sock := socketFlag(f)
	target, p, code, ok := parseTarget(e, f, "ban", args)
	if !ok {
		return code
	}
	if !*force {
		cfg, err := config.Load(config.Path(f.config), f.explicitConfig())
		if err != nil {
			fmt.Fprintf(e.stderr, "moat ban: %v (the admin sources and the VPN cannot be checked; fix the config or use --force)\n", err)
			return ExitUsage
		}
		if err := ban.CheckManual(p, protectedRanges(cfg)); err != nil {
			fmt.Fprintf(e.stderr, "moat ban: %v\n", err)
			return ExitUsage
		}
	}
	var b ban.Ban
	if !call(e, *sock, control.CmdBan, control.BanArgs{Target: target, For: *dur, Reason: *reason}, &b) {
		return ExitRuntime
	}
	fmt.Fprintln(e.stdout, "banned", b.Line(time.Now()))
	if why := enforcement(); why != "" {
		fmt.Fprintln(e.stdout, why)
	}
	return ExitOK
}

func runUnban(e *env, args []string) int {
	f := newFlags(e, "unban", "unban ADDR|CIDR [--socket PATH] [--state DIR]")
	sock := socketFlag(f)
	state := stateFlag(f)
	target, p, code, ok := parseTarget(e, f, "unban", args)
	if !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var lifted []ban.Ban
	err := control.Call(ctx, *sock, control.CmdUnban, control.UnbanArgs{Target: target}, &lifted)
	switch {
	case err == nil:
	case daemonDown(err):
		var warn error
		if lifted, warn, err = unbanOffline(ctx, *state, p); err != nil {
			fmt.Fprintf(e.stderr, "moat unban: daemon not running, and %v\n", err)
			return ExitRuntime
		}
		fmt.Fprintf(e.stderr, "moat unban: daemon not running: lifted in %s and the kernel sets directly\n", filepath.Join(*state, "moat.db"))
		if warn != nil {
			fmt.Fprintf(e.stderr, "moat unban: warning: %v\n", warn)
		}
		if len(lifted) == 0 {
			fmt.Fprintf(e.stderr, "moat unban: %s is not banned\n", p)
			return ExitRuntime
		}
	default:
		fmt.Fprintf(e.stderr, "moat unban: %v\n", err)
		return ExitRuntime
	}
	for _, b := range lifted {
		fmt.Fprintln(e.stdout, "unbanned", b.Prefix)
	}
	if why := enforcement(); why != "" {
		fmt.Fprintf(e.stderr, "moat unban: warning: %s\n", why)
	}
	return ExitOK
}

// unbanOffline lifts p's bans in the store, holding the state directory
// so that no daemon starts meanwhile, then in the kernel sets. A kernel
// failure (no sets) is a warning: the store's unban stands, and its
// tombstone makes the next daemon's reconcile delete the element.
func unbanOffline(ctx context.Context, state string, p netip.Prefix) (lifted []ban.Ban, warn, err error) {
	lock, err := ban.LockStateDir(state)
	if err != nil {
		return nil, nil, err
	}
	defer lock.Release()
	s, err := ban.Open(filepath.Join(state, "moat.db"), ban.Options{})
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	if lifted, err = s.Unban(ctx, p); err != nil || len(lifted) == 0 {
		return lifted, nil, err
	}
	if h := s.Health(); h.Unsaved > 0 {
		return lifted, nil, fmt.Errorf("the store cannot be written: %s", h.Err)
	}
	sets, err := firewall.NewSets(128)
	if err != nil {
		return lifted, fmt.Errorf("lifted in the store, not in the kernel: %w", err), nil
	}
	defer sets.Close()
	prefixes := make([]netip.Prefix, len(lifted))
	for i, b := range lifted {
		prefixes[i] = b.Prefix
	}
	if err := sets.Unban(ctx, prefixes); err != nil {
		return lifted, fmt.Errorf("lifted in the store, not in the kernel (the next moat run removes it): %w", err), nil
	}
	return lifted, nil, nil
}
