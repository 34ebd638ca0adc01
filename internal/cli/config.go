package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/preflight"
	"github.com/moat-sh/moat/internal/term"
)

const configUsage = `Usage: moat config check [FILE] [-c FILE]

Validates moat.yaml the way 'moat run' and 'moat gateway check' will: the
same errors and warnings, in the same words, with the same exit code (0 ok,
2 invalid). FILE defaults to -c, then $MOAT_CONFIG, then ` + config.DefaultPath + `.
A missing FILE (or -c, or $MOAT_CONFIG) is an error, never replaced by
another; a missing ` + config.DefaultPath + ` is the built-in defaults, as for
moat run.`

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
	explicit := flagPath != "" || f.explicitConfig()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if !explicit {
			// As moat run does: no file at the default path is the
			// built-in defaults, which are valid.
			fmt.Fprintf(e.stderr, "moat config check: %s: not found; moat run would use the built-in defaults (write a starter with: moat init -o %s)\n", path, path)
			fmt.Fprintln(e.stdout, "built-in defaults: ok")
			return ExitOK
		}
		fmt.Fprintf(e.stderr, "%s: not found (write a starter with: moat init -o %s)\n", path, path)
		return ExitUsage
	}
	c, warnings, err := preflight.Load(path, true, preflight.Options{})
	pal := term.For(e.stderr)
	for _, w := range warnings {
		fmt.Fprintln(e.stderr, pal.Yellow(w.String()))
	}
	if err != nil {
		fmt.Fprintln(e.stderr, pal.Red(err.Error()))
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
