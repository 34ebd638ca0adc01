package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moat-sh/moat/internal/control"
	"github.com/moat-sh/moat/internal/fleet"
)

func init() {
	register(command{"fleet", "fleet status | fleet keygen: the shared ban stream of a fleet of hosts; this host's NATS keys", 57, runFleet})
}

func runFleet(e *env, args []string) int {
	switch {
	case len(args) > 0 && args[0] == "status":
		return runFleetStatus(e, args[1:])
	case len(args) > 0 && args[0] == "keygen":
		return runFleetKeygen(e, args[1:])
	}
	fmt.Fprintf(e.stderr, "Usage: moat fleet status [--json] [--socket PATH]\n       moat fleet keygen --key FILE [--secret FILE]\n")
	return ExitUsage
}

func runFleetStatus(e *env, args []string) int {
	f := newFlags(e, "fleet status", "fleet status [--json] [--socket PATH]")
	asJSON := f.Bool("json", false, "JSON output")
	sock := socketFlag(f)
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() > 0 {
		f.Usage()
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var st fleet.Status
	if err := control.Call(ctx, *sock, control.CmdFleetStatus, nil, &st); err != nil {
		if daemonDown(err) {
			fmt.Fprintf(e.stderr, "moat fleet status: the daemon is not running (start moat run): %v\n", err)
		} else {
			fmt.Fprintf(e.stderr, "moat fleet status: %v\n", err)
		}
		return ExitRuntime
	}
	if *asJSON {
		return printJSON(e, st)
	}
	printFleetStatus(e, st)
	return ExitOK
}

func printFleetStatus(e *env, st fleet.Status) {
	w := e.stdout
	conn := "connected"
	if !st.Connected {
		conn = "NOT CONNECTED"
	}
	fmt.Fprintf(w, "fleet %s, this host %s: %s to %s\n", st.Fleet, st.Origin, conn, st.Server)
	if len(st.Nodes) > 0 {
		var names []string
		for _, n := range st.Nodes {
			names = append(names, n.Name)
		}
		fmt.Fprintf(w, "nodes (%d): %s\n", len(st.Nodes), strings.Join(names, ", "))
	}
	if s := st.Stream; s != nil {
		health := "healthy"
		if !s.Quorum {
			health = "NO QUORUM"
		}
		fmt.Fprintf(w, "stream %s: %s, %d decisions, replicas %d (%d current), leader %s\n", fleet.StreamName, health, s.Messages, s.Replicas, s.Current, orDash(s.Leader))
		for _, p := range s.Peers {
			state := "current"
			if p.Offline {
				state = "OFFLINE"
			} else if !p.Current {
				state = fmt.Sprintf("behind by %d", p.Lag)
			}
			fmt.Fprintf(w, "  replica %-20s %s, seen %s ago\n", p.Name, state, p.Active.Round(time.Millisecond))
		}
	} else {
		fmt.Fprintf(w, "stream %s: UNAVAILABLE: %s\n", fleet.StreamName, st.StreamError)
	}
	fmt.Fprintf(w, "this host: lag %d, outbox %d\n", st.Lag, st.Outbox)
	if st.OutboxError != "" {
		fmt.Fprintf(w, "OUTBOX NOT DURABLE: %s\n", st.OutboxError)
	}
	if len(st.Consumers) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "consumer\tpending\tack pending\tlast delivery")
		for _, c := range st.Consumers {
			last := "-"
			if !c.LastActive.IsZero() {
				last = time.Since(c.LastActive).Round(time.Second).String() + " ago"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", c.Name, c.Pending, c.AckPending, last)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "decisions in the last hour, per origin:")
	if len(st.LastHour) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, o := range slices.Sorted(maps.Keys(st.LastHour)) {
		fmt.Fprintf(w, "  %-20s %d\n", o, st.LastHour[o])
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runFleetKeygen(e *env, args []string) int {
	f := newFlags(e, "fleet keygen", "fleet keygen --key FILE [--secret FILE]")
	key := f.String("key", "/etc/moat/fleet.nkey", "where to write this host's NKEY seed (root-only, never overwritten)")
	secret := f.String("secret", "", "also write a new route secret `file` (once per fleet; copy it to every host)")
	if code, ok := f.parse(args); !ok {
		return code
	}
	pub, err := fleet.Keygen(*key)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat fleet keygen: %v\n", err)
		return ExitRuntime
	}
	fmt.Fprintf(e.stdout, "wrote %s (mode 0600)\npublic key: %s\nlist it on every host under fleet.hosts.<this host's name>\n", *key, pub)
	if *secret != "" {
		if err := fleet.NewSecret(*secret); err != nil {
			fmt.Fprintf(e.stderr, "moat fleet keygen: %v\n", err)
			return ExitRuntime
		}
		fmt.Fprintf(e.stdout, "wrote %s (mode 0600): copy it to every host, as fleet.nats.embedded.cluster.secret\n", *secret)
	}
	return ExitOK
}
