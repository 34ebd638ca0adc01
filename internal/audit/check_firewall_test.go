package audit

import (
	"os"
	"testing"

	"github.com/moat-sh/moat/internal/ruleset"
)

// TestMoatTableState reads a table inet moat as the kernel lists it
// (internal/firewall's stage3 golden, loaded by nft 1.0.6).
func TestMoatTableState(t *testing.T) {
	b, err := os.ReadFile("testdata/nft/moat-table.json")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ruleset.ParseNFT(b)
	if err != nil {
		t.Fatal(err)
	}
	tab := rs.Table(ruleset.FamilyInet, "moat")
	if tab == nil {
		t.Fatal("no table inet moat")
	}
	got := moatTableState(tab)
	want := "table inet moat loaded: 5 chains (input policy drop; forward policy accept), 35 rules, 4 sets in use (ban4, ban6, geo4, geo6)"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
