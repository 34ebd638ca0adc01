package geo

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Country returns the ISO 3166-1 alpha-2 code (upper case) of the network
// holding addr: the record's country, else its registered country. ok is
// false for addresses the database does not place in a country, an IPv6
// address in an IPv4-only database, and after Close. IPv4-mapped IPv6
// addresses are looked up as IPv4; zones are ignored.
func (db *DB) Country(addr netip.Addr) (code string, ok bool) {
	r := db.reader.Load()
	if r == nil || !addr.IsValid() {
		return "", false
	}
	addr = addr.Unmap()
	if addr.Is6() && db.meta.IPVersion == 4 {
		return "", false // the reader would build an error string for this
	}
	res := r.Lookup(addr)
	if !res.Found() {
		return "", false
	}
	code = db.codes.code(res)
	return code, code != ""
}

// codeCache maps a record's data offset to its country code. A country
// database has a few thousand distinct records behind hundreds of
// thousands of networks, so after warming up a lookup is a tree walk and
// one lock-free map read.
type codeCache struct {
	m sync.Map     // uintptr → string; "" is a record without a country
	n atomic.Int64 // entries, to bound the map
}

// maxCached bounds the cache for databases with many distinct records
// (City editions): past it, misses decode every time.
const maxCached = 1 << 16

// code returns the country code of a found result's record, "" if it has
// none or cannot be decoded (Prefixes reports such records; a request
// cannot do anything about them).
func (c *codeCache) code(res maxminddb.Result) string {
	off := res.Offset()
	if code, ok := c.m.Load(off); ok {
		return code.(string)
	}
	code, _ := decodeCode(res)
	if c.n.Load() < maxCached {
		if _, loaded := c.m.LoadOrStore(off, code); !loaded {
			c.n.Add(1)
		}
	}
	return code
}

// countryRecord is the part of a GeoIP2/GeoLite2/DB-IP record moat reads.
type countryRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
}

func decodeCode(res maxminddb.Result) (string, error) {
	var rec countryRecord
	if err := res.Decode(&rec); err != nil {
		return "", fmt.Errorf("decode record of %s: %w", res.Prefix(), err)
	}
	if code, ok := normCode(rec.Country.ISOCode); ok {
		return code, nil
	}
	code, _ := normCode(rec.RegisteredCountry.ISOCode)
	return code, nil
}

// normCode upper-cases a two-letter code; anything else is no code.
func normCode(s string) (string, bool) {
	if len(s) != 2 {
		return "", false
	}
	var b [2]byte
	for i := range 2 {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		default:
			return "", false
		}
		b[i] = c
	}
	if string(b[:]) == s {
		return s, true
	}
	return string(b[:]), true
}
