package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/moat-sh/moat/internal/audit"
	"github.com/moat-sh/moat/internal/daemon"
	"github.com/moat-sh/moat/internal/term"
)

func runAudit(e *env, args []string) int {
	f := newFlags(e, "audit", "audit [--json | --sarif] [--fail-on SEVERITY] [--root DIR] [-v]").withRoot()
	asJSON := f.Bool("json", false, "print the report as JSON (schema moat.audit/v1, docs/audit-json.md)")
	asSARIF := f.Bool("sarif", false, "print the findings as SARIF 2.1.0")
	failOn := f.String("fail-on", "", "exit 3 when a finding is at or above `severity` (info, low, medium, high, critical)")
	verbose := f.Bool("v", false, "list passed and not-applicable checks too")
	skipApt := f.Bool("skip-apt", false, "skip the apt simulation (pending security updates), the slowest check")
	noProbe := f.Bool("no-probe", false, "skip the live SSH probe")
	noColor := f.Bool("no-color", false, "no colour even on a terminal")
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() > 0 {
		fmt.Fprintf(e.stderr, "moat audit: unexpected argument %q\n", f.Arg(0))
		return ExitUsage
	}
	threshold, ok := e.reportFlags("audit", *asJSON, *asSARIF, *failOn)
	if !ok {
		return ExitUsage
	}
	c, code, ok := loadConfig(e, f)
	if !ok {
		return code
	}
	opts := daemon.AuditOptions(c)
	opts.Root, opts.Version, opts.SkipApt, opts.NoProbe = f.root, Version(), *skipApt, *noProbe
	if f.root != "" {
		if st, err := os.Stat(f.root); err != nil || !st.IsDir() {
			fmt.Fprintf(e.stderr, "moat audit: --root %s: not a directory\n", f.root)
			return ExitUsage
		}
	}
	if f.root == "" && os.Geteuid() != 0 {
		fmt.Fprintln(e.stderr, "moat audit: not running as root: shadow passwords, socket owners, the firewall and sshd's host keys cannot be read; those checks are reported as unknown (run with sudo for full results)")
	}
	rep, err := audit.Run(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat audit: %v\n", err)
		return ExitRuntime
	}
	switch {
	case *asJSON:
		err = rep.WriteJSON(e.stdout)
	case *asSARIF:
		err = rep.WriteSARIF(e.stdout)
	default:
		err = rep.WriteText(e.stdout, audit.TextOptions{Color: !*noColor && term.Colour(e.stdout), Verbose: *verbose})
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "moat audit: write report: %v\n", err)
		return ExitRuntime
	}
	if *failOn != "" {
		if worst, any := rep.Worst(); any && worst >= threshold {
			return ExitFindings
		}
	}
	return ExitOK
}
