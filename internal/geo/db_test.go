package geo

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
)

func TestCountry(t *testing.T) {
	db := openTestDB(t, mmdbwriter.Options{}, worldEntries)
	tests := []struct {
		addr string
		want string // "" for none
	}{
		{"192.0.2.1", "DE"},
		{"192.0.2.200", "DE"}, // country wins over registered_country AT
		{"198.51.100.255", "DE"},
		{"198.51.101.0", "NL"},
		{"203.0.113.5", "FR"},
		{"203.0.113.130", "FR"}, // registered_country only
		{"198.18.0.9", ""},      // record without a country
		{"198.18.1.9", "US"},    // lower case normalised
		{"100.64.0.77", "US"},
		{"8.8.8.8", ""}, // not in the database
		{"::ffff:192.0.2.1", "DE"},
		{"::ffff:203.0.113.130", "FR"},
		{"2002:c000:0201::1", "DE"}, // 6to4 of 192.0.2.1, through the alias
		{"2001:db8::1", "DE"},
		{"2001:db8:ffff::1", "DE"},
		{"2001:db9::1", "FR"},
		{"2001:dba::1", "FR"},
		{"2001:dbb::1", "NL"},
		{"3fff::1", "US"},
		{"3fff:1000::1", ""},
		{"2001:dbc::1", ""},
		{"fe80::1%eth0", ""},
		{"2001:db8::1%eth0", "DE"}, // zone ignored
	}
	for _, tt := range tests {
		code, ok := db.Country(netip.MustParseAddr(tt.addr))
		if code != tt.want || ok != (tt.want != "") {
			t.Errorf("Country(%s) = %q, %v; want %q", tt.addr, code, ok, tt.want)
		}
	}
	// A second round is served from the cache and must agree.
	for _, tt := range tests {
		if code, _ := db.Country(netip.MustParseAddr(tt.addr)); code != tt.want {
			t.Errorf("cached Country(%s) = %q; want %q", tt.addr, code, tt.want)
		}
	}
	if code, ok := db.Country(netip.Addr{}); ok || code != "" {
		t.Errorf("Country(zero Addr) = %q, %v", code, ok)
	}
}

func TestCountryWithoutAliases(t *testing.T) {
	// Without aliasing, ::ffff:a.b.c.d has no node of its own: moat must
	// look it up as IPv4.
	db := openTestDB(t, mmdbwriter.Options{DisableIPv4Aliasing: true}, worldEntries)
	for addr, want := range map[string]string{"::ffff:192.0.2.1": "DE", "192.0.2.1": "DE", "2001:db8::1": "DE"} {
		if code, _ := db.Country(netip.MustParseAddr(addr)); code != want {
			t.Errorf("Country(%s) = %q; want %q", addr, code, want)
		}
	}
}

func TestIPv4OnlyDatabase(t *testing.T) {
	db := openTestDB(t, mmdbwriter.Options{IPVersion: 4}, []entry{
		{"192.0.2.0/25", rec("DE", "")},
		{"192.0.2.128/25", rec("DE", "AT")},
	})
	if got := db.Metadata().IPVersion; got != 4 {
		t.Fatalf("IPVersion = %d", got)
	}
	for addr, want := range map[string]string{"192.0.2.1": "DE", "::ffff:192.0.2.1": "DE", "2001:db8::1": ""} {
		if code, _ := db.Country(netip.MustParseAddr(addr)); code != want {
			t.Errorf("Country(%s) = %q; want %q", addr, code, want)
		}
	}
	v4, v6, err := db.Prefixes([]string{"DE"})
	if err != nil {
		t.Fatal(err)
	}
	if join(v4) != "192.0.2.0/24" || v6 != nil {
		t.Errorf("Prefixes = %s / %s", join(v4), join(v6))
	}
}

func TestMetadata(t *testing.T) {
	path := writeFile(t, "GeoLite2-Country.mmdb", buildMMDB(t, mmdbwriter.Options{}, worldEntries))
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := db.Metadata()
	fi, _ := os.Stat(path)
	want := Metadata{
		Path:        path,
		Type:        "GeoLite2-Country",
		Built:       time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		IPVersion:   6,
		Description: "moat test database",
		Size:        fi.Size(),
	}
	if m != want {
		t.Errorf("Metadata() = %+v\nwant %+v", m, want)
	}
}

func TestOpenAcceptsCountryTypes(t *testing.T) {
	for _, typ := range []string{"GeoLite2-Country", "GeoIP2-Country", "DBIP-Country-Lite", "GeoLite2-City", "DBIP-City-Lite", "GeoIP2-Enterprise"} {
		data := buildMMDB(t, mmdbwriter.Options{DatabaseType: typ}, worldEntries[:1])
		db, err := openBytes(data)
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		if code, _ := db.Country(netip.MustParseAddr("192.0.2.1")); code != "DE" {
			t.Errorf("%s: Country = %q", typ, code)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	valid := buildMMDB(t, mmdbwriter.Options{}, worldEntries)
	asn := buildMMDB(t, mmdbwriter.Options{DatabaseType: "GeoLite2-ASN"}, []entry{{"192.0.2.0/24", rec("", "")}})
	files := map[string][]byte{
		"garbage.mmdb":   []byte("this is not a database\n"),
		"empty.mmdb":     nil,
		"csv.mmdb":       []byte("network,geoname_id\n192.0.2.0/24,2921044\n"),
		"truncated.mmdb": valid[:len(valid)/2],
		"asn.mmdb":       asn,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		path string
		want []string // substrings of the error
	}{
		{"missing.mmdb", []string{"no such file", "GeoLite2-Country.mmdb"}},
		{".", []string{"not a regular file"}},
		{"garbage.mmdb", []string{"garbage.mmdb", "not a MaxMind DB", "hint"}},
		{"empty.mmdb", []string{"not a MaxMind DB"}},
		{"csv.mmdb", []string{"not a MaxMind DB", "CSV"}},
		{"truncated.mmdb", []string{"not a MaxMind DB"}},
		{"asn.mmdb", []string{`"GeoLite2-ASN"`, "no country records", "GeoLite2-Country"}},
	}
	for _, tt := range tests {
		db, err := Open(filepath.Join(dir, tt.path))
		if err == nil {
			db.Close()
			t.Errorf("Open(%s) succeeded", tt.path)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%s) = %q, want it to mention %q", tt.path, err, w)
			}
		}
	}
	if _, err := Open(filepath.Join(dir, "missing.mmdb")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v does not wrap fs.ErrNotExist", err)
	}
}

func TestClose(t *testing.T) {
	db := openTestDB(t, mmdbwriter.Options{}, worldEntries)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if code, ok := db.Country(netip.MustParseAddr("192.0.2.1")); ok || code != "" {
		t.Errorf("Country after Close = %q, %v", code, ok)
	}
	if _, _, err := db.Prefixes([]string{"DE"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Prefixes after Close: %v", err)
	}
}

// TestConcurrent runs lookups (which fill the cache) against each other
// and against Close; run it with -race.
func TestConcurrent(t *testing.T) {
	db := openTestDB(t, mmdbwriter.Options{}, worldEntries)
	addrs := []netip.Addr{
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("203.0.113.130"),
		netip.MustParseAddr("2001:db9::1"), netip.MustParseAddr("198.18.0.1"),
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				a := addrs[(g+i)%len(addrs)]
				code, ok := db.Country(a)
				if ok && code != map[int]string{0: "DE", 1: "FR", 2: "FR"}[(g+i)%len(addrs)] {
					t.Errorf("Country(%s) = %q", a, code)
					return
				}
			}
		})
	}
	wg.Go(func() {
		if _, _, err := db.Prefixes([]string{"FR"}); err != nil && !errors.Is(err, ErrClosed) {
			t.Error(err)
		}
	})
	time.Sleep(time.Millisecond)
	db.Close()
	wg.Wait()
}
