// Package cli is moat's command line: one file per command, each returning
// an exit code. Main dispatches.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Exit codes, documented in usage and the README.
const (
	ExitOK       = 0 // success
	ExitRuntime  = 1 // runtime error
	ExitUsage    = 2 // usage or config error
	ExitFindings = 3 // audit findings at or above --fail-on
	ExitRollback = 4 // a change failed and was rolled back
)

// env is what a command gets: its streams and a logger.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            *slog.Logger
	// describe, when set, makes parse record each flag set and return
	// before the command does anything: the command tree (help, man
	// pages, completions) is read from the commands themselves.
	describe *describer
}

type command struct {
	name, summary string
	order         int // position in usage; commands register themselves in init
	run           func(e *env, args []string) int
}

var registry []command

// register adds a command; each command's file calls it from init, so
// adding a command touches only its own file.
func register(c command) { registry = append(registry, c) }

func commands() []command {
	cs := append([]command(nil), registry...)
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].order < cs[j].order })
	return append(cs, command{name: "help", summary: "help [COMMAND [SUBCOMMAND]]: this help, or a command's", order: 1000})
}

func init() {
	register(command{"audit", "what is exposed and weak, per layer, with the fix (read-only)", 10, runAudit})
	register(command{"init", "print a starter moat.yaml from what is found on this host", 20, runInit})
	register(command{"config", "config check [FILE]: validate moat.yaml as moat run would (exit 0 or 2)", 90, runConfig})
	register(command{"version", "print moat's version (--json)", 100, runVersion})
}

const usageText = `moat puts a Linux VPS behind layered defences and proves they hold.

Usage: moat COMMAND [flags]
       moat help COMMAND    (or moat COMMAND --help)
       moat -v | --version

Commands:
%s
Common flags:
  -c, --config FILE   config file (default /etc/moat/moat.yaml, or $MOAT_CONFIG)
      --root DIR      read a fixture tree instead of / (audit, init)

Exit codes:
  0  ok
  1  runtime error
  2  usage or config error
  3  audit findings at or above --fail-on
  4  a change failed and was rolled back

Run 'moat help COMMAND' or 'moat COMMAND --help' for a command's flags;
'man moat' has them all.
`

func usage(w io.Writer) {
	var b strings.Builder
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintf(w, usageText, b.String())
}

// Main runs moat with args (without the program name) and returns the exit
// code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, log: commandLogger(stderr)} // daemons replace it (logging.go)
	if len(args) == 0 {
		usage(stderr)
		return ExitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help":
		usage(stdout)
		return ExitOK
	case "help":
		return runHelp(e, args[1:])
	case "-v", "--version", "-version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name && c.run != nil {
			// `moat jail -h`, `moat plan firewall --help`: help comes
			// from the command tree, the same text as `moat help`.
			if path, ok := helpRequest(c, args[1:]); ok {
				return runHelp(e, path)
			}
			return c.run(e, args[1:])
		}
	}
	fmt.Fprintf(stderr, "moat: unknown command %q\n\n", name)
	usage(stderr)
	return ExitUsage
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// flags makes a command's flag set with the common flags; errors and -h are
// handled by parse.
type flags struct {
	*flag.FlagSet
	e        *env
	synopsis string
	config   string
	root     string
	pos      []string // positional arguments, from parse
}

func newFlags(e *env, name, synopsis string) *flags {
	f := &flags{FlagSet: flag.NewFlagSet("moat "+name, flag.ContinueOnError), e: e, synopsis: synopsis}
	f.SetOutput(e.stderr)
	f.StringVar(&f.config, "c", "", "config `file` (default /etc/moat/moat.yaml, or $MOAT_CONFIG)")
	f.StringVar(&f.config, "config", "", "config `file` (same as -c)")
	// Flags are listed as the docs write them: --json, -c/--config.
	f.Usage = func() { writeFlagsHelp(e.stderr, f) }
	return f
}

func (f *flags) withRoot() *flags {
	f.StringVar(&f.root, "root", "", "read the fixture tree `dir` instead of / for file-based facts")
	return f
}

// parse parses args, flags before or after the positional arguments
// (`moat ban --socket S ADDR --for 10m`); "--" ends the flags. ok is false
// when the command should return code.
func (f *flags) parse(args []string) (code int, ok bool) {
	if f.e != nil && f.e.describe != nil {
		f.e.describe.record(f)
		return ExitOK, false
	}
	f.pos = nil
	usage := f.Usage
	f.Usage = func() {} // printed below: help to stdout, a mistake's to stderr
	defer func() { f.Usage = usage }()
	// The flag package's own messages name flags with one dash; they are
	// reworded below as the help and the docs spell them.
	out := f.Output()
	f.SetOutput(io.Discard)
	defer f.SetOutput(out)
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				writeFlagsHelp(f.e.stdout, f)
				return ExitOK, false
			}
			fmt.Fprintf(out, "%s: %s\n", f.Name(), longDashes.ReplaceAllString(err.Error(), "$1--$2"))
			usage()
			return ExitUsage, false
		}
		rest := f.FlagSet.Args()
		if len(rest) == 0 {
			return 0, true
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			f.pos = append(f.pos, rest...)
			return 0, true
		}
		f.pos = append(f.pos, rest[0])
		args = rest[1:]
	}
}

// longDashes finds a long flag written with one dash in the flag
// package's errors ("flag provided but not defined: -jsn").
var longDashes = regexp.MustCompile(`(^|[\s:])-([a-z][a-z0-9-]+)`)

// Args, NArg and Arg are the positional arguments wherever they stood.
func (f *flags) Args() []string { return f.pos }

// NArg is the number of positional arguments.
func (f *flags) NArg() int { return len(f.pos) }

// Arg is the i'th positional argument, "" past the end.
func (f *flags) Arg(i int) string {
	if i < 0 || i >= len(f.pos) {
		return ""
	}
	return f.pos[i]
}

// explicitConfig reports whether the user named a config file, so a missing
// one is an error rather than "use defaults".
func (f *flags) explicitConfig() bool {
	return f.config != "" || os.Getenv("MOAT_CONFIG") != ""
}
