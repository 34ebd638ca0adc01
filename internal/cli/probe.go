package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/finding"
	"github.com/moat-sh/moat/internal/probe"
)

func init() {
	register(command{"probe", "probe TARGET: the attacker's view of a host from outside, held against moat.yaml (-c)", 15, runProbe})
}

func runProbe(e *env, args []string) int {
	f := newFlags(e, "probe", "probe TARGET [-c moat.yaml] [--json | --sarif] [--rate N] [--ports all|top|LIST] [--syn] [--names host1,host2] [--fail-on SEVERITY]")
	asJSON := f.Bool("json", false, "print the report as JSON (schema moat.probe/v1)")
	asSARIF := f.Bool("sarif", false, "print the findings as SARIF 2.1.0")
	failOn := f.String("fail-on", "", "exit 3 when a finding is at or above `severity` (info, low, medium, high, critical)")
	rate := f.Float64("rate", 0, fmt.Sprintf("at most `N` TCP connection attempts per second, a hard ceiling; below it the pace adapts to the target's answers (default %d, or %d for a target on a directly connected network)", probe.DefaultRate, probe.DefaultLinkRate))
	workers := f.Int("workers", probe.DefaultWorkers, "at most `N` connection attempts in flight")
	portsFlag := f.String("ports", "all", "TCP ports: all (1-65535), top, or a `list` like 22,80,8000-8100")
	names := f.String("names", "", "host `names` to ask for in TLS SNI and HTTP Host (default: gateway.sites from -c)")
	admin := f.String("admin", "", "the admin `user` whose SSH methods are probed beside root and a random name (default: host.admin.user from -c)")
	noUDP := f.Bool("no-udp", false, "skip the UDP probes")
	syn := f.Bool("syn", false, "a half-open SYN scan over a raw socket instead of connects (root or CAP_NET_RAW)")
	retries := f.Int("retries", probe.DefaultRetries, "extra tries for a port that does not answer, before it is called filtered (a host seen to lose packets earns its ports more, up to 6)")
	timeout := f.Duration("timeout", probe.DefaultTimeout, "longest wait for one connection attempt (it adapts to the measured round trip, down to --min-timeout)")
	minTimeout := f.Duration("min-timeout", probe.DefaultMinTimeout, "shortest wait for one connection attempt")
	maxTime := f.Duration("max-time", 30*time.Minute, "stop after this long and report what was seen")
	verbose := f.Bool("v", false, "list passed checks too")
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() != 1 {
		fmt.Fprintln(e.stderr, "moat probe: name one TARGET (an address or a host name), e.g. moat probe 203.0.113.7 -c moat.yaml")
		return ExitUsage
	}
	threshold, ok := e.reportFlags("probe", *asJSON, *asSARIF, *failOn)
	if !ok {
		return ExitUsage
	}
	rateSet := false
	f.Visit(func(fl *flag.Flag) { rateSet = rateSet || fl.Name == "rate" })
	if *rate < 0 || *rate > 1000000 || (rateSet && *rate < 1) {
		fmt.Fprintln(e.stderr, "moat probe: --rate: expected 1 to 1000000 attempts per second")
		return ExitUsage
	}
	if *workers < 1 || *workers > 10000 {
		fmt.Fprintln(e.stderr, "moat probe: --workers: expected 1 to 10000")
		return ExitUsage
	}
	if *retries < 0 || *retries > 10 {
		fmt.Fprintln(e.stderr, "moat probe: --retries: expected 0 to 10")
		return ExitUsage
	}
	if *syn {
		if err := probe.CanSYN(); err != nil {
			fmt.Fprintf(e.stderr, "moat probe: --syn: %v\n", err)
			return ExitUsage
		}
	}
	ports, err := probe.ParsePorts(*portsFlag)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat probe: %v\n", err)
		return ExitUsage
	}
	var intent *probe.Intent
	if f.explicitConfig() {
		c, code, ok := loadConfig(e, f)
		if !ok {
			return code
		}
		intent = intentOf(c)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	target, err := probe.ResolveTarget(ctx, nil, f.Arg(0))
	if err != nil {
		fmt.Fprintf(e.stderr, "moat probe: %v\n", err)
		return ExitUsage
	}
	opts := probe.Options{
		Target:  target,
		Ports:   ports,
		NoUDP:   *noUDP,
		Intent:  intent,
		MaxTime: *maxTime,
		Version: Version(),
		Scanner: probe.Scanner{SYN: *syn, Rate: *rate, Workers: *workers, Retries: *retries, Timeout: *timeout, MinTimeout: *minTimeout},
		Prober:  probe.Prober{Admin: *admin},
	}
	if *names != "" {
		for _, n := range strings.Split(*names, ",") {
			if n = strings.TrimSpace(n); n != "" {
				opts.Prober.Names = append(opts.Prober.Names, n)
			}
		}
	}
	if !*asJSON && !*asSARIF && isTerminal(e.stderr) {
		ceiling := *rate
		if ceiling == 0 {
			ceiling = probe.DefaultRate
			if probe.OnLink(target.Addrs) {
				ceiling = probe.DefaultLinkRate
			}
		}
		fmt.Fprintf(e.stderr, "moat probe: scanning %d TCP ports on %s, the pace adapting up to %.0f attempts/s…\n", len(ports), strings.Join(addrStrings(target), ", "), ceiling)
	}
	rep, err := probe.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat probe: %v\n", err)
		return ExitRuntime
	}
	switch {
	case *asJSON:
		err = rep.WriteJSON(e.stdout)
	case *asSARIF:
		err = rep.WriteSARIF(e.stdout)
	default:
		err = rep.WriteText(e.stdout, *verbose)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "moat probe: write report: %v\n", err)
		return ExitRuntime
	}
	if *failOn != "" {
		if worst, any := rep.Worst(); any && worst >= threshold {
			return ExitFindings
		}
	}
	return ExitOK
}

func addrStrings(t probe.Target) []string {
	var out []string
	for _, a := range t.Addrs {
		out = append(out, a.String())
	}
	return out
}

// intentOf is the exposure moat.yaml declares, as the probe needs it.
func intentOf(c *config.Config) *probe.Intent {
	in := &probe.Intent{
		Source:      c.File,
		SSHPort:     uint16(c.SSH.Port),
		SSHExposure: string(c.SSH.Exposure),
		Admin:       c.Host.Admin.User,
	}
	if in.Source == "" {
		in.Source = "the built-in defaults"
	}
	for _, p := range c.Firewall.Public {
		r := probe.PortRange{From: p.From, To: p.To}
		if p.Proto == "udp" {
			in.PublicUDP = append(in.PublicUDP, r)
		} else {
			in.PublicTCP = append(in.PublicTCP, r)
		}
	}
	if c.Gateway != nil {
		for _, s := range c.Gateway.Sites {
			in.Sites = append(in.Sites, s.Host)
			for _, r := range s.Routes {
				in.Routes = append(in.Routes, probe.Route{
					Site: s.Host, Path: r.Path, Deny: r.Deny,
					Restricted: len(r.Allow) > 0 || r.BasicAuth != nil || r.ForwardAuth != nil || len(r.Geo.Allow) > 0 || len(r.Geo.Deny) > 0,
				})
			}
		}
	}
	return in
}

// reportFlags checks the report flags audit and probe share: one output
// format at most, and --fail-on's severity (zero when not given). A
// refusal is said on stderr, named for cmd.
func (e *env) reportFlags(cmd string, asJSON, asSARIF bool, failOn string) (finding.Severity, bool) {
	if asJSON && asSARIF {
		fmt.Fprintf(e.stderr, "moat %s: choose one of --json and --sarif\n", cmd)
		return 0, false
	}
	if failOn == "" {
		return 0, true
	}
	s, err := finding.ParseSeverity(failOn)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat %s: --fail-on: %v\n", cmd, err)
		return 0, false
	}
	return s, true
}
