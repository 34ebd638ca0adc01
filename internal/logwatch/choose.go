package logwatch

import (
	"os"
	"os/exec"

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

// sshdMatches select sshd's entries in the journal: its unit under either
// name, and its syslog identifiers, including OpenSSH 9.8+'s per-session
// process sshd-session.
var sshdMatches = []string{
	"_SYSTEMD_UNIT=ssh.service", "+", "_SYSTEMD_UNIT=sshd.service", "+",
	"SYSLOG_IDENTIFIER=sshd", "+", "SYSLOG_IDENTIFIER=sshd-session",
}

// JournalAvailable reports whether journald runs on h (nil: this machine):
// its socket exists and journalctl is installed.
func JournalAvailable(h *host.Host) bool {
	if h == nil {
		h = host.New("")
	}
	if _, err := os.Stat(h.Path(journalSocket)); err != nil {
		return false
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
// journal is the default where journald runs and /var/log/auth.log does
// not exist (Debian 12 and Ubuntu without rsyslog); where auth.log exists
// it is followed, since reading both would count every failure twice.
// Without journald, /var/log/secure (RHEL family) is followed if it
// exists, else auth.log is awaited.
func ChooseSSHD(h *host.Host) Choice {
	if h == nil {
		h = host.New("")
	}
	exists := func(p string) bool { _, err := os.Stat(h.Path(p)); return err == nil }
	const authLog, secure = "/var/log/auth.log", "/var/log/secure"
	switch {
	case JournalAvailable(h) && !exists(authLog):
		return Choice{Kind: KindJournal, Matches: append([]string(nil), sshdMatches...), Reason: "journald runs and " + authLog + " does not exist"}
	case exists(authLog):
		return Choice{Kind: KindFile, Paths: []string{authLog}, Reason: authLog + " exists"}
	case exists(secure):
		return Choice{Kind: KindFile, Paths: []string{secure}, Reason: secure + " exists and journald does not run"}
	}
	return Choice{Kind: KindFile, Paths: []string{authLog},
		Reason: "neither journald nor a log file was found; waiting for " + authLog + " (install rsyslog, or run journald)"}
}
