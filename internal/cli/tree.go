package cli

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// The command tree: every command, subcommand and flag, read from the
// commands themselves. Each command is run in describe mode with -h: its
// flags.parse records the flag set and returns before the command does
// anything. `moat help`, `--help`, the man pages and the shell
// completions all print this one tree, so they cannot drift from the
// flags the commands really parse.

// describer collects the flag sets a command builds in describe mode.
type describer struct{ got []*flags }

func (d *describer) record(f *flags) { d.got = append(d.got, f) }

// node is one command or subcommand.
type node struct {
	Path     []string // "jail", "replay"
	Summary  string
	Synopsis string // without the leading "moat "
	Flags    []flagDoc
	Subs     []*node
}

// Name is the node's path joined: "jail replay".
func (n *node) Name() string { return strings.Join(n.Path, " ") }

// flagDoc is one flag with its aliases (-c and --config are one flag).
type flagDoc struct {
	Names []string // without dashes, short first: "c", "config"
	Arg   string   // the value's name ("FILE"), "" for a boolean
	Usage string
	Def   string // default, "" when the zero value
}

// Spelled returns the names as typed: -c, --config.
func (d flagDoc) Spelled() []string {
	out := make([]string, len(d.Names))
	for i, n := range d.Names {
		out[i] = dashes(n) + n
	}
	return out
}

func dashes(name string) string {
	if len(name) == 1 {
		return "-"
	}
	return "--"
}

// describeRun runs c in describe mode with args followed by -h, and
// returns the flag set it built for exactly the command path, and what it
// printed (a dispatcher's usage names its subcommands).
func describeRun(c command, path []string) (*flags, string) {
	var out bytes.Buffer
	d := &describer{}
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &out, log: newLogger(io.Discard), describe: d}
	args := append(slices.Clone(path[1:]), "-h")
	c.run(e, args)
	want := "moat " + strings.Join(path, " ")
	for _, f := range d.got {
		if f.Name() == want {
			return f, out.String()
		}
	}
	return nil, out.String()
}

// tree returns the whole command tree, commands in usage order.
func tree() []*node {
	var out []*node
	for _, c := range commands() {
		if c.run == nil {
			out = append(out, &node{Path: []string{c.name}, Summary: c.summary, Synopsis: "help [COMMAND [SUBCOMMAND]]"})
			continue
		}
		if n := describeNode(c, []string{c.name}, c.summary, 0); n != nil {
			out = append(out, n)
		} else {
			out = append(out, &node{Path: []string{c.name}, Summary: c.summary, Synopsis: c.name})
		}
	}
	return out
}

// describeNode describes path: its own flags, and its subcommands, found
// as words after the path in its summary or its usage text and kept only
// when the command really builds a flag set (or subcommands) under that
// name.
func describeNode(c command, path []string, summary string, depth int) *node {
	f, printed := describeRun(c, path)
	n := &node{Path: path, Summary: summary}
	if f != nil {
		n.Synopsis, n.Flags = f.synopsis, flagDocs(f.FlagSet)
	}
	if depth < 3 {
		for _, sub := range subCandidates(strings.Join(path, " "), summary+"\n"+printed+"\n"+n.Synopsis) {
			p := append(slices.Clone(path), sub)
			if s := describeNode(c, p, "", depth+1); s != nil {
				n.Subs = append(n.Subs, s)
			}
		}
	}
	if f == nil && len(n.Subs) == 0 {
		return nil
	}
	if n.Synopsis == "" {
		var alts []string
		for _, s := range n.Subs {
			alts = append(alts, s.Path[len(s.Path)-1])
		}
		n.Synopsis = strings.Join(path, " ") + " " + strings.Join(alts, "|") + " ..."
	}
	for _, s := range n.Subs {
		if s.Summary == "" {
			s.Summary = subSummary(summary, s)
		}
	}
	return n
}

// subCandidates lists the words that follow name in text: "jail status
// [NAME] | jail replay" gives status and replay, "gateway check|serve"
// gives check and serve.
func subCandidates(name, text string) []string {
	re := regexp.MustCompile(`(?:^|[\s|(:])` + regexp.QuoteMeta(name) + ` ([a-z][a-z0-9-]*(?:\|[a-z][a-z0-9-]*)*)`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		for _, w := range strings.Split(m[1], "|") {
			if !slices.Contains(out, w) {
				out = append(out, w)
			}
		}
	}
	return out
}

// subSummary is a subcommand's line: its parent's summary when that
// describes only this subcommand, else its synopsis.
func subSummary(parent string, s *node) string {
	if i := strings.Index(parent, ": "); i >= 0 && strings.HasPrefix(parent, s.Name()) && !strings.Contains(parent[:i], "|") {
		return parent[i+2:]
	}
	return s.Synopsis
}

// flagDocs lists fs's flags, aliases (flags sharing one variable) merged
// under the first-defined usage that is not "same as".
func flagDocs(fs *flag.FlagSet) []flagDoc {
	var docs []flagDoc
	index := map[uintptr]int{}
	fs.VisitAll(func(fl *flag.Flag) {
		arg, usage := flag.UnquoteUsage(fl)
		if arg != "" {
			arg = strings.ToUpper(arg)
		}
		if isBool(fl) {
			arg = ""
		}
		def := fl.DefValue
		if def == "false" || def == "0" || def == "0s" || def == "[]" {
			def = ""
		}
		key := valuePtr(fl.Value)
		if i, ok := index[key]; ok && key != 0 {
			d := &docs[i]
			d.Names = append(d.Names, fl.Name)
			slices.SortStableFunc(d.Names, func(a, b string) int { return len(a) - len(b) })
			if strings.HasPrefix(d.Usage, "same as") {
				d.Usage = usage
			}
			return
		}
		index[key] = len(docs)
		docs = append(docs, flagDoc{Names: []string{fl.Name}, Arg: arg, Usage: usage, Def: def})
	})
	return docs
}

func isBool(fl *flag.Flag) bool {
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// valuePtr identifies the variable behind a flag's value, so -c and
// --config (StringVar on one string) are seen as one flag.
func valuePtr(v flag.Value) uintptr {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		return rv.Pointer()
	}
	return 0
}

// find returns the node at path in t, or nil.
func find(t []*node, path []string) *node {
	var n *node
	level := t
	for _, p := range path {
		n = nil
		for _, c := range level {
			if c.Path[len(c.Path)-1] == p {
				n = c
				break
			}
		}
		if n == nil {
			return nil
		}
		level = n.Subs
	}
	return n
}

// walk calls fn for every node of t, parents first.
func walk(t []*node, fn func(*node)) {
	for _, n := range t {
		fn(n)
		walk(n.Subs, fn)
	}
}

// writeFlags prints docs as help lists them: "  -c, --config FILE  text".
func writeFlags(w io.Writer, docs []flagDoc) {
	for _, d := range docs {
		left := strings.Join(d.Spelled(), ", ")
		if d.Arg != "" {
			left += " " + d.Arg
		}
		if len(d.Names[0]) > 1 {
			left = "    " + left // long-only flags line up after the short ones
		}
		text := d.Usage
		if d.Def != "" {
			text += fmt.Sprintf(" (default %s)", d.Def)
		}
		if len(left) <= 22 {
			fmt.Fprintf(w, "  %-22s  %s\n", left, text)
		} else {
			fmt.Fprintf(w, "  %s\n  %-22s  %s\n", left, "", text)
		}
	}
}

// writeFlagsHelp is a flag set's help: its synopsis and its flags.
func writeFlagsHelp(w io.Writer, f *flags) {
	if w == nil {
		w = io.Discard
	}
	fmt.Fprintf(w, "Usage: moat %s\n\nFlags:\n", f.synopsis)
	writeFlags(w, flagDocs(f.FlagSet))
}

// writeNodeHelp is a node's help: synopsis, summary, subcommands, flags.
func writeNodeHelp(w io.Writer, n *node) {
	fmt.Fprintf(w, "Usage: moat %s\n", n.Synopsis)
	if n.Summary != "" && n.Summary != n.Synopsis {
		fmt.Fprintf(w, "\n%s\n", n.Summary)
	}
	if len(n.Subs) > 0 {
		fmt.Fprintf(w, "\nSubcommands:\n")
		for _, s := range n.Subs {
			fmt.Fprintf(w, "  moat %s\n", s.Synopsis)
		}
		fmt.Fprintf(w, "\nRun 'moat help %s SUBCOMMAND' for a subcommand's flags.\n", n.Name())
	}
	if len(n.Flags) > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		writeFlags(w, n.Flags)
	}
}

// isHelpArg reports whether a is a request for help.
func isHelpArg(a string) bool { return a == "-h" || a == "--help" || a == "-help" }

// helpRequest reports whether args (after the command's name) ask for
// help on the command or one of its subcommands: `jail -h`, `plan
// firewall --help`. It returns the path to describe. A -h that is the
// value of a flag (`ban ADDR --reason -h`) is left to the command.
func helpRequest(c command, args []string) ([]string, bool) {
	if !slices.ContainsFunc(args, isHelpArg) {
		return nil, false
	}
	t := tree()
	path := []string{c.name}
	for i, a := range args {
		if a == "--" {
			return nil, false
		}
		if isHelpArg(a) && (i == 0 || !takesValue(t, path, args[i-1])) {
			return path, true
		}
		// Only leading subcommand words extend the path; a positional
		// argument (an address, a file) stops it.
		if i == len(path)-1 && !strings.HasPrefix(a, "-") {
			path = append(path, a)
		}
	}
	return nil, false
}

// takesValue reports whether arg is a flag of the command at path (or its
// nearest known parent) that takes a separate value: `--reason`, not
// `--json` or `--reason=x`.
func takesValue(t []*node, path []string, arg string) bool {
	name, ok := strings.CutPrefix(strings.TrimPrefix(arg, "-"), "-")
	if !ok {
		name = strings.TrimPrefix(arg, "-")
	}
	if !strings.HasPrefix(arg, "-") || strings.Contains(name, "=") {
		return false
	}
	n := find(t, path)
	for n == nil && len(path) > 1 {
		path = path[:len(path)-1]
		n = find(t, path)
	}
	if n == nil {
		return false
	}
	for _, d := range n.Flags {
		if d.Arg != "" && slices.Contains(d.Names, name) {
			return true
		}
	}
	return false
}

// runHelp prints help for the command at path, or the usage for none.
func runHelp(e *env, path []string) int {
	if len(path) == 0 {
		usage(e.stdout)
		return ExitOK
	}
	t := tree()
	n := find(t, path)
	// `moat ban 1.2.3.4 -h`: the longest known prefix.
	for n == nil && len(path) > 1 {
		path = path[:len(path)-1]
		n = find(t, path)
	}
	if n == nil {
		fmt.Fprintf(e.stderr, "moat help: unknown command %q\n\n", strings.Join(path, " "))
		usage(e.stderr)
		return ExitUsage
	}
	writeNodeHelp(e.stdout, n)
	return ExitOK
}
