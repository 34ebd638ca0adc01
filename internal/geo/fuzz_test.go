package geo

import (
	"net/netip"
	"testing"

	"github.com/maxmind/mmdbwriter"
)

// FuzzOpen feeds arbitrary bytes to the reader: opening, looking up and
// walking a damaged or hostile file must fail cleanly, never panic or hang.
func FuzzOpen(f *testing.F) {
	f.Add(buildMMDB(f, mmdbwriter.Options{}, worldEntries))
	f.Add(buildMMDB(f, mmdbwriter.Options{IPVersion: 4, RecordSize: 32}, worldEntries[:6]))
	f.Add([]byte("\xab\xcd\xefMaxMind.com"))
	probes := []netip.Addr{
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("203.0.113.200"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:198.51.100.1"),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		db, err := openBytes(data)
		if err != nil {
			return
		}
		for _, a := range probes {
			if code, ok := db.Country(a); ok {
				if c, valid := normCode(code); !valid || c != code {
					t.Fatalf("Country(%s) = %q", a, code)
				}
			}
		}
		v4, v6, err := db.Prefixes([]string{"DE", "FR", "US"})
		if err != nil {
			return
		}
		for _, p := range append(v4, v6...) {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("Prefixes returned %v", p)
			}
		}
		db.Close()
	})
}
