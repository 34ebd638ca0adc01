package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time: -ldflags "-X github.com/moat-sh/moat/internal/cli.version=v1.2.3".
var version string

// Version returns moat's version: the linker's, else the module's, else the
// VCS revision from build info.
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		return "devel-" + rev + dirty
	}
	return "devel"
}

func runVersion(e *env, args []string) int {
	f := newFlags(e, "version", "version")
	if code, ok := f.parse(args); !ok {
		return code
	}
	fmt.Fprintf(e.stdout, "moat %s %s/%s %s\n", Version(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	return ExitOK
}
