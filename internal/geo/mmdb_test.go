package geo

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// testBuildEpoch is the build time of test databases: 2025-03-01T00:00:00Z.
const testBuildEpoch = 1740787200

// entry is one network of a test database and its record.
type entry struct {
	net    string
	record mmdbtype.Map
}

// rec builds a GeoIP2-style country record. country or registered may be
// empty; extra distinguishes otherwise equal records, since the writer
// merges sibling networks whose records are identical and the tests need
// adjacent networks that only moat can merge.
func rec(country, registered string, extra ...string) mmdbtype.Map {
	m := mmdbtype.Map{
		"continent": mmdbtype.Map{"code": mmdbtype.String("EU"), "names": mmdbtype.Map{"en": mmdbtype.String("Europe")}},
	}
	if country != "" {
		m["country"] = mmdbtype.Map{
			"iso_code":   mmdbtype.String(country),
			"geoname_id": mmdbtype.Uint32(len(country) * 1000),
			"names":      mmdbtype.Map{"en": mmdbtype.String("Land " + country)},
		}
	}
	if registered != "" {
		m["registered_country"] = mmdbtype.Map{"iso_code": mmdbtype.String(registered)}
	}
	for _, e := range extra {
		m["moat_test_"+mmdbtype.String(e)] = mmdbtype.Bool(true)
	}
	return m
}

// buildMMDB writes a database with the given options and entries and
// returns its bytes.
func buildMMDB(t testing.TB, opts mmdbwriter.Options, entries []entry) []byte {
	t.Helper()
	if opts.DatabaseType == "" {
		opts.DatabaseType = "GeoLite2-Country"
	}
	if opts.BuildEpoch == 0 {
		opts.BuildEpoch = testBuildEpoch
	}
	if opts.Description == nil {
		opts.Description = map[string]string{"en": "moat test database"}
	}
	opts.IncludeReservedNetworks = true // the tests use documentation ranges
	w, err := mmdbwriter.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		_, n, err := net.ParseCIDR(e.net)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(n, e.record); err != nil {
			t.Fatalf("insert %s: %v", e.net, err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// openTestDB writes the database to a temp file and opens it with Open.
func openTestDB(t testing.TB, opts mmdbwriter.Options, entries []entry) *DB {
	t.Helper()
	db, err := Open(writeFile(t, "test.mmdb", buildMMDB(t, opts, entries)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// worldEntries is the main test world, in documentation ranges.
var worldEntries = []entry{
	// DE: two halves with different records, then a separate /24.
	{"192.0.2.0/25", rec("DE", "DE")},
	{"192.0.2.128/25", rec("DE", "AT")},
	{"198.51.100.0/24", rec("DE", "")},
	// NL right after DE's 198.51.100.0/24: adjacent, must stay apart.
	{"198.51.101.0/24", rec("NL", "NL")},
	// FR: one half by country, the other only by registered country.
	{"203.0.113.0/25", rec("FR", "FR")},
	{"203.0.113.128/25", rec("", "FR")},
	// No country at all (an anycast network, say).
	{"198.18.0.0/24", rec("", "")},
	// A lower-case code, as a careless writer might produce.
	{"198.18.1.0/24", rec("us", "")},
	// Four adjacent /26 with alternating records: one /24 for US.
	{"100.64.0.0/26", rec("US", "", "a")},
	{"100.64.0.64/26", rec("US", "", "b")},
	{"100.64.0.128/26", rec("US", "", "a")},
	{"100.64.0.192/26", rec("US", "", "b")},

	{"2001:db8::/33", rec("DE", "DE")},
	{"2001:db8:8000::/33", rec("DE", "AT")},
	{"2001:db9::/32", rec("FR", "FR")},
	{"2001:dba::/32", rec("", "FR")},
	{"2001:dbb::/32", rec("NL", "")},
	{"3fff::/20", rec("US", "US")},
	{"3fff:1000::/20", rec("", "")},
}
