package geo

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/oschwald/maxminddb-golang/v2"
)

func TestPrefixes(t *testing.T) {
	db := openTestDB(t, mmdbwriter.Options{}, worldEntries)
	tests := []struct {
		countries []string
		v4, v6    string
	}{
		{[]string{"DE"}, "192.0.2.0/24 198.51.100.0/24", "2001:db8::/32"},
		{[]string{"de"}, "192.0.2.0/24 198.51.100.0/24", "2001:db8::/32"},
		{[]string{"FR"}, "203.0.113.0/24", "2001:db9::/32 2001:dba::/32"},
		{[]string{"NL"}, "198.51.101.0/24", "2001:dbb::/32"},
		{[]string{"US"}, "100.64.0.0/24 198.18.1.0/24", "3fff::/20"},
		{[]string{"DE", "NL"}, "192.0.2.0/24 198.51.100.0/23", "2001:db8::/32 2001:dbb::/32"},
		{[]string{"DE", "NL", "FR", "DE"}, "192.0.2.0/24 198.51.100.0/23 203.0.113.0/24", "2001:db8::/30"},
		{[]string{"ZZ"}, "", ""}, // no networks: not an error
		{nil, "", ""},
	}
	for _, tt := range tests {
		v4, v6, err := db.Prefixes(tt.countries)
		if err != nil {
			t.Errorf("Prefixes(%v): %v", tt.countries, err)
			continue
		}
		if join(v4) != tt.v4 || join(v6) != tt.v6 {
			t.Errorf("Prefixes(%v)\n got: %s | %s\nwant: %s | %s", tt.countries, join(v4), join(v6), tt.v4, tt.v6)
		}
	}
}

func TestPrefixesRejectsBadCodes(t *testing.T) {
	db := openTestDB(t, mmdbwriter.Options{}, worldEntries)
	for _, c := range []string{"", "D", "DEU", "D1", "É"} {
		if _, _, err := db.Prefixes([]string{"DE", c}); err == nil || !strings.Contains(err.Error(), "country code") {
			t.Errorf("Prefixes(%q) = %v, want a country code error", c, err)
		}
	}
}

// TestPrefixesSkipsAliases checks that the IPv4 networks are not listed
// again under the IPv6 ranges that alias them, both when the tree links
// those ranges to the IPv4 subtree and when a writer copied the data.
func TestPrefixesSkipsAliases(t *testing.T) {
	linked := openTestDB(t, mmdbwriter.Options{}, worldEntries)
	// The test means something only if the aliases are in the tree.
	var aliased []string
	for res := range linked.reader.Load().Networks(maxminddb.IncludeAliasedNetworks()) {
		if p := res.Prefix(); p.Addr().Is6() && aliasOfIPv4(p) {
			aliased = append(aliased, p.String())
		}
	}
	if !slices.Contains(aliased, "::ffff:192.0.2.0/121") || !slices.Contains(aliased, "2002:c000:200::/41") {
		t.Fatalf("test database has no IPv4 aliases: %v", aliased)
	}

	copied := openTestDB(t, mmdbwriter.Options{DisableIPv4Aliasing: true}, append(slices.Clone(worldEntries),
		entry{"::ffff:192.0.2.0/120", rec("DE", "")},
		entry{"2002:c000:200::/40", rec("DE", "")},
		entry{"2001:0:c000:200::/64", rec("DE", "")},
	))
	for name, db := range map[string]*DB{"linked": linked, "copied": copied} {
		v4, v6, err := db.Prefixes([]string{"DE"})
		if err != nil {
			t.Fatal(err)
		}
		if join(v4) != "192.0.2.0/24 198.51.100.0/24" || join(v6) != "2001:db8::/32" {
			t.Errorf("%s: Prefixes(DE) = %s | %s", name, join(v4), join(v6))
		}
	}
}

// TestPrefixesAgreeWithCountry checks, on a random database, that an
// address is covered by Prefixes(c) exactly when Country says c.
func TestPrefixesAgreeWithCountry(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	entries := genEntries(r, 3000, 2000)
	db := openTestDB(t, mmdbwriter.Options{}, entries)
	countries := []string{genCode(0), genCode(1), genCode(7)}
	v4, v6, err := db.Prefixes(countries)
	if err != nil {
		t.Fatal(err)
	}
	all := slices.Concat(v4, v6)
	checkMerged(t, all, all) // sorted, disjoint, minimal
	if len(v4) == 0 || len(v6) == 0 {
		t.Fatalf("no networks for %v: %d v4, %d v6", countries, len(v4), len(v6))
	}
	covered := func(a netip.Addr) bool {
		ps := v4
		if a.Is6() {
			ps = v6
		}
		i, _ := slices.BinarySearchFunc(ps, a, func(p netip.Prefix, a netip.Addr) int { return p.Addr().Compare(a) })
		return (i < len(ps) && ps[i].Contains(a)) || (i > 0 && ps[i-1].Contains(a))
	}
	// Probe every network's edges, and the edges of every output prefix.
	var probes []netip.Addr
	for _, e := range entries {
		p := netip.MustParsePrefix(e.net)
		probes = append(probes, p.Addr(), p.Addr().Prev(), lastAddr(p), lastAddr(p).Next())
	}
	for _, p := range all {
		probes = append(probes, p.Addr(), p.Addr().Prev(), lastAddr(p), lastAddr(p).Next())
	}
	for _, a := range probes {
		if !a.IsValid() {
			continue
		}
		code, _ := db.Country(a)
		if in := slices.Contains(countries, code); in != covered(a) {
			t.Fatalf("%s: Country %q, covered by Prefixes %v", a, code, covered(a))
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	return spanOf(p).last.addr(p.Addr().BitLen())
}

// TestPrefixesBoundsDamagedTree gives Prefixes a tree whose nodes share
// their children, 2^40 paths deep: the walk must stop with an error.
func TestPrefixesBoundsDamagedTree(t *testing.T) {
	data := buildMMDB(t, mmdbwriter.Options{RecordSize: 24}, worldEntries)
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	nodes := int(r.Metadata.NodeCount)
	const depth = 40
	if nodes <= depth {
		t.Fatalf("only %d nodes", nodes)
	}
	get := func(i int) int { return int(data[i])<<16 | int(data[i+1])<<8 | int(data[i+2]) }
	put := func(i, v int) { data[i], data[i+1], data[i+2] = byte(v>>16), byte(v>>8), byte(v) }
	leaf := 0
	for i := 0; i < nodes*6 && leaf == 0; i += 3 {
		if v := get(i); v > nodes {
			leaf = v
		}
	}
	for n := range depth {
		put(n*6, n+1)
		put(n*6+3, n+1)
	}
	put(depth*6, leaf)
	put(depth*6+3, leaf)

	db, err := openBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	defer func(old int) { maxNetworks = old }(maxNetworks)
	maxNetworks = 100_000
	if _, _, err := db.Prefixes([]string{"DE"}); err == nil || !strings.Contains(err.Error(), "more than 100000 networks") {
		t.Fatalf("Prefixes on a damaged tree: %v", err)
	}
}
