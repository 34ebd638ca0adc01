// Package install places moat on a host without a package manager: the
// binary, the systemd unit, its directories, the shell completions and
// the man pages (moat install), and takes them away again (moat
// uninstall), keeping /etc/moat and the state unless asked to purge.
// Every file is written atomically and only when its content changes, so
// running it twice changes nothing the second time.
package install

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moat-sh/moat/internal/change"
)

// Directories moat owns, with their modes: the config and the state hold
// secrets (tokens, the ban history), the logs the gateway's access log.
var Dirs = []Dir{
	{Path: "/etc/moat", Mode: 0o700},
	{Path: "/var/lib/moat", Mode: 0o700},
	{Path: "/var/log/moat", Mode: 0o750},
}

// Dir is a directory moat owns.
type Dir struct {
	Path string
	Mode fs.FileMode
}

// Units moat install puts in place (moat-firewall.service is written by
// `moat apply firewall` with the table it loads).
const (
	UnitDir     = "/etc/systemd/system"
	ServiceName = "moat.service"
	// VPNServiceName brings up vpn.wireguard's interface at boot.
	VPNServiceName = "moat-vpn.service"
	// ConfigPath is the config the starter is written to when absent.
	ConfigPath = "/etc/moat/moat.yaml"
)

// Layout is where an install puts each file, for a prefix.
type Layout struct {
	Prefix string // /usr/local
}

// Binary is the installed moat.
func (l Layout) Binary() string { return filepath.Join(l.Prefix, "bin/moat") }

// Completion is where shell's script goes.
func (l Layout) Completion(shell string) string {
	switch shell {
	case "bash":
		return filepath.Join(l.Prefix, "share/bash-completion/completions/moat")
	case "zsh":
		return filepath.Join(l.Prefix, "share/zsh/site-functions/_moat")
	case "fish":
		return filepath.Join(l.Prefix, "share/fish/vendor_completions.d/moat.fish")
	}
	return ""
}

// Man is where a man page (moat.1, moat.yaml.5) goes.
func (l Layout) Man(page string) string {
	return filepath.Join(l.Prefix, "share/man", "man"+page[len(page)-1:], page)
}

// Files is what an install writes, by path on the target host.
type Files struct {
	Binary      []byte            // the moat executable
	Service     string            // moat.service naming the installed binary
	VPNService  string            // moat-vpn.service naming the installed binary
	Completions map[string][]byte // shell → script
	Man         map[string][]byte // page name → roff
	Config      func() ([]byte, error)
}

// Step is one thing an install or uninstall did (or found done).
type Step struct {
	Path, Action string // "wrote", "unchanged", "created", "removed", "kept"
}

func (s Step) String() string { return fmt.Sprintf("%-9s %s", s.Action, s.Path) }

// Install writes f under root (/ when empty) for layout l.
func Install(root string, l Layout, f Files) ([]Step, error) {
	var steps []Step
	for _, d := range Dirs {
		st, err := ensureDir(root, d)
		if err != nil {
			return steps, err
		}
		steps = append(steps, st)
	}
	write := func(path string, data []byte, mode fs.FileMode) error {
		st, err := writeIfChanged(root, path, data, mode)
		if err == nil {
			steps = append(steps, st)
		}
		return err
	}
	if err := write(l.Binary(), f.Binary, 0o755); err != nil {
		return steps, err
	}
	if err := write(filepath.Join(UnitDir, ServiceName), []byte(f.Service), 0o644); err != nil {
		return steps, err
	}
	if f.VPNService != "" {
		if err := write(filepath.Join(UnitDir, VPNServiceName), []byte(f.VPNService), 0o644); err != nil {
			return steps, err
		}
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if s, ok := f.Completions[sh]; ok {
			if err := write(l.Completion(sh), s, 0o644); err != nil {
				return steps, err
			}
		}
	}
	for _, page := range []string{"moat.1", "moat.yaml.5"} {
		if p, ok := f.Man[page]; ok {
			if err := write(l.Man(page), p, 0o644); err != nil {
				return steps, err
			}
		}
	}
	// The config is the operator's: written once, from the starter,
	// never overwritten.
	cfg := change.HostPath(root, ConfigPath)
	if _, err := os.Lstat(cfg); err == nil {
		steps = append(steps, Step{ConfigPath, "kept"})
	} else if f.Config != nil {
		data, err := f.Config()
		if err != nil {
			return steps, fmt.Errorf("starter config: %w (write one with: moat init -o %s)", err, ConfigPath)
		}
		if err := change.WriteAtomic(cfg, data, 0o600); err != nil {
			return steps, err
		}
		steps = append(steps, Step{ConfigPath, "wrote"})
	}
	return steps, nil
}

// Uninstall removes what Install wrote under root for layout l, and
// with purge the config and the state too. Units are named by the
// caller (the service, moat-firewall's unit and its enablement links, the
// change guard), since `moat apply` writes some of them.
func Uninstall(root string, l Layout, units []string, purge bool) ([]Step, error) {
	var steps []Step
	var errs []error
	remove := func(path string) {
		err := os.Remove(change.HostPath(root, path))
		switch {
		case err == nil:
			steps = append(steps, Step{path, "removed"})
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, err)
		}
	}
	for _, u := range units {
		remove(u)
	}
	remove(l.Binary())
	for _, sh := range []string{"bash", "zsh", "fish"} {
		remove(l.Completion(sh))
	}
	for _, page := range []string{"moat.1", "moat.yaml.5"} {
		remove(l.Man(page))
	}
	for _, d := range Dirs {
		p := change.HostPath(root, d.Path)
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if !purge {
			steps = append(steps, Step{d.Path, "kept"})
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
			continue
		}
		steps = append(steps, Step{d.Path, "removed"})
	}
	return steps, errors.Join(errs...)
}

// ensureDir creates d under root, or sets its mode when it exists with
// a wider one.
func ensureDir(root string, d Dir) (Step, error) {
	p := change.HostPath(root, d.Path)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		// Parents (/var/lib in a fresh root) get the usual 0755.
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return Step{}, fmt.Errorf("create %s: %w", d.Path, err)
		}
		if err := os.Mkdir(p, d.Mode); err != nil {
			return Step{}, fmt.Errorf("create %s: %w", d.Path, err)
		}
		// MkdirAll's mode passes the umask.
		return Step{d.Path, "created"}, os.Chmod(p, d.Mode)
	}
	if err != nil {
		return Step{}, err
	}
	if !fi.IsDir() {
		return Step{}, fmt.Errorf("%s exists and is not a directory (move it aside and run moat install again)", d.Path)
	}
	if fi.Mode().Perm()&^d.Mode != 0 {
		if err := os.Chmod(p, d.Mode); err != nil {
			return Step{}, err
		}
		return Step{d.Path, fmt.Sprintf("chmod %o", d.Mode)}, nil
	}
	return Step{d.Path, "unchanged"}, nil
}

// writeIfChanged writes data to path under root atomically unless it is
// there already with that content and mode.
func writeIfChanged(root, path string, data []byte, mode fs.FileMode) (Step, error) {
	p := change.HostPath(root, path)
	if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == mode {
		if cur, err := os.ReadFile(p); err == nil && bytes.Equal(cur, data) {
			return Step{path, "unchanged"}, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return Step{}, fmt.Errorf("install %s: %w", path, err)
	}
	if err := change.WriteAtomic(p, data, mode); err != nil {
		return Step{}, fmt.Errorf("install %s: %w", path, err)
	}
	return Step{path, "wrote"}, nil
}

// ServiceFor returns the unit text with the binary path the units name
// (/usr/bin/moat) replaced by bin.
func ServiceFor(unit, from, bin string) string {
	return strings.ReplaceAll(unit, from, bin)
}
