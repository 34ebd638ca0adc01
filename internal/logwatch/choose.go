package logwatch

import (
	"os"

	"github.com/moat-sh/moat/internal/host"
)

// Kind names a kind of source.
type Kind string

const (
	KindFile    Kind = "file"
	KindJournal Kind = "journal"
)

// sshdMatches select sshd's entries in the journal by trusted fields only
// (host.SSHDJournalMatches); the filter checks the same again
// (filter.Entry.Root).
var sshdMatches = host.SSHDJournalMatches

// JournalAvailable reports whether journald runs on h (nil: this machine)
// and keeps entries to read.
func JournalAvailable(h *host.Host) bool {
	if h == nil {
		h = host.New("")
	}
	return h.JournalReadable()
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
