package install

import (
	"context"
	"os/exec"
	"strings"
	"time"
)

// Packaged reports whether dpkg knows moat as installed (or half
// installed) on the host at root ("" for /): then apt, not moat install,
// owns its files. It asks dpkg-query, dpkg's interface to its database,
// rather than reading the database, whose layout is dpkg's own. No
// dpkg-query (not a Debian host) means no package.
func Packaged(ctx context.Context, root string) bool {
	return packaged(ctx, "dpkg-query", root)
}

func packaged(ctx context.Context, query, root string) bool {
	if _, err := exec.LookPath(query); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := []string{"-W", "-f=${Status}", "moat"}
	if root != "" && root != "/" {
		args = append([]string{"--root=" + root}, args...)
	}
	// Exit 1: dpkg has never heard of moat.
	out, err := exec.CommandContext(ctx, query, args...).Output()
	if err != nil {
		return false
	}
	return statusPackaged(string(out))
}

// statusPackaged reads dpkg's "want flag status": anything but
// not-installed and config-files (removed, its conffiles left) has the
// package's files on disk, or on their way.
func statusPackaged(s string) bool {
	f := strings.Fields(s)
	return len(f) == 3 && f[2] != "not-installed" && f[2] != "config-files"
}
