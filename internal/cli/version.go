package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version and commit are set at build time from git (scripts/version.sh):
//
//	-ldflags "-X github.com/moat-sh/moat/internal/cli.version=0.11.0 -X github.com/moat-sh/moat/internal/cli.commit=abc123"
//
// version is the release tag without its "v" (0.11.0), a later commit
// 0.11.0+3.gabc123, a tree without tags 0.0.0-dev+abc123.
var version, commit string

// Version returns moat's version: the linker's, else the module's, else
// 0.0.0-dev with the VCS revision from build info.
func Version() string {
	if version != "" {
		return strings.TrimPrefix(version, "v")
	}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return strings.TrimPrefix(v, "v")
		}
	}
	if rev, dirty := vcsRevision(); rev != "" {
		return "0.0.0-dev+" + rev + dirty
	}
	return "0.0.0-dev"
}

// Commit returns the git commit moat was built from, "" when unknown.
func Commit() string {
	if commit != "" {
		return commit
	}
	rev, _ := vcsRevision()
	return rev
}

func vcsRevision() (rev, dirty string) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", ""
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ".dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return rev, dirty
}

// versionInfo is `moat version --json`.
type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func runVersion(e *env, args []string) int {
	f := newFlags(e, "version", "version [--json]")
	asJSON := f.Bool("json", false, "print version, commit, Go version, OS and architecture as JSON")
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() > 0 {
		f.Usage()
		return ExitUsage
	}
	v := versionInfo{Version: Version(), Commit: Commit(), Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if *asJSON {
		return printJSON(e, v)
	}
	fmt.Fprintf(e.stdout, "moat %s %s/%s %s\n", v.Version, v.OS, v.Arch, v.Go)
	return ExitOK
}
