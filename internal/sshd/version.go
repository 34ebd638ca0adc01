package sshd

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Version is an OpenSSH release.
type Version struct {
	Major, Minor int
	Portable     string // portable release suffix, e.g. "p1"; "" when not shown
	Raw          string // the line it was read from, e.g. "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024"
}

// AtLeast reports whether v is release major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

func (v Version) String() string {
	if v.Major == 0 && v.Minor == 0 && v.Raw == "" {
		return "unknown"
	}
	return fmt.Sprintf("OpenSSH_%d.%d%s", v.Major, v.Minor, v.Portable)
}

var versionRE = regexp.MustCompile(`OpenSSH_(?:for_Windows_)?(\d{1,4})\.(\d{1,4})(p\d{1,4})?`)

// ParseVersion finds an OpenSSH version in s: sshd -V or ssh -V output,
// an sshd usage message (releases before 9.2 lack -V but print the version
// in their usage), or a server identification string from the wire
// ("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3").
func ParseVersion(s string) (Version, error) {
	for line := range strings.SplitSeq(s, "\n") {
		m := versionRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		maj, _ := strconv.Atoi(m[1])
		mnr, _ := strconv.Atoi(m[2])
		return Version{Major: maj, Minor: mnr, Portable: m[3], Raw: strings.TrimSpace(line)}, nil
	}
	return Version{}, fmt.Errorf("no OpenSSH version in %q", clip(strings.TrimSpace(s)))
}

// InstalledVersion is the OpenSSH version of the sshd found in PATH or
// /usr/sbin (see Runner.Version).
func InstalledVersion(ctx context.Context) (Version, error) {
	return Runner{}.Version(ctx)
}

// Version asks the server binary for its version. sshd -V (OpenSSH 9.2+)
// prints only "OpenSSH_9.2, OpenSSL ..." without the portable suffix or the
// distribution's patch level, which ssh -V does print; when the client
// reports the same major.minor (one source package on every distribution
// we target), its fuller line is used.
func (r Runner) Version(ctx context.Context) (Version, error) {
	bin, err := findSSHD(r.Binary)
	if err != nil {
		return Version{}, err
	}
	out, runErr := combinedOutput(ctx, bin, "-V")
	v, err := ParseVersion(out)
	if err != nil {
		if runErr != nil {
			return Version{}, fmt.Errorf("sshd -V: %w: %s (hint: is %s OpenSSH's sshd?)", runErr, clip(strings.TrimSpace(out)), bin)
		}
		return Version{}, fmt.Errorf("sshd -V: %w", err)
	}
	if v.Portable == "" {
		if ssh, err := findSSH(); err == nil {
			if out, _ := combinedOutput(ctx, ssh, "-V"); out != "" {
				if cv, err := ParseVersion(out); err == nil && cv.Major == v.Major && cv.Minor == v.Minor {
					return cv, nil
				}
			}
		}
	}
	return v, nil
}

// SupportedKex lists the key exchange algorithms the installed OpenSSH
// implements (ssh -Q kex), whether or not they are enabled.
func SupportedKex(ctx context.Context) ([]string, error) { return Query(ctx, "kex") }

// Query runs ssh -Q kind ("kex", "cipher", "mac", "key", "sig", ...) and
// returns the names it lists. The client and sshd come from one source
// package, so this is also what sshd accepts in its config: a drop-in
// naming anything else makes sshd refuse to start.
func Query(ctx context.Context, kind string) ([]string, error) {
	if kind == "" || strings.HasPrefix(kind, "-") || strings.ContainsAny(kind, " \t\n") {
		return nil, fmt.Errorf("ssh -Q: bad query kind %q", kind)
	}
	ssh, err := findSSH()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, ssh, "-Q", kind)
	stdout := &cappedBuffer{max: 1 << 20}
	stderr := &cappedBuffer{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ssh -Q %s: %w: %s", kind, err, trimStderr(stderr.Bytes()))
	}
	var names []string
	for f := range strings.FieldsSeq(stdout.String()) {
		names = append(names, f)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("ssh -Q %s printed nothing (hint: is %s OpenSSH's ssh?)", kind, ssh)
	}
	return names, nil
}

// combinedOutput runs a version query; both ssh and sshd print it on
// stderr, and old sshd (no -V) exits non-zero after its usage.
func combinedOutput(ctx context.Context, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	buf := &cappedBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = buf, buf
	cmd.WaitDelay = waitDelay
	err := cmd.Run()
	return buf.String(), err
}
