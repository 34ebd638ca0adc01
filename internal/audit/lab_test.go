package audit

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/ruleset"
	"github.com/moat-sh/moat/internal/sshd"
)

// TestProbeRealSSHDInLab runs the live probe from an attacker namespace
// against a real sshd in a vps namespace: a key-only user and a user whom a
// Match block gives passwords. The probe must see what sshd really offers
// and send no credential (sshd logs no failed password).
func TestProbeRealSSHDInLab(t *testing.T) {
	lab.RequireTool(t, "sshd", "nft")
	l := lab.New(t)
	vps, attacker := l.Host("vps"), l.Host("attacker")
	l.Link(vps, "eth0", attacker, "eth0", []string{"198.51.100.1/24", "2001:db8:1::1/64"}, []string{"198.51.100.2/24", "2001:db8:1::2/64"})
	_, pub := lab.GenerateKey()
	d := vps.StartSSHD(t, lab.SSHDOptions{
		ExtraConfig: "PasswordAuthentication no\nKbdInteractiveAuthentication no\nMatch User alice\n\tPasswordAuthentication yes\n",
		Users: []lab.SSHUser{
			{Name: "alice", Password: "correct horse"},
			{Name: "bob", AuthorizedKeys: []string{pub}},
		},
	})
	for _, addr := range []string{d.Addr("198.51.100.1"), d.Addr("2001:db8:1::1")} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		res, err := sshd.ProbeVia(ctx, attacker.Dial, addr, []string{"alice", "bob"}, 5*time.Second)
		cancel()
		if err != nil {
			t.Fatalf("probe %s: %v", addr, err)
		}
		if !slices.Contains(res.AuthMethods["alice"], "password") {
			t.Errorf("%s: alice must be offered password, got %v", addr, res.AuthMethods["alice"])
		}
		if got := res.AuthMethods["bob"]; slices.Contains(got, "password") || !slices.Contains(got, "publickey") {
			t.Errorf("%s: bob must be key-only, got %v", addr, got)
		}
		if len(res.KexInit.Kex) == 0 || !res.StrictKex {
			t.Errorf("%s: KEXINIT not read or no strict kex: %+v", addr, res.KexInit)
		}
		o := &out{}
		checkSSHProbe(&sshdFacts{probe: &res}, o)
		var got20 Result
		for _, r := range o.results {
			if r.ID == "SSH-020" {
				got20 = r
			}
		}
		if got20.Status != Fail || got20.Subject != "alice" {
			t.Errorf("%s: SSH-020 = %s, want a failure for alice", addr, got20)
		}
	}
	if log := d.Log(); containsAny(log, "Failed password", "Failed publickey") {
		t.Errorf("the probe sent a credential:\n%s", log)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

func writeTemp(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReachabilityMatchesKernel loads rulesets into a vps namespace, asks
// the audit's reachability question for listeners there, and compares the
// answer with real TCP connects from an attacker namespace.
func TestReachabilityMatchesKernel(t *testing.T) {
	lab.RequireTool(t, "nft")
	rulesets := map[string]string{
		"empty": "",
		"default-drop": `table inet f {
	chain input { type filter hook input priority 0; policy drop;
		ct state established,related accept
		iif lo accept
		meta l4proto ipv6-icmp accept
		tcp dport { 22, 443 } accept
	}
}`,
		"accept-then-drop": `table inet a {
	chain input { type filter hook input priority 0; policy accept; tcp dport 6379 accept; }
}
table ip b {
	chain input { type filter hook input priority 10; policy accept; tcp dport 6379 drop; }
}`,
		"iface-only": `table inet f {
	chain input { type filter hook input priority 0; policy drop;
		ct state established,related accept
		meta l4proto ipv6-icmp accept
		iifname "wg0" accept
		tcp dport 22 accept
	}
}`,
	}
	// Every IPv6 ruleset accepts ICMPv6: without neighbour discovery no
	// IPv6 packet arrives at all, whatever the TCP rules say.
	ports := []uint16{22, 443, 5432, 6379}
	for name, src := range rulesets {
		t.Run(name, func(t *testing.T) {
			l := lab.New(t)
			vps, attacker := l.Host("vps"), l.Host("attacker")
			l.Link(vps, "eth0", attacker, "eth0", []string{"198.51.100.1/24", "2001:db8:1::1/64"}, []string{"198.51.100.2/24", "2001:db8:1::2/64"})
			for _, p := range ports {
				vps.ServeTCP(t, fmt.Sprintf("[::]:%d", p))
			}
			if src != "" {
				vps.MustRun(t, "nft", "-f", writeTemp(t, src))
			}
			js := vps.MustRun(t, "nft", "-j", "list", "ruleset")
			rs, err := ruleset.ParseNFT(js)
			if err != nil {
				t.Fatal(err)
			}
			f := &facts{notesSet: map[string]bool{}}
			f.ruleset = func() (*ruleset.Ruleset, error) { return rs, nil }
			f.routes = func() ([]host.Route, error) { return []host.Route{{Iface: "eth0"}}, nil }
			f.ifaces = func() ([]host.Interface, error) {
				return []host.Interface{{Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("2001:db8:1::1/64")}}}, nil
			}
			for _, p := range ports {
				for _, dst := range []string{"198.51.100.1", "2001:db8:1::1"} {
					addr := fmt.Sprintf("[%s]:%d", dst, p)
					kernel := attacker.CanConnect("tcp", addr, 300*time.Millisecond)
					model := f.reachable(host.Listener{Proto: "tcp", Addr: netip.AddrPortFrom(netip.MustParseAddr(dst), p)}).ok
					if kernel != model {
						t.Errorf("%s %s: kernel says reachable=%v, audit says %v", name, addr, kernel, model)
					}
				}
			}
		})
	}
}
