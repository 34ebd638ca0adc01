package host

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// SessionKey is the key sshd accepted for a connection, as its log says
// with LogLevel VERBOSE (or INFO): "Accepted publickey for USER from ADDR
// port PORT ssh2: ED25519 SHA256:…".
type SessionKey struct {
	User        string
	Type        string // "ED25519", "RSA", …
	Fingerprint string // "SHA256:…"
}

// AcceptedKey finds the last line of sshd's log text that accepted a key
// for the connection from client. Lines may carry syslog's or the
// journal's prefix; anything else in the text is skipped.
func AcceptedKey(log []byte, client netip.AddrPort) (SessionKey, bool) {
	want := " from " + client.Addr().String() + " port " + strconv.Itoa(int(client.Port())) + " "
	for len(log) > 0 {
		i := bytes.LastIndexByte(log[:len(log)-1], '\n')
		line := string(log[i+1:])
		log = log[:i+1]
		if i < 0 {
			log = nil
		}
		k, ok := parseAccepted(strings.TrimSpace(line), want)
		if ok {
			return k, true
		}
	}
	return SessionKey{}, false
}

func parseAccepted(line, from string) (SessionKey, bool) {
	_, rest, ok := strings.Cut(line, "Accepted publickey for ")
	if !ok {
		return SessionKey{}, false
	}
	user, rest, ok := strings.Cut(rest, from)
	if !ok || user == "" || strings.ContainsAny(user, " \t") {
		return SessionKey{}, false
	}
	_, rest, ok = strings.Cut(rest, ": ")
	if !ok {
		return SessionKey{}, false
	}
	f := strings.Fields(rest)
	if len(f) < 2 || !strings.HasPrefix(f[1], "SHA256:") {
		return SessionKey{}, false
	}
	return SessionKey{User: user, Type: f[0], Fingerprint: f[1]}, true
}

// sshdLogs are where Debian and Ubuntu's sshd log goes without journald.
var sshdLogs = []string{"/var/log/auth.log", "/var/log/secure"}

// maxLogTail bounds how much of a log file is read (its end).
const maxLogTail = 8 << 20

// SessionKeyOf looks up the key sshd accepted for conn: in the auth log
// files, then, live, in the journal. False when sshd did not log it (a
// password login, or the log rotated away).
func (h *Host) SessionKeyOf(ctx context.Context, conn Conn) (SessionKey, bool) {
	if !conn.Valid() {
		return SessionKey{}, false
	}
	for _, p := range sshdLogs {
		if b, err := h.readTail(p, maxLogTail); err == nil {
			if k, ok := AcceptedKey(b, conn.Client); ok {
				return k, true
			}
		}
	}
	if !h.Live() {
		return SessionKey{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := run(ctx, "journalctl", "--quiet", "--no-pager", "-o", "cat", "-n", "20000", "_COMM=sshd", "_COMM=sshd-session")
	if err != nil {
		return SessionKey{}, false
	}
	return AcceptedKey(out, conn.Client)
}

// readTail reads the last max bytes of the host file p.
func (h *Host) readTail(p string, max int64) ([]byte, error) {
	f, err := os.Open(h.Path(p))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	b := make([]byte, st.Size()-off)
	n, err := f.ReadAt(b, off)
	if err != nil && n == 0 && len(b) > 0 {
		return nil, err
	}
	return b[:n], nil
}
