package harden

import (
	"bytes"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

// FuzzFixMainConfig: whatever sshd_config moat reads, the fix is
// idempotent, includes the drop-in before any other keyword, and leaves
// no global Port or ListenAddress line.
func FuzzFixMainConfig(f *testing.F) {
	f.Add([]byte("Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n"))
	f.Add([]byte("Port 22\nMatch User x\n\tPort 1\n"))
	f.Add([]byte("PasswordAuthentication=no\nInclude \"sshd_config.d/*.conf\" other.conf\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fix := FixMainConfig(data)
		again := FixMainConfig(fix.Data)
		if !bytes.Equal(again.Data, fix.Data) {
			t.Fatalf("not idempotent:\n%q\n%q", fix.Data, again.Data)
		}
		inMatch, sawInclude := false, false
		for _, l := range strings.SplitAfter(string(fix.Data), "\n") {
			kw, args := splitDirective(l)
			switch {
			case kw == "":
			case strings.EqualFold(kw, "match"):
				inMatch = true
			case inMatch:
			case strings.EqualFold(kw, "include") && includesDropIn(args):
				sawInclude = true
			case strings.EqualFold(kw, "port"), strings.EqualFold(kw, "listenaddress"):
				t.Fatalf("global %q left in:\n%s", l, fix.Data)
			case !sawInclude:
				t.Fatalf("%q comes before the drop-in Include:\n%s", l, fix.Data)
			}
		}
	})
}

// FuzzAcceptedFromVPN reads logs, which attackers write into (user names).
func FuzzAcceptedFromVPN(f *testing.F) {
	f.Add([]byte("Jan  2 15:04:07 vps sshd[3]: Accepted publickey for deploy from 100.100.1.2 port 40002 ssh2\n"))
	f.Add([]byte("Accepted password for from from 100.64.0.1 port 1\n"))
	c := vpn.Config{Ranges: []schema.CIDR{schema.MustCIDR("100.64.0.0/10")}}
	f.Fuzz(func(t *testing.T, log []byte) {
		if got := acceptedFromVPN(log, c); got != "" && !strings.HasPrefix(got, "Accepted ") {
			t.Fatalf("returned %q", got)
		}
	})
}
