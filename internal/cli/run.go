package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/control"
	"github.com/moat-sh/moat/internal/daemon"
	"github.com/moat-sh/moat/internal/guard"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/term"
	"github.com/moat-sh/moat/internal/vpn"
)

func init() {
	register(command{"run", "the daemon: guard, gateway, alerts, metrics, control socket", 40, runRun})
	register(command{"status", "each layer's state, from the running daemon (--json)", 41, runStatus})
	register(command{"bans", "active bans (--json)", 50, runBans})
	register(command{"ban", "ban ADDR|CIDR [--for 1h] [--reason TEXT]", 51, runBan})
	register(command{"unban", "unban ADDR|CIDR", 52, runUnban})
	register(command{"reload", "reload moat.yaml in the running daemon (as SIGHUP)", 53, runReload})
}

func socketFlag(f *flags) *string {
	return f.String("socket", control.DefaultPath, "the daemon's control `socket`")
}

func runRun(e *env, args []string) int {
	f := newFlags(e, "run", "run [-c FILE] [--state DIR] [--socket PATH] [--log-format text|json|auto]")
	state := f.String("state", "/var/lib/moat", "state `dir` (moat.db: bans, history, log positions)")
	sock := socketFlag(f)
	logFormat := logFormatFlag(f)
	if code, ok := f.parse(args); !ok {
		return code
	}
	log, err := daemonLogger(e.stderr, *logFormat)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat run: %v\n", err)
		return ExitUsage
	}
	e.log = log
	// One daemon per state directory, for its whole life: a second one
	// would reconcile, expire and tail the same logs into the same store.
	lock, err := ban.LockStateDir(*state)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat run: %v\n", err)
		return ExitRuntime
	}
	defer lock.Release()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *logFormat != "json" && isTerminal(e.stderr) {
		ctx = term.WithOutput(ctx, e.stderr) // progress lines (ban restore) for a person only
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	err = daemon.Run(ctx, daemon.Options{
		ConfigPath: config.Path(f.config), Explicit: f.explicitConfig(),
		Socket: *sock, StateDir: *state, Version: Version(), Log: e.log, Reload: reload,
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "moat run: %v\n", err)
		var cerr schema.Errors
		if errors.As(err, &cerr) {
			return ExitUsage // config errors, as config check says them
		}
		return ExitRuntime
	}
	return ExitOK
}

func call(e *env, sock, cmd string, args, out any) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := control.Call(ctx, sock, cmd, args, out); err != nil {
		fmt.Fprintf(e.stderr, "moat %s: %v\n", cmd, err)
		return false
	}
	return true
}

func printJSON(e *env, v any) int {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return ExitRuntime
	}
	return ExitOK
}

// splitTarget lets the address come first (`moat ban 1.2.3.4 --for 1h`),
// which the flag package alone would not allow.
func splitTarget(args []string) (string, []string) {
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		return args[0], args[1:]
	}
	return "", args
}

func runReload(e *env, args []string) int {
	f := newFlags(e, "reload", "reload")
	sock := socketFlag(f)
	if code, ok := f.parse(args); !ok {
		return code
	}
	var msg string
	if !call(e, *sock, control.CmdReload, nil, &msg) {
		return ExitUsage
	}
	fmt.Fprintln(e.stdout, msg)
	return ExitOK
}

func runJailStatus(e *env, args []string) int {
	f := newFlags(e, "jail status", "jail status [NAME] [--json] [--socket PATH] [--state DIR] [-c FILE]")
	asJSON := f.Bool("json", false, "JSON output")
	sock := socketFlag(f)
	state := stateFlag(f)
	name, rest := splitTarget(args)
	if code, ok := f.parse(rest); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var jails []json.RawMessage
	if err := control.Call(ctx, *sock, control.CmdJails, nil, &jails); err != nil {
		if !daemonDown(err) {
			fmt.Fprintf(e.stderr, "moat jail status: %v\n", err)
			return ExitRuntime
		}
		return jailStatusOffline(ctx, e, f, name, *state, *asJSON)
	}
	var out []json.RawMessage
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JAIL\tFILTER\tSOURCE\tLINES\tFAILURES\tUNATTRIBUTED\tTRACKED\tBANS\tRULE")
	for _, raw := range jails {
		var j struct {
			Name, Filter, Mode, Source string
			Lines                      uint64
			Matched                    uint64 `json:"failures_matched"`
			Unattributable             uint64
			MaxRetry                   int
			FindTime, BanTime          string
			Stats                      struct {
				Decisions uint64
				Tracked   int
			}
		}
		json.Unmarshal(raw, &j)
		if name != "" && j.Name != name {
			continue
		}
		out = append(out, raw)
		fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d in %s → %s\n", j.Name, j.Filter, j.Mode, j.Source, j.Lines, j.Matched,
			j.Unattributable, j.Stats.Tracked, j.Stats.Decisions, j.MaxRetry, j.FindTime, j.BanTime)
	}
	if name != "" && len(out) == 0 {
		fmt.Fprintf(e.stderr, "moat jail status: no jail %q\n", name)
		return ExitUsage
	}
	if *asJSON {
		return printJSON(e, out)
	}
	tw.Flush()
	return ExitOK
}

// offlineJail is a jail as `moat jail status` shows it with the daemon
// down: its configuration and the bans the store holds for it; the
// counters live in the daemon only.
type offlineJail struct {
	Name     string `json:"name"`
	Filter   string `json:"filter"`
	Mode     string `json:"mode"`
	Source   string `json:"source"`
	MaxRetry int    `json:"maxretry"`
	FindTime string `json:"findtime"`
	BanTime  string `json:"bantime"`
	Bans     int    `json:"active_bans"`
	Running  bool   `json:"daemon_running"`
}

// jailStatusOffline answers `moat jail status` without a daemon: the jails
// moat.yaml declares and their active bans from moat.db, read-only.
func jailStatusOffline(ctx context.Context, e *env, f *flags, name, state string, asJSON bool) int {
	cfg, code, ok := loadConfig(e, f)
	if !ok {
		return code
	}
	path := filepath.Join(state, "moat.db")
	bans, err := ban.ReadActive(ctx, path, time.Now())
	if err != nil {
		fmt.Fprintf(e.stderr, "moat jail status: daemon not running, and %v\n", err)
		return ExitRuntime
	}
	perJail := map[string]int{}
	for _, b := range bans {
		perJail[b.Jail]++
	}
	jails := guard.Jails(cfg)
	var out []offlineJail
	for _, n := range slices.Sorted(maps.Keys(jails)) {
		if name != "" && n != name {
			continue
		}
		j := jails[n]
		src := j.Source
		if src == "" {
			src = "auto"
		}
		if len(j.Paths) > 0 {
			src += ": " + strings.Join(j.Paths, ", ")
		}
		mode := j.Mode
		if mode == "" {
			mode = "normal"
		}
		out = append(out, offlineJail{Name: n, Filter: j.Filter, Mode: mode, Source: src, MaxRetry: j.MaxRetry,
			FindTime: j.FindTime.String(), BanTime: j.BanTime.String(), Bans: perJail[n]})
	}
	if name != "" && len(out) == 0 {
		fmt.Fprintf(e.stderr, "moat jail status: no jail %q in %s\n", name, cfg.File)
		return ExitUsage
	}
	from := cfg.File
	if from == "" {
		from = "the defaults (no moat.yaml)"
	}
	fmt.Fprintf(e.stderr, "moat jail status: daemon not running, nothing is watching the logs: jails from %s, bans from %s\n", from, path)
	if asJSON {
		return printJSON(e, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JAIL\tFILTER\tSOURCE\tBANS\tRULE")
	for _, j := range out {
		fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%d\t%d in %s → %s\n", j.Name, j.Filter, j.Mode, j.Source, j.Bans, j.MaxRetry, j.FindTime, j.BanTime)
	}
	tw.Flush()
	return ExitOK
}

func runStatus(e *env, args []string) int {
	f := newFlags(e, "status", "status [--json] [--socket PATH] [--state DIR]")
	asJSON := f.Bool("json", false, "JSON output")
	sock := socketFlag(f)
	state := f.String("state", "/var/lib/moat", "state `dir`, read when the daemon is not running")
	if code, ok := f.parse(args); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var st daemon.Status
	code := ExitOK
	if err := control.Call(ctx, *sock, control.CmdStatus, nil, &st); err != nil {
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			fmt.Fprintf(e.stderr, "moat status: %v\n", err)
			return ExitRuntime
		}
		// No daemon to ask: show what the kernel and the state directory
		// know, and exit 1 so scripts notice the guard is down.
		st = daemon.OfflineStatus(ctx, *state, err)
		code = ExitRuntime
		if c, err := config.Load(config.Path(f.config), f.explicitConfig()); err == nil {
			st.VPN = vpn.ReadStatus(c.VPN.WireGuard)
		}
	}
	if *asJSON {
		if c := printJSON(e, st); c != ExitOK {
			return c
		}
		return code
	}
	cw := colourStatus(e.stdout)
	st.WriteText(cw, time.Now())
	cw.Flush()
	return code
}
