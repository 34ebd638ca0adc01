package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/filter"
	"github.com/moat-sh/moat/internal/guard"
	"github.com/moat-sh/moat/internal/logwatch"
)

func init() {
	register(command{"filter", "filter test FILTER FILE: what a filter reads in a log (like fail2ban-regex)", 55, runFilter})
}

const filterSynopsis = "filter test FILTER FILE [--mode MODE] [-v] [--json] [-c FILE]"

func runFilter(e *env, args []string) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintf(e.stderr, "Usage: moat %s\n\nFILTER is a built-in (%s) or a filter under guard.filters.\n", filterSynopsis, strings.Join(filter.Builtins(), ", "))
		return ExitUsage
	}
	f := newFlags(e, "filter test", filterSynopsis)
	mode := f.String("mode", "", "filter `mode` (sshd: normal, ddos, extra, aggressive)")
	verbose := f.Bool("v", false, "print each failure with its address, and the line")
	asJSON := f.Bool("json", false, "print the summary as JSON")
	// Flags may come before, between or after the two operands.
	var operands []string
	rest := args[1:]
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
	if len(operands) != 2 {
		f.Usage()
		return ExitUsage
	}
	name, path := operands[0], operands[1]

	file, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat filter test: %v\n", err)
		return ExitRuntime
	}
	defer file.Close()
	// Syslog stamps carry no year: read them relative to the file's last
	// write, which the last line is close to.
	ref := time.Now()
	if st, err := file.Stat(); err == nil {
		ref = st.ModTime()
	}
	opts := filter.Options{Now: func() time.Time { return ref }}
	flt, code, ok := filterByName(e, f, name, *mode, opts)
	if !ok {
		return code
	}

	var out *bufio.Writer
	if *verbose {
		out = bufio.NewWriterSize(e.stdout, 1<<16)
	}
	s, err := testFilter(flt, path, out)
	if out != nil {
		out.Flush()
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "moat filter test: read %s: %v\n", path, err)
		return ExitRuntime
	}
	s.Filter, s.Mode, s.File = flt.Name(), flt.Mode(), path
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(s)
		return ExitOK
	}
	s.write(e.stdout)
	return ExitOK
}

// filterByName builds the filter a jail naming it would use: one defined
// under guard.filters in the config (as `moat run` does, such a filter
// shadows a built-in of the same name), else a built-in. A config that
// does not load stops the test, unless name is a built-in.
func filterByName(e *env, f *flags, name, mode string, opts filter.Options) (filter.Filter, int, bool) {
	_, builtin := filter.Modes(name)
	var c *config.Config
	if builtin && !f.explicitConfig() {
		// Quietly: a broken default config must not stop a test of a
		// built-in, but it may still define this name.
		c, _ = config.Load(config.Path(""), false)
	} else {
		var code int
		var ok bool
		if c, code, ok = loadConfig(e, f); !ok {
			return nil, code, false
		}
	}
	if c == nil {
		c = config.Default()
	}
	if _, custom := c.Guard.Filters[name]; !custom && !builtin {
		file := ""
		if c != nil {
			file = c.File
		}
		fmt.Fprintf(e.stderr, "moat filter test: unknown filter %q: expected a built-in (%s) or one defined under guard.filters in %s\n",
			name, strings.Join(filter.Builtins(), ", "), configName(file))
		return nil, ExitUsage, false
	}
	flt, err := c.Filter(name, mode, opts)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat filter test: %v\n", err)
		return nil, ExitUsage, false
	}
	return flt, 0, true
}

func configName(file string) string {
	if file == "" {
		return "the config (none found: built-in defaults)"
	}
	return file
}

// filterSummary is what `moat filter test` reports.
type filterSummary struct {
	Filter string `json:"filter"`
	Mode   string `json:"mode"`
	File   string `json:"file"`
	// Lines read; Matched produced failures, Ignored were known and are
	// no failure (helper lines, successes, ignore regexes), Missed were
	// not recognized; TooLong lines were longer than a followed file's
	// longest line, and are never attributed.
	Lines   int `json:"lines"`
	Matched int `json:"matched"`
	Ignored int `json:"ignored"`
	Missed  int `json:"missed"`
	TooLong int `json:"too_long"`
	// Failures, and the attempts they stand for; Unattributable ones ban
	// nothing (a host name, an ambiguous line).
	Failures       int            `json:"failures"`
	Attempts       int            `json:"attempts"`
	Attributed     int            `json:"attributed"`
	Unattributable int            `json:"unattributable"`
	Addresses      int            `json:"addresses"`
	Kinds          map[string]int `json:"kinds"`
	Successes      int            `json:"successes"`
	Seconds        float64        `json:"seconds"`
	LinesPerSecond float64        `json:"lines_per_second"`
}

// testFilter runs every line of r through flt. With out, each failure is
// printed as it is found.
func testFilter(flt filter.Filter, path string, out *bufio.Writer) (filterSummary, error) {
	s := filterSummary{Kinds: map[string]int{}}
	addrs := map[netip.Addr]struct{}{}
	// The guard's unit without an engine: the lines are read and handed
	// to the filter exactly as moat run does.
	u := &guard.Unit{Name: flt.Name(), Filter: flt, Observe: func(l *logwatch.Line, res *filter.Result) {
		s.Lines++
		if l.Truncated {
			s.TooLong++
			return
		}
		switch res.Verdict {
		case filter.Matched:
			s.Matched++
		case filter.Ignored:
			s.Ignored++
		default:
			s.Missed++
		}
		s.Successes += len(res.Successes)
		for _, f := range res.Failures {
			s.Failures++
			s.Attempts += f.Attempts
			s.Kinds[string(f.Kind)]++
			if f.Addr.IsValid() {
				s.Attributed++
				addrs[f.Addr] = struct{}{}
			} else {
				s.Unattributable++
			}
			if out != nil {
				writeFailure(out, f, l.Text)
			}
		}
	}}
	start := time.Now()
	if _, err := guard.ReadFile(path, u); err != nil {
		return s, err
	}
	s.Seconds = time.Since(start).Seconds()
	if s.Seconds > 0 {
		s.LinesPerSecond = float64(s.Lines) / s.Seconds
	}
	s.Addresses = len(addrs)
	return s, nil
}

// writeFailure prints "ADDR KIND xN  LINE", the line made safe for a
// terminal (it is attacker text: escapes must not reach the terminal).
func writeFailure(w *bufio.Writer, f filter.Failure, line []byte) {
	a := "unattributable"
	if f.Addr.IsValid() {
		a = f.Addr.String()
	} else if f.Host != "" {
		a = "unattributable(" + f.Host + ")"
	}
	fmt.Fprintf(w, "%-39s %-13s x%-3d %s  %s\n", a, f.Kind, f.Attempts, f.Time.Format(time.DateTime), terminalSafe(line))
}

func terminalSafe(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			fmt.Fprintf(&s, `\x%02x`, c)
		} else {
			s.WriteByte(c)
		}
	}
	return strings.ToValidUTF8(s.String(), "\uFFFD")
}

func (s filterSummary) write(w io.Writer) {
	fmt.Fprintf(w, "Filter:    %s (mode %s)\n", s.Filter, s.Mode)
	fmt.Fprintf(w, "File:      %s\n", s.File)
	fmt.Fprintf(w, "Lines:     %d: %d matched, %d ignored, %d missed", s.Lines, s.Matched, s.Ignored, s.Missed)
	if s.TooLong > 0 {
		fmt.Fprintf(w, ", %d too long (skipped)", s.TooLong)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Failures:  %d (%d attempts): %d attributed to %d addresses, %d unattributable\n",
		s.Failures, s.Attempts, s.Attributed, s.Addresses, s.Unattributable)
	if len(s.Kinds) > 0 {
		var kinds []string
		for _, k := range slices.Sorted(maps.Keys(s.Kinds)) {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, s.Kinds[k]))
		}
		fmt.Fprintf(w, "Kinds:     %s\n", strings.Join(kinds, ", "))
	}
	if s.Successes > 0 {
		fmt.Fprintf(w, "Logins:    %d accepted\n", s.Successes)
	}
	fmt.Fprintf(w, "Speed:     %.0f lines/s (%.3f s)\n", s.LinesPerSecond, s.Seconds)
}
