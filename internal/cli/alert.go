package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/moat-sh/moat/internal/alert"
)

func init() {
	register(command{"alert", "alert test [NOTIFIER...]: send a test alert, show each receiver's answer", 70, runAlert})
}

func runAlert(e *env, args []string) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(e.stderr, "Usage: moat alert test [-c FILE] [--timeout 15s] [NOTIFIER...]")
		return ExitUsage
	}
	f := newFlags(e, "alert test", "alert test [-c FILE] [--timeout 15s] [NOTIFIER...]")
	timeout := f.Duration("timeout", 15*time.Second, "how long each receiver may take to answer")
	if code, ok := f.parse(args[1:]); !ok {
		return code
	}
	c, code, ok := loadConfig(e, f)
	if !ok {
		return code
	}
	d, err := alert.New(c.Alerts, alert.Options{Timeout: *timeout, Logger: e.log})
	if err != nil {
		fmt.Fprintf(e.stderr, "moat alert test: %v\n", err)
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout+time.Second)
	defer cancel()
	results, err := d.Test(ctx, f.Args()...)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat alert test: %v\n", err)
		return ExitUsage
	}
	code = ExitOK
	for _, r := range results {
		took := r.Took.Round(time.Millisecond)
		if r.Err != nil {
			code = ExitRuntime
			fmt.Fprintf(e.stdout, "%-12s %-8s FAILED  %v (%s)\n", r.Notifier, r.Type, r.Err, took)
			continue
		}
		fmt.Fprintf(e.stdout, "%-12s %-8s ok      %s (%s)\n", r.Notifier, r.Type, r.Reply, took)
	}
	return code
}
