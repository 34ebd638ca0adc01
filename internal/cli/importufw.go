package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/moat-sh/moat/internal/config"

	"github.com/moat-sh/moat/internal/ufwimport"
)

func runImportUFW(e *env, args []string) int {
	f := newFlags(e, "import ufw", "import ufw [FILE|-] [--root DIR] [--ssh-port N]").withRoot()
	sshPort := f.Uint("ssh-port", 0, "sshd's port, which moat opens itself (default: ssh.port of the config, else 22)")
	if code, ok := f.parse(args); !ok {
		return code
	}
	if *sshPort > 65535 {
		fmt.Fprintf(e.stderr, "moat import ufw: --ssh-port %d: expected a port from 1 to 65535\n", *sshPort)
		return ExitUsage
	}
	if *sshPort == 0 {
		*sshPort = 22
		if c, err := config.Load(config.Path(f.config), f.explicitConfig()); err == nil {
			*sshPort = uint(c.SSH.Port)
		}
	}
	if f.NArg() > 1 {
		fmt.Fprint(e.stderr, importUsage)
		return ExitUsage
	}
	apps, err := ufwimport.ReadApps(filepath.Join(f.root, "/etc/ufw/applications.d"))
	if err != nil {
		fmt.Fprintf(e.stderr, "moat import ufw: %v\n", err)
		return ExitRuntime
	}
	var in ufwimport.Input
	switch name := f.Arg(0); name {
	case "":
		in, err = ufwimport.ReadHost(f.root)
	default:
		var data []byte
		if name == "-" {
			data, err = io.ReadAll(io.LimitReader(e.stdin, 8<<20))
			name = "standard input"
		} else {
			data, err = os.ReadFile(name)
		}
		if err == nil {
			in, err = ufwimport.ReadFile(name, data, apps)
		}
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "moat import ufw: %v\n", err)
		return ExitUsage
	}
	in.SSHPort = uint16(*sshPort)
	fmt.Fprint(e.stdout, ufwimport.Translate(in))
	return ExitOK
}
