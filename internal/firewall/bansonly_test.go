package firewall

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/lab"
)

// userTable is an operator's own firewall, as a fail2ban user has one:
// default drop, 8080 open, 9090 closed.
const userTable = `table inet user {
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state established,related accept
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
		tcp dport 8080 accept
	}
}
`

// TestBansOnlyMode: with firewall.mode bans-only, moat run's
// EnsureBanSets creates table inet moat with just the ban sets and their
// drop; the operator's own table still decides everything else, and a
// banned source is dropped even on the port the operator opened.
func TestBansOnlyMode(t *testing.T) {
	lab.RequireTool(t, "nft")
	l := lab.New(t)
	vps, a1, a2 := l.Host("vps"), l.Host("a1"), l.Host("a2")
	l.Link(vps, "eth1", a1, "eth0", []string{"10.0.1.1/24", "fd00:1::1/64"}, []string{"10.0.1.2/24", "fd00:1::2/64"})
	l.Link(vps, "eth2", a2, "eth0", []string{"10.0.2.1/24"}, []string{"10.0.2.2/24"})
	f := filepath.Join(t.TempDir(), "user.nft")
	os.WriteFile(f, []byte(userTable), 0o600)
	vps.MustRun(t, "nft", "-f", f)
	for _, port := range []string{"8080", "9090"} {
		for _, addr := range []string{"[::]:" + port} {
			ln, err := vps.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
		}
	}
	reach := func(h *lab.Host, addr string) bool { return h.CanConnect("tcp", addr, 700*time.Millisecond) }
	ctx := context.Background()

	if !reach(a1, "10.0.1.1:8080") || reach(a1, "10.0.1.1:9090") || !reach(a1, "[fd00:1::1]:8080") {
		t.Fatal("the operator's table does not work as written, before moat")
	}
	// Full mode refuses to claim enforcement without the table.
	spec := SpecFrom(Default())
	spec.Source = "test"
	var err error
	vps.Do(func() error { _, err = EnsureBanSets(ctx, &spec); return nil })
	if !errors.Is(err, ErrNotEnforced) {
		t.Fatalf("full mode without the table: %v, want ErrNotEnforced", err)
	}

	spec.BansOnly = true
	spec.Admin = []netip.Prefix{netip.MustParsePrefix("10.0.2.2/32")}
	var created bool
	if err := vps.Do(func() (err error) { created, err = EnsureBanSets(ctx, &spec); return err }); err != nil || !created {
		t.Fatalf("bans-only: created %v, %v", created, err)
	}
	// Idempotent: a second start changes nothing.
	if err := vps.Do(func() (err error) { created, err = EnsureBanSets(ctx, &spec); return err }); err != nil || created {
		t.Fatalf("second start: created %v, %v", created, err)
	}
	// The operator's table still decides: 8080 open, 9090 closed.
	if !reach(a1, "10.0.1.1:8080") || reach(a1, "10.0.1.1:9090") || !reach(a1, "[fd00:1::1]:8080") {
		t.Fatal("the bans-only table changed what the operator's own table decides")
	}
	var sets *Sets
	if err := vps.Do(func() (err error) { sets, err = NewSets(64); return err }); err != nil {
		t.Fatal(err)
	}
	defer sets.Close()
	if err := sets.Ban(ctx, []Element{
		{Prefix: netip.MustParsePrefix("10.0.1.2/32"), Timeout: time.Hour},
		{Prefix: netip.MustParsePrefix("fd00:1::2/128"), Timeout: time.Hour},
		{Prefix: netip.MustParsePrefix("10.0.2.2/32"), Timeout: time.Hour}, // an admin source: exempt
	}); err != nil {
		t.Fatal(err)
	}
	if reach(a1, "10.0.1.1:8080") || reach(a1, "[fd00:1::1]:8080") {
		t.Error("a banned source still reaches the port the operator opened")
	}
	if !reach(a2, "10.0.2.1:8080") {
		t.Error("the admin source was dropped")
	}
	if err := sets.Unban(ctx, []netip.Prefix{netip.MustParsePrefix("10.0.1.2/32")}); err != nil {
		t.Fatal(err)
	}
	if !reach(a1, "10.0.1.1:8080") {
		t.Error("unbanned source still dropped")
	}
}
