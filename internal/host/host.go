package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrUnavailable reports that a fact cannot be determined here: a command
// is not installed, or Root points at a fixture tree that lacks the
// fallback file for something that does not live in files.
var ErrUnavailable = errors.New("not available")

// Host reads facts from the machine rooted at Root.
type Host struct {
	// Root prefixes every path read. "" or "/" is the live system;
	// anything else is a fixture tree laid out like a root filesystem.
	Root string
}

// New returns a Host reading below root ("" or "/" for the live system).
func New(root string) *Host { return &Host{Root: root} }

// Live reports whether h reads the running system rather than a fixture
// tree. Only a live Host runs commands, dials sockets or makes syscalls
// about the machine.
func (h *Host) Live() bool { return h.Root == "" || h.Root == "/" }

// Path maps an absolute path on the host to the path to read. Under a
// fixture root, p is cleaned first so that ".." cannot climb above Root.
func (h *Host) Path(p string) string {
	if h.Live() {
		return p
	}
	return filepath.Join(h.Root, filepath.Clean("/"+p))
}

// ReadFile reads the host file p. A permission failure satisfies
// errors.Is(err, fs.ErrPermission); a missing file, fs.ErrNotExist.
func (h *Host) ReadFile(p string) ([]byte, error) {
	b, err := os.ReadFile(h.Path(p))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, hint(err))
	}
	return b, nil
}

// fixture is the path of a fixture file standing in for a command or an
// API under a non-live Root.
func (h *Host) fixture(name string) string {
	return filepath.Join(h.Root, ".fixture", name)
}

// hint adds "run as root" to permission errors while keeping them
// matchable with errors.Is.
func hint(err error) error {
	if errors.Is(err, os.ErrPermission) && !strings.Contains(err.Error(), "run as root") {
		return fmt.Errorf("%w (run as root)", err)
	}
	return err
}

// maxCommandOutput bounds what is kept of a command's output.
const maxCommandOutput = 16 << 20

// run runs a command from a fixed argument list with a C locale and
// returns its standard output. A missing binary is ErrUnavailable.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (install it or check PATH)", name, ErrUnavailable)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = maxCommandOutput, 4096
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		if msg != "" {
			return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
		}
		return stdout.Bytes(), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return stdout.Bytes(), nil
}

// limitedBuffer keeps the first max bytes written and drops the rest, so a
// runaway command cannot exhaust memory.
type limitedBuffer struct {
	buf []byte
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte  { return b.buf }
func (b *limitedBuffer) String() string { return string(b.buf) }
