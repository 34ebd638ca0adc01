package cli

import (
	"fmt"

	"github.com/moat-sh/moat/internal/config"
)

func runConfig(e *env, args []string) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(e.stderr, "Usage: moat config check [-c FILE]")
		return ExitUsage
	}
	f := newFlags(e, "config check", "config check [-c FILE]")
	if code, ok := f.parse(args[1:]); !ok {
		return code
	}
	path := config.Path(f.config)
	c, err := config.Load(path, true)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		fmt.Fprintf(e.stderr, "moat: %s is not valid; nothing was applied (see examples/moat.yaml for every key)\n", path)
		return ExitUsage
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
