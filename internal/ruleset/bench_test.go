package ruleset

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkRead compares the two ways of reading a host's ruleset that
// holds a ban set of 20,000 addresses: over netlink (Kernel), and nft's
// JSON (the fallback). Run as root:
//
//	go test -run XXX -bench BenchmarkRead -benchtime 20x ./internal/ruleset
func BenchmarkRead(b *testing.B) {
	requireRoot(b)
	requireTools(b, "ip", "nft")
	ns := newNetns(b, uniqueName("bench"))
	var elems []string
	for i := range 20000 {
		elems = append(elems, fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
	src := "table inet moat {\n\tset ban4 { type ipv4_addr; elements = { " + strings.Join(elems, ", ") + " } }\n" +
		"\tchain input { type filter hook input priority 0; policy drop;\n\t\tip saddr @ban4 drop\n\t\tct state established,related accept\n\t\ttcp dport { 22, 80, 443 } accept\n\t}\n}\n"
	file := filepath.Join(b.TempDir(), "bans.nft")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	ns.run(b, "nft", "-f", file)
	b.Run("netlink", func(b *testing.B) {
		for b.Loop() {
			if err := ns.do(func() error { _, err := Kernel(); return err }); err != nil {
				b.Fatal(err)
			}
		}
	})
	var rs *Ruleset
	if err := ns.do(func() (err error) { rs, err = Kernel(); return err }); err != nil {
		b.Fatal(err)
	}
	p := Packet{Hook: HookInput, IIf: "eth0", Saddr: netip.MustParseAddr("198.51.100.7"), Daddr: netip.MustParseAddr("203.0.113.1"), Proto: "tcp", Dport: 22}
	if v := rs.Evaluate(p, Optimistic); !v.Accepted || !v.Certain {
		b.Fatalf("ssh from an unbanned address: %v", v)
	}
	b.Run("evaluate", func(b *testing.B) {
		for b.Loop() {
			rs.Evaluate(p, Optimistic)
		}
	})
	b.Run("nft-json", func(b *testing.B) {
		for b.Loop() {
			if err := ns.do(func() error { _, err := liveJSON(context.Background(), host{}); return err }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
