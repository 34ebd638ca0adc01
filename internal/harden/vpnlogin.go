package harden

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/vpn"
)

// VPNLoginsFile records SSH logins moat saw arrive over the VPN (its own
// commands run in such sessions), the most robust of the evidence
// VPNLoginSeen reads: it survives log rotation and needs no log at all.
const VPNLoginsFile = "/var/lib/moat/vpn-logins.json"

// authLogs are where sshd's "Accepted ..." lines land on Debian, Ubuntu
// and RHEL-like systems without journald.
var authLogs = []string{"/var/log/auth.log", "/var/log/auth.log.1", "/var/log/secure", "/var/log/secure.1"}

// maxLogTail bounds how much of each log is read.
const maxLogTail = 8 << 20

// VPNLogin is one recorded login over the VPN.
type VPNLogin struct {
	Time    time.Time `json:"time"`
	Session string    `json:"session"`
}

// overVPN reports whether an SSH session came over the VPN: to one of the
// host's addresses on a VPN interface, and from a VPN range when the VPN
// has any. Either alone is not proof, as the firewall's pinning says
// (vpn.Config.Pins): a container or a host on a second NIC reaches the wg0
// address too, and a VPN-range source can be anyone's on another link.
func overVPN(sess change.Session, c vpn.Config, vpnAddrs []netip.Addr) bool {
	if !slices.Contains(vpnAddrs, sess.Server.Addr().Unmap()) {
		return false
	}
	return len(c.Prefixes()) == 0 || c.Contains(sess.Client.Addr())
}

// VPNLoginSeen looks for proof that a login over the VPN works, and says
// where it found it ("" when nowhere): the operator's current session,
// moat's record of earlier sessions, or sshd's "Accepted" lines from a VPN
// address. Where journald runs, sshd's lines are read from the journal
// only, selected by the fields journald sets (a process named sshd,
// sshd-session or sshd-auth, run by root): an auth.log line proves
// nothing there, since any local user can write one through /dev/log
// (`logger -t sshd 'Accepted publickey for x from VPN-ADDR …'`), nor can a
// journal entry tagged sshd by its sender. Without journald the auth logs
// are all there is; the evidence then says it is a file.
func VPNLoginSeen(ctx context.Context, root, session string, c vpn.Config, vpnAddrs []netip.Addr) string {
	if s, ok := change.ParseSession(session); ok && overVPN(s, c, vpnAddrs) {
		return "this session came over the VPN (" + session + ")"
	}
	if b, err := os.ReadFile(change.HostPath(root, VPNLoginsFile)); err == nil {
		var logins []VPNLogin
		if json.Unmarshal(b, &logins) == nil && len(logins) > 0 {
			l := logins[len(logins)-1]
			return fmt.Sprintf("moat ran in a session over the VPN at %s (%s)", l.Time.Format(time.RFC3339), l.Session)
		}
	}
	h := host.New(root)
	if !h.JournaldListening() {
		for _, p := range authLogs {
			if line := acceptedFromVPN(tail(change.HostPath(root, p)), c); line != "" {
				return p + " (a log file: any local user could have written this line): " + line
			}
		}
		return ""
	}
	if !h.Live() {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	args := append([]string{"--quiet", "--no-pager", "--output=cat", "--since=-90d", "--grep=^Accepted "}, host.SSHDJournalMatches...)
	out, _ := exec.CommandContext(ctx, "journalctl", args...).Output()
	if line := acceptedFromVPN(out, c); line != "" {
		return "journal: " + line
	}
	return ""
}

// RecordVPNLogin remembers a session that came over the VPN; sessions
// from elsewhere are ignored. Only the last few are kept.
func RecordVPNLogin(root, session string, c vpn.Config, vpnAddrs []netip.Addr) error {
	s, ok := change.ParseSession(session)
	if !ok || !overVPN(s, c, vpnAddrs) {
		return nil
	}
	var logins []VPNLogin
	if b, err := os.ReadFile(change.HostPath(root, VPNLoginsFile)); err == nil {
		json.Unmarshal(b, &logins)
	}
	logins = append(logins, VPNLogin{Time: time.Now().UTC(), Session: session})
	if len(logins) > 10 {
		logins = logins[len(logins)-10:]
	}
	b, err := json.MarshalIndent(logins, "", "  ")
	if err != nil {
		return err
	}
	return change.WriteFile(root, change.File{Path: VPNLoginsFile, Data: append(b, '\n'), Mode: 0o600})
}

func tail(p string) []byte {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxLogTail {
		f.Seek(-maxLogTail, io.SeekEnd)
	}
	b, _ := io.ReadAll(io.LimitReader(f, maxLogTail))
	return b
}

// acceptedFromVPN returns the last sshd "Accepted <method> for <user>
// from <addr> port <n> ssh2" message whose address is in the VPN ranges.
// The message must start right after sshd's syslog prefix (or the line,
// for the journal's bare messages): attackers choose the user names that
// "Invalid user ..." lines repeat, and one could spell a fake Accepted
// line inside one.
func acceptedFromVPN(log []byte, c vpn.Config) string {
	var found string
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		msg := sc.Text()
		if i := strings.Index(msg, "]: "); i >= 0 && strings.Contains(msg[:i], "sshd") {
			msg = msg[i+3:]
		}
		if !strings.HasPrefix(msg, "Accepted ") {
			continue
		}
		f := strings.Fields(msg)
		if len(f) < 8 || f[2] != "for" || f[4] != "from" || f[6] != "port" {
			continue
		}
		if a, err := netip.ParseAddr(f[5]); err == nil && c.Contains(a) {
			found = strings.TrimSpace(msg)
		}
	}
	return found
}
