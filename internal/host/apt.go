package host

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// AptConfig returns apt's effective configuration from `apt-config dump`
// (live) or <root>/.fixture/apt-config.txt (fixture; missing means
// ErrUnavailable). See [ParseAptConfig] for the shape of the map.
func (h *Host) AptConfig(ctx context.Context) (map[string]string, error) {
	var out []byte
	if h.Live() {
		var err error
		if out, err = run(ctx, "apt-config", "dump"); err != nil {
			return nil, fmt.Errorf("apt config: %w", err)
		}
	} else {
		var err error
		if out, err = h.readFixture("apt-config.txt"); err != nil {
			return nil, fmt.Errorf("apt config: %w", err)
		}
	}
	return ParseAptConfig(bytes.NewReader(out))
}

// readFixture reads <root>/.fixture/name; a missing file is
// ErrUnavailable.
func (h *Host) readFixture(name string) ([]byte, error) {
	b, err := os.ReadFile(h.fixture(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w under a fixture root without .fixture/%s", ErrUnavailable, name)
	}
	return b, err
}

// ParseAptConfig parses `apt-config dump` output, lines of the form
// `Key::Sub "value";`. List items (`Key:: "item";`) are gathered under
// Key, joined by newlines, so
//
//	Unattended-Upgrade::Origins-Pattern:: "origin=Debian,…";
//
// lands in m["Unattended-Upgrade::Origins-Pattern"].
func ParseAptConfig(r io.Reader) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, ` "`)
		if !ok || !strings.HasSuffix(val, `";`) || key == "" {
			return nil, fmt.Errorf("parse apt-config dump line %d: want Key \"value\"; in %q", n, line)
		}
		val = strings.TrimSuffix(val, `";`)
		if base, isList := strings.CutSuffix(key, "::"); isList {
			if cur := m[base]; cur != "" {
				val = cur + "\n" + val
			}
			key = base
		}
		m[key] = val
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read apt-config dump: %w", err)
	}
	return m, nil
}

// Upgrades lists the packages apt would upgrade.
type Upgrades struct {
	Packages []string // every package `apt-get upgrade` would install or upgrade
	Security []string // those coming from a security archive
	// Method says how they were found: "apt lists" (the security indexes
	// against dpkg's versions; Packages then holds only the security ones)
	// or "apt-get -s" (apt's own simulation).
	Method string
}

// UpgradableSecurity finds pending security upgrades: from the security
// archives' indexes in /var/lib/apt/lists compared with dpkg's versions
// when they can be read (fast), else by apt's simulation,
// `apt-get -s -o Debug::NoLocking=1 upgrade`, which needs no lock and
// changes nothing but can take seconds (callers may skip it). Under a
// fixture it reads <root>/.fixture/apt-simulate.txt. It does not refresh
// the package lists: the answer is as fresh as the last apt update.
func (h *Host) UpgradableSecurity(ctx context.Context) (Upgrades, error) {
	if u, ok, err := h.pendingFromLists(); err != nil {
		return Upgrades{}, fmt.Errorf("pending upgrades: %w", err)
	} else if ok {
		return u, nil
	}
	var out []byte
	var err error
	if h.Live() {
		out, err = run(ctx, "apt-get", "-s", "-o", "Debug::NoLocking=1", "upgrade")
	} else {
		out, err = h.readFixture("apt-simulate.txt")
	}
	if err != nil {
		return Upgrades{}, fmt.Errorf("pending upgrades: %w", err)
	}
	u := ParseAptSimulate(out)
	u.Method = "apt-get -s"
	return u, nil
}

// ParseAptSimulate reads the Inst lines of `apt-get -s upgrade`:
//
//	Inst libssl3 [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])
//
// An upgrade is a security one when any of its origins (in the
// parentheses) names a security archive.
func ParseAptSimulate(b []byte) Upgrades {
	var u Upgrades
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		rest, ok := bytes.CutPrefix(line, []byte("Inst "))
		if !ok {
			continue
		}
		name, rest, _ := bytes.Cut(rest, []byte(" "))
		if len(name) == 0 {
			continue
		}
		u.Packages = append(u.Packages, string(name))
		if i := bytes.IndexByte(rest, '('); i >= 0 && bytes.Contains(bytes.ToLower(rest[i:]), []byte("security")) {
			u.Security = append(u.Security, string(name))
		}
	}
	return u
}

// AptStamps are the times apt's periodic jobs last did their work; zero
// when they never did.
type AptStamps struct {
	// UpdateSuccess is the mtime of /var/lib/apt/periodic/update-success-stamp:
	// the last apt update that succeeded.
	UpdateSuccess time.Time
	// UnattendedUpgrade is the mtime of
	// /var/lib/apt/periodic/unattended-upgrades-stamp: the last time the
	// periodic job ran unattended-upgrades.
	UnattendedUpgrade time.Time
	// UnattendedLog is the time of the last entry in
	// /var/log/unattended-upgrades/unattended-upgrades.log (local time),
	// or the log's mtime if no entry parses.
	UnattendedLog time.Time
}

// AptStamps reads the apt periodic stamps and unattended-upgrades' log.
func (h *Host) AptStamps() (AptStamps, error) {
	var st AptStamps
	var err error
	if st.UpdateSuccess, err = h.mtime("/var/lib/apt/periodic/update-success-stamp"); err != nil {
		return st, fmt.Errorf("apt stamps: %w", err)
	}
	if st.UnattendedUpgrade, err = h.mtime("/var/lib/apt/periodic/unattended-upgrades-stamp"); err != nil {
		return st, fmt.Errorf("apt stamps: %w", err)
	}
	if st.UnattendedLog, err = h.lastLogTime("/var/log/unattended-upgrades/unattended-upgrades.log"); err != nil {
		return st, fmt.Errorf("apt stamps: %w", err)
	}
	return st, nil
}

// mtime returns a file's modification time, zero if it does not exist.
func (h *Host) mtime(p string) (time.Time, error) {
	fi, err := os.Stat(h.Path(p))
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("stat %s: %w", p, hint(err))
	}
	return fi.ModTime(), nil
}

// lastLogTime finds the timestamp of the last "2006-01-02 15:04:05,000"
// line in the tail of a log.
func (h *Host) lastLogTime(p string) (time.Time, error) {
	f, err := os.Open(h.Path(p))
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read %s: %w", p, hint(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return time.Time{}, fmt.Errorf("read %s: %w", p, err)
	}
	const tail = 64 << 10
	buf := make([]byte, min(fi.Size(), tail))
	n, err := f.ReadAt(buf, fi.Size()-int64(len(buf)))
	if err != nil && !errors.Is(err, io.EOF) {
		return time.Time{}, fmt.Errorf("read %s: %w", p, hint(err))
	}
	lines := bytes.Split(buf[:n], []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		const layout = "2006-01-02 15:04:05"
		if l := lines[i]; len(l) >= len(layout) {
			if t, err := time.ParseInLocation(layout, string(l[:len(layout)]), time.Local); err == nil {
				return t, nil
			}
		}
	}
	return fi.ModTime(), nil
}
