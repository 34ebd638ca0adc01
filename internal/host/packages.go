package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Package is a dpkg package entry.
type Package struct {
	Name      string
	Version   string
	Status    string // the Status field, e.g. "install ok installed"
	Installed bool   // the package's files are on disk and configured
}

// Packages lists the packages dpkg knows, keyed by name. On the live
// host it asks dpkg-query, dpkg's interface to its database (the
// database's layout is dpkg's own: lintian's uses-dpkg-database-directly).
// A fixture root holds its list as a status file in that layout, test
// data read as such. On a host without dpkg the error matches
// fs.ErrNotExist.
func (h *Host) Packages() (map[string]Package, error) {
	if h.Live() {
		return dpkgQuery(context.Background())
	}
	b, err := h.ReadFile(fixtureStatus)
	if err != nil {
		return nil, fmt.Errorf("packages: %w", err)
	}
	return ParseDpkgStatus(b), nil
}

// fixtureStatus is the status file under a fixture root (relative: the
// fixture is test data, not a dpkg database moat reads).
const fixtureStatus = "var/lib/dpkg/status"

// dpkgQueryFormat makes dpkg-query print the fields ParseDpkgStatus reads.
const dpkgQueryFormat = "Package: ${Package}\nStatus: ${Status}\nVersion: ${Version}\n\n"

func dpkgQuery(ctx context.Context) (map[string]Package, error) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		return nil, fmt.Errorf("packages: no dpkg-query (not a Debian host?): %w", fs.ErrNotExist)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "dpkg-query", "-W", "-f="+dpkgQueryFormat)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("packages: dpkg-query: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return ParseDpkgStatus(out), nil
}

// ParseDpkgStatus parses a dpkg status file, reading only the Package,
// Status and Version fields. When a name occurs more than once (one entry
// per architecture), an installed entry wins over one that is not.
func ParseDpkgStatus(b []byte) map[string]Package {
	out := make(map[string]Package, bytes.Count(b, []byte("\nPackage: "))+1)
	var p Package
	flush := func() {
		if p.Name == "" {
			return
		}
		p.Installed = statusInstalled(p.Status)
		if old, ok := out[p.Name]; !ok || !old.Installed {
			out[p.Name] = p
		}
		p = Package{}
	}
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			flush()
			continue
		}
		switch line[0] {
		case 'P':
			if v, ok := bytes.CutPrefix(line, []byte("Package:")); ok {
				if p.Name != "" {
					flush() // a paragraph without a blank line before it
				}
				p.Name = string(bytes.TrimSpace(v))
			}
		case 'S':
			if v, ok := bytes.CutPrefix(line, []byte("Status:")); ok {
				p.Status = string(bytes.TrimSpace(v))
			}
		case 'V':
			if v, ok := bytes.CutPrefix(line, []byte("Version:")); ok {
				p.Version = string(bytes.TrimSpace(v))
			}
		}
	}
	flush()
	return out
}

// statusInstalled reads the third word of "want flag status".
func statusInstalled(s string) bool {
	f := strings.Fields(s)
	return len(f) == 3 && f[2] == "installed"
}

// RebootState says whether the system asked for a reboot after upgrades.
type RebootState struct {
	Required bool
	Packages []string // from reboot-required.pkgs, when present
}

// RebootRequired reports whether <root>/var/run/reboot-required (or
// /run/reboot-required) exists, and which packages asked for it.
func (h *Host) RebootRequired() (RebootState, error) {
	for _, dir := range []string{"/var/run", "/run"} {
		_, err := os.Stat(h.Path(dir + "/reboot-required"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return RebootState{}, fmt.Errorf("reboot required: %w", hint(err))
		}
		st := RebootState{Required: true}
		if b, err := h.ReadFile(dir + "/reboot-required.pkgs"); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if l = strings.TrimSpace(l); l != "" && !slices.Contains(st.Packages, l) {
					st.Packages = append(st.Packages, l)
				}
			}
		}
		return st, nil
	}
	return RebootState{}, nil
}

// RunningKernel returns the release of the running kernel (uname -r).
// Under a fixture it reads <root>/proc/sys/kernel/osrelease.
func (h *Host) RunningKernel() (string, error) {
	if h.Live() {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return "", fmt.Errorf("uname: %w", err)
		}
		return unix.ByteSliceToString(u.Release[:]), nil
	}
	b, err := h.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "", fmt.Errorf("running kernel: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// KernelState compares the running kernel with the installed ones.
type KernelState struct {
	Running string // release, e.g. 6.1.0-18-amd64
	Newest  string // newest release among installed linux-image-<release> packages
	// NewerInstalled is set when Newest sorts after Running: a kernel
	// update waits for a reboot.
	NewerInstalled bool
}

// NewerKernelInstalled compares the running kernel's release with the
// installed linux-image-<release> packages (meta packages such as
// linux-image-amd64 are ignored). An ABI-compatible update that keeps the
// release name is not detected; reboot-required usually covers it.
func (h *Host) NewerKernelInstalled() (KernelState, error) {
	running, err := h.RunningKernel()
	if err != nil {
		return KernelState{}, err
	}
	pkgs, err := h.Packages()
	if err != nil {
		return KernelState{}, fmt.Errorf("installed kernels: %w", err)
	}
	st := KernelState{Running: running}
	for name, p := range pkgs {
		rel, ok := kernelRelease(name)
		if !ok || !p.Installed {
			continue
		}
		if st.Newest == "" || compareVersions(rel, st.Newest) > 0 {
			st.Newest = rel
		}
	}
	st.NewerInstalled = st.Newest != "" && compareVersions(st.Newest, running) > 0
	return st, nil
}

// kernelRelease extracts the release from an image package name:
// linux-image-6.1.0-18-amd64, linux-image-unsigned-5.15.0-91-generic.
func kernelRelease(pkg string) (string, bool) {
	rel, ok := strings.CutPrefix(pkg, "linux-image-")
	if !ok {
		return "", false
	}
	rel = strings.TrimPrefix(rel, "unsigned-")
	if rel == "" || rel[0] < '0' || rel[0] > '9' || strings.HasSuffix(rel, "-dbg") {
		return "", false
	}
	return rel, true
}

// compareVersions compares release strings segment by segment, numbers
// numerically and everything else bytewise: 6.1.0-21 > 6.1.0-9.
func compareVersions(a, b string) int {
	for a != "" || b != "" {
		if a == "" {
			return -1
		}
		if b == "" {
			return 1
		}
		an, ad := isDigit(a[0]), isDigit(b[0])
		if an != ad {
			if an {
				return 1
			}
			return -1
		}
		i := segment(a, an)
		j := segment(b, ad)
		sa, sb := a[:i], b[:j]
		if an {
			sa, sb = strings.TrimLeft(sa, "0"), strings.TrimLeft(sb, "0")
			if len(sa) != len(sb) {
				if len(sa) < len(sb) {
					return -1
				}
				return 1
			}
		}
		if c := strings.Compare(sa, sb); c != 0 {
			return c
		}
		a, b = a[i:], b[j:]
	}
	return 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// segment returns the length of the leading run of digits (num) or
// non-digits.
func segment(s string, num bool) int {
	i := 0
	for i < len(s) && isDigit(s[i]) == num {
		i++
	}
	return i
}
