package logwatch

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moat-sh/moat/internal/host"
)

// Kind names a kind of source.
type Kind string

const (
	KindFile    Kind = "file"
	KindJournal Kind = "journal"
)

// journalSocket exists while journald runs.
const journalSocket = "/run/systemd/journal/socket"

// sshdMatches select sshd's entries in the journal by trusted fields only
// (journald sets the fields whose names start with '_'; the sender sets
// the others, so `logger -t sshd` can forge SYSLOG_IDENTIFIER=sshd): a
// process named sshd, or OpenSSH 9.8+'s sshd-session, or OpenSSH 10's
// sshd-auth, running as root. journalctl ORs the terms of one field and
// ANDs the fields. The filter checks the same again (filter.Entry.Root).
var sshdMatches = []string{"_COMM=sshd", "_COMM=sshd-session", "_COMM=sshd-auth", "_UID=0"}

// JournalAvailable reports whether journald runs on h (nil: this machine):
// its socket exists and journalctl is installed.
func JournalAvailable(h *host.Host) bool {
	if h == nil {
		h = host.New("")
	}
	if _, err := os.Stat(h.Path(journalSocket)); err != nil {
		return false
	}
	if journalStorage(h) == "none" {
		return false // journald runs but keeps nothing: nothing to read
	}
	if h.Live() {
		_, err := exec.LookPath("journalctl")
		return err == nil
	}
	for _, p := range []string{"/usr/bin/journalctl", "/bin/journalctl"} {
		if _, err := os.Stat(h.Path(p)); err == nil {
			return true
		}
	}
	return false
}

// journalStorage is journald's Storage= setting on h, lowercased ("" when
// unset: auto): journald.conf, then its drop-ins in the order journald
// reads them (by file name across the directories, /etc's copy of a name
// winning), the last setting winning.
func journalStorage(h *host.Host) string {
	files := []string{"/etc/systemd/journald.conf"}
	dropins := map[string]string{}
	for _, dir := range []string{"/usr/lib/systemd/journald.conf.d", "/usr/local/lib/systemd/journald.conf.d",
		"/run/systemd/journald.conf.d", "/etc/systemd/journald.conf.d"} {
		ents, _ := os.ReadDir(h.Path(dir))
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".conf") {
				dropins[e.Name()] = filepath.Join(dir, e.Name())
			}
		}
	}
	names := make([]string, 0, len(dropins))
	for n := range dropins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		files = append(files, dropins[n])
	}
	storage := ""
	for _, f := range files {
		b, err := os.ReadFile(h.Path(f))
		if err != nil {
			continue
		}
		section := ""
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case line == "" || line[0] == '#' || line[0] == ';':
			case line[0] == '[':
				section = line
			case section == "[Journal]":
				if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "Storage" {
					storage = strings.ToLower(strings.TrimSpace(v))
				}
			}
		}
	}
	return storage
}

// Choice is where a service's log lines are read from.
type Choice struct {
	Kind Kind
	// Paths are the files to follow (KindFile).
	Paths []string
	// Matches select the journal entries (KindJournal).
	Matches []string
	// Reason says why, for the operator.
	Reason string
}

// ChooseSSHD picks sshd's log source on h (nil: this machine). The
// journal is preferred wherever journald runs: its entries carry who sent
// them (_COMM, _UID), which a log file cannot prove — any local user can
// write an sshd-tagged line into /var/log/auth.log through /dev/log
// (`logger -t sshd`), and a filter reading the file cannot tell it from
// sshd's own. sshd's lines reach both journald and rsyslog's auth.log on
// such hosts, so reading the journal alone also counts each failure once.
// Without journald, /var/log/auth.log (Debian, Ubuntu) or /var/log/secure
// (RHEL family) is followed if it exists, else auth.log is awaited; the
// reason says that such a source trusts every local user.
func ChooseSSHD(h *host.Host) Choice {
	if h == nil {
		h = host.New("")
	}
	exists := func(p string) bool { _, err := os.Stat(h.Path(p)); return err == nil }
	const authLog, secure = "/var/log/auth.log", "/var/log/secure"
	const untrusted = " (a log file cannot prove who wrote a line: local users can forge sshd's; run journald to close that)"
	switch {
	case JournalAvailable(h):
		why := "journald runs: its entries name their sender"
		if exists(authLog) {
			why += " (" + authLog + " holds the same lines and is not read)"
		}
		return Choice{Kind: KindJournal, Matches: append([]string(nil), sshdMatches...), Reason: why}
	case exists(authLog):
		return Choice{Kind: KindFile, Paths: []string{authLog}, Reason: authLog + " exists and journald does not run" + untrusted}
	case exists(secure):
		return Choice{Kind: KindFile, Paths: []string{secure}, Reason: secure + " exists and journald does not run" + untrusted}
	}
	return Choice{Kind: KindFile, Paths: []string{authLog},
		Reason: "neither journald nor a log file was found; waiting for " + authLog + " (install rsyslog, or run journald)" + untrusted}
}
