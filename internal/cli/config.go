package cli

import (
	"fmt"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/preflight"
)

const configUsage = `Usage: moat config check [FILE] [-c FILE]

Validates moat.yaml the way 'moat run' and 'moat gateway check' will: the
same errors and warnings, in the same words, with the same exit code (0 ok,
2 invalid). FILE defaults to -c, then $MOAT_CONFIG, then ` + config.DefaultPath + `.
A missing file is an error, never replaced by another.`

func runConfig(e *env, args []string) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(e.stderr, configUsage)
		return ExitUsage
	}
	f := newFlags(e, "config check", "config check [FILE] [-c FILE]")
	if code, ok := f.parse(args[1:]); !ok {
		return code
	}
	if f.NArg() > 1 || (f.NArg() == 1 && f.config != "" && f.config != f.Arg(0)) {
		fmt.Fprintln(e.stderr, "moat config check: name one file, as FILE or -c FILE")
		return ExitUsage
	}
	flagPath := f.config
	if f.NArg() == 1 {
		flagPath = f.Arg(0)
	}
	path := config.Path(flagPath)
	c, warnings, err := preflight.Load(path, true, preflight.Options{})
	for _, w := range warnings {
		fmt.Fprintln(e.stderr, w.String())
	}
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		fmt.Fprintf(e.stderr, "moat config check: %s is not valid (%s)\n", path, config.Reference)
		return ExitUsage
	}
	if len(warnings) > 0 {
		fmt.Fprintf(e.stdout, "%s: ok, with %d warning(s) above\n", c.File, len(warnings))
		return ExitOK
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", c.File)
	return ExitOK
}

// loadConfig loads the config for commands that work without one: a
// missing default file means defaults.
func loadConfig(e *env, f *flags) (*config.Config, int, bool) {
	c, err := config.Load(config.Path(f.config), f.explicitConfig())
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return nil, ExitUsage, false
	}
	return c, 0, true
}
