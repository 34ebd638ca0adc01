package cli

import (
	"fmt"

	"github.com/moat-sh/moat/internal/f2bimport"
)

func init() {
	register(command{"import", "import fail2ban [DIR] | import ufw [FILE]: print moat.yaml sections from their configs", 25, runImport})
}

const importUsage = `Usage: moat import fail2ban [DIR]     (default /etc/fail2ban)
       moat import ufw [FILE|-]        (default /etc/ufw/user.rules and user6.rules;
                                        FILE or - reads 'ufw status verbose' output)

Prints the equivalent moat.yaml sections on stdout, with comments for what
has no equivalent. Nothing is changed: review the output, merge it into
moat.yaml, then run moat config check and moat plan.
`

func runImport(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, importUsage)
		return ExitUsage
	}
	switch args[0] {
	case "fail2ban":
		return runImportFail2ban(e, args[1:])
	case "ufw":
		return runImportUFW(e, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, importUsage)
		return ExitOK
	}
	fmt.Fprintf(e.stderr, "moat import: unknown source %q: expected fail2ban or ufw\n\n%s", args[0], importUsage)
	return ExitUsage
}

func runImportFail2ban(e *env, args []string) int {
	f := newFlags(e, "import fail2ban", "import fail2ban [DIR] [--root DIR]").withRoot()
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() > 1 {
		fmt.Fprint(e.stderr, importUsage)
		return ExitUsage
	}
	dir := f.Arg(0)
	if dir == "" {
		dir = "/etc/fail2ban"
	}
	r, err := f2bimport.Import(f2bimport.Options{Dir: dir, Root: f.root})
	if err != nil {
		fmt.Fprintf(e.stderr, "moat import fail2ban: %v\n", err)
		return ExitUsage
	}
	fmt.Fprint(e.stdout, r.YAML)
	return ExitOK
}
