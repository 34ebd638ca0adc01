package host

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// journalSocket exists while journald runs.
const journalSocket = "/run/systemd/journal/socket"

// SSHDJournalMatches select sshd's own journal entries by trusted fields
// only (journald sets the fields whose names start with '_'; the sender
// sets the others, so `logger -t sshd` can forge SYSLOG_IDENTIFIER=sshd):
// a process named sshd, or OpenSSH 9.8+'s sshd-session, or OpenSSH 10's
// sshd-auth, running as root. journalctl ORs the terms of one field and
// ANDs the fields. The guard's sshd source and the VPN-login proof both
// use them.
var SSHDJournalMatches = []string{"_COMM=sshd", "_COMM=sshd-session", "_COMM=sshd-auth", "_UID=0"}

// JournaldListening reports whether journald runs on h: its socket exists.
// Then a syslog file proves nothing about who wrote a line (journald
// forwards what any local user sends), whether or not the journal itself
// can be read.
func (h *Host) JournaldListening() bool {
	_, err := os.Stat(h.Path(journalSocket))
	return err == nil
}

// JournalReadable reports whether journald runs on h and keeps entries to
// read: its socket exists, journalctl is installed, and Storage= is not
// none.
func (h *Host) JournalReadable() bool {
	if !h.JournaldListening() {
		return false
	}
	if h.JournalStorage() == "none" {
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

// JournalStorage is journald's Storage= setting on h, lowercased ("" when
// unset: auto): journald.conf, then its drop-ins in the order journald
// reads them (by file name across the directories, /etc's copy of a name
// winning), the last setting winning.
func (h *Host) JournalStorage() string {
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
