package change

import (
	"fmt"
	"testing"

	"github.com/moat-sh/moat/internal/host"
)

// FuzzParseSession: SSH_CONNECTION comes from the environment; whatever it
// holds, a parsed session prints and parses back to itself, and a session
// whose sshd started before the change never confirms it.
func FuzzParseSession(f *testing.F) {
	f.Add("203.0.113.9 40000 203.0.113.1 22")
	f.Add("::ffff:203.0.113.9 40000 2001:db8::1 2222")
	f.Add("fe80::1%eth0 1 fe80::2 22")
	f.Fuzz(func(t *testing.T, s string) {
		start := uint64(len(s)) * 997
		sess, ok := ParseSession(s)
		if !ok {
			return
		}
		again, ok := ParseSession(fmt.Sprintf("%s %d %s %d", sess.Client.Addr(), sess.Client.Port(), sess.Server.Addr(), sess.Server.Port()))
		if !ok || again != sess {
			t.Fatalf("%q: %+v, then %+v", s, sess, again)
		}
		m := &Manifest{ID: "20260102T150405Z-abcdef", ActivatedTicks: 1 << 40}
		p := Proof{Operator: host.Operator{SSHD: 7, SSHDStart: start, Conn: sess, ConnFrom: "socket"}}
		if err := CheckProof(m, p); err == nil {
			t.Fatalf("%q: a connection opened before the change confirms it", s)
		}
	})
}
