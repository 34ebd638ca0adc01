package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"time"

	"github.com/moat-sh/moat/internal/guard"
	"github.com/moat-sh/moat/internal/jail"
	"github.com/moat-sh/moat/internal/schema"
)

func init() {
	register(command{"jail", "jail status [NAME] | jail replay --jail NAME FILE: jails' counters; the bans a log would have produced", 56, runJail})
}

const jailReplaySynopsis = "jail replay --jail NAME FILE [--json] [-c FILE]"

func runJail(e *env, args []string) int {
	switch {
	case len(args) > 0 && args[0] == "replay":
		return runJailReplay(e, args[1:])
	case len(args) > 0 && args[0] == "status":
		return runJailStatus(e, args[1:])
	}
	fmt.Fprintf(e.stderr, "Usage: moat %s\n       moat jail status [NAME] [--json]\n", jailReplaySynopsis)
	return ExitUsage
}

func runJailReplay(e *env, args []string) int {
	f := newFlags(e, "jail replay", jailReplaySynopsis)
	name := f.String("jail", "", "the jail `name` (guard.jails, or the built-in sshd and gateway)")
	asJSON := f.Bool("json", false, "print the bans and counters as JSON")
	// Flags may come before or after the file.
	var operands []string
	rest := args
	for {
		if code, ok := f.parse(rest); !ok {
			return code
		}
		if f.NArg() == 0 {
			break
		}
		operands = append(operands, f.Arg(0))
		rest = f.Args()[1:]
	}
	if len(operands) != 1 || *name == "" {
		f.Usage()
		return ExitUsage
	}
	path := operands[0]
	c, code, ok := loadConfig(e, f)
	if !ok {
		return code
	}
	j, found := guard.Jail(c, *name)
	if !found {
		fmt.Fprintf(e.stderr, "moat jail replay: no jail %q in %s: expected sshd, gateway or one under guard.jails (and enabled)\n", *name, configName(c.File))
		return ExitUsage
	}
	// The guard's own unit, as moat run runs it on this host: the same
	// reading, filter, jail defaults and ignore list.
	res, lines, err := guard.Replay(c, nil, *name, path)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat jail replay: %v\n", err)
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			return ExitRuntime // the file, not the config
		}
		return ExitUsage
	}
	rep := newReplayReport(*name, j, path, lines, res)
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return ExitOK
	}
	rep.write(e.stdout)
	return ExitOK
}

// replayReport is what `moat jail replay` prints.
type replayReport struct {
	Jail     string      `json:"jail"`
	File     string      `json:"file"`
	MaxRetry int         `json:"maxretry"`
	FindTime string      `json:"findtime"`
	BanTime  string      `json:"bantime"`
	Lines    int         `json:"lines"`
	Bans     []replayBan `json:"bans"`
	Stats    jail.Stats  `json:"stats"`
	Sources  int         `json:"sources_banned"`
}

type replayBan struct {
	Time     time.Time    `json:"time"`
	Address  netip.Addr   `json:"address"`
	Prefix   netip.Prefix `json:"prefix"`
	Failures int          `json:"failures"`
	BanTime  string       `json:"bantime"`
	Seconds  float64      `json:"bantime_seconds"`
	Offence  int          `json:"offence"`
}

func newReplayReport(name string, j jail.Jail, path string, lines int, res jail.ReplayResult) replayReport {
	r := replayReport{
		Jail: name, File: path, MaxRetry: j.MaxRetry,
		FindTime: j.FindTime.String(), BanTime: j.BanTime.String(),
		Lines: lines, Stats: res.Stats, Bans: []replayBan{},
	}
	seen := map[netip.Prefix]bool{}
	for _, d := range res.Bans {
		r.Bans = append(r.Bans, replayBan{
			Time: d.At, Address: d.Addr, Prefix: d.Prefix, Failures: d.Failures,
			BanTime: schema.Duration(d.BanTime).String(), Seconds: d.BanTime.Seconds(), Offence: d.Offence,
		})
		seen[d.Prefix] = true
	}
	r.Sources = len(seen)
	return r
}

func (r replayReport) write(w io.Writer) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintf(bw, "Jail:      %s (maxretry %d, findtime %s, bantime %s)\n", r.Jail, r.MaxRetry, r.FindTime, r.BanTime)
	fmt.Fprintf(bw, "File:      %s (%d lines)\n", r.File, r.Lines)
	s := r.Stats
	fmt.Fprintf(bw, "Failures:  %d counted, %d while banned, %d ignored, %d unattributable", s.Failures-s.WhileBanned, s.WhileBanned, s.Ignored, s.Unattributable)
	if s.Stale > 0 {
		fmt.Fprintf(bw, ", %d out of order beyond findtime", s.Stale)
	}
	fmt.Fprintln(bw)
	fmt.Fprintf(bw, "Bans:      %d of %d sources\n", len(r.Bans), r.Sources)
	if len(r.Bans) == 0 {
		return
	}
	fmt.Fprintln(bw)
	fmt.Fprintf(bw, "%-19s  %-39s  %-8s  %-8s  %s\n", "TIME", "PREFIX", "FAILURES", "BANTIME", "OFFENCE")
	for _, b := range r.Bans {
		p := b.Prefix.String()
		if b.Prefix.Bits() != b.Address.BitLen() {
			p += " (" + b.Address.String() + ")"
		}
		fmt.Fprintf(bw, "%-19s  %-39s  %-8d  %-8s  %d\n", b.Time.Local().Format(time.DateTime), p, b.Failures, b.BanTime, b.Offence)
	}
	if s.Evicted+s.Dropped > 0 {
		fmt.Fprintf(bw, "\nnote: the jail's table was full (%d evicted, %d dropped); raise guard.max_tracked to count every source\n", s.Evicted, s.Dropped)
	}
}
