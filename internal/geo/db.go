package geo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

// maxSize bounds the file read into memory; GeoLite2-Country is ~10 MB,
// the largest City editions a few hundred.
const maxSize = 1 << 30

// downloadHint says where country databases come from.
const downloadHint = "hint: use GeoLite2-Country.mmdb from MaxMind (geoipupdate) or dbip-country-lite.mmdb from db-ip.com"

// ErrClosed is returned by Prefixes after Close.
var ErrClosed = errors.New("geo database is closed")

// DB is an open country database. Its methods are safe for concurrent use,
// including Close: a lookup racing Close either completes or reports no
// country.
type DB struct {
	// The file is read into memory rather than mapped: replacing it in
	// place (cp over it) cannot fault a running gateway, and Close needs
	// no coordination with lookups in flight, which the garbage collector
	// settles.
	reader atomic.Pointer[maxminddb.Reader]
	meta   Metadata
	codes  codeCache
}

// Metadata describes the database file, for status output.
type Metadata struct {
	Path        string    // as given to Open
	Type        string    // database_type, e.g. GeoLite2-Country or DBIP-Country-Lite
	Built       time.Time // build epoch
	IPVersion   int       // 4: IPv4 only; 6: IPv4 and IPv6
	Description string    // English description, if any
	Size        int64     // bytes
}

// Open reads a country mmdb. The database type must carry country records
// (Country, City and Enterprise editions do); ASN, ISP, anonymous-IP and
// other types are refused.
func Open(path string) (*DB, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open geo database: %w (%s)", err, downloadHint)
		}
		return nil, fmt.Errorf("open geo database: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open geo database: %s is not a regular file (hint: give the path of the .mmdb file itself)", path)
	}
	if fi.Size() > maxSize {
		return nil, fmt.Errorf("open geo database: %s is %d MiB, too large for a country database (%s, about 10 MiB)", path, fi.Size()>>20, downloadHint)
	}
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open geo database: %w", err)
	}
	db, err := openBytes(buf)
	if err != nil {
		return nil, fmt.Errorf("open geo database %s: %w", path, err)
	}
	db.meta.Path = path
	return db, nil
}

// openBytes opens a database held in buf, which it keeps.
func openBytes(buf []byte) (*DB, error) {
	r, err := maxminddb.OpenBytes(buf, maxminddb.DisableStringCache())
	if err != nil {
		return nil, fmt.Errorf("not a MaxMind DB (.mmdb) file: %w (%s; CSV editions do not work)", err, downloadHint)
	}
	m := r.Metadata
	if !countryType(m.DatabaseType) {
		return nil, fmt.Errorf("database type %q holds no country records (%s)", m.DatabaseType, downloadHint)
	}
	if m.IPVersion != 4 && m.IPVersion != 6 {
		return nil, fmt.Errorf("database declares ip_version %d, expected 4 or 6 (%s)", m.IPVersion, downloadHint)
	}
	db := &DB{meta: Metadata{
		Type:        m.DatabaseType,
		Built:       m.BuildTime().UTC(),
		IPVersion:   int(m.IPVersion),
		Description: m.Description["en"],
		Size:        int64(len(buf)),
	}}
	db.reader.Store(r)
	return db, nil
}

// countryType reports whether a database_type has country records:
// GeoLite2-Country, GeoIP2-Country, DBIP-Country-Lite, the City editions
// of both vendors, GeoIP2-Enterprise.
func countryType(t string) bool {
	t = strings.ToLower(t)
	for _, s := range []string{"country", "city", "enterprise"} {
		if strings.Contains(t, s) {
			return true
		}
	}
	return false
}

// Metadata describes the open database.
func (db *DB) Metadata() Metadata { return db.meta }

// Close releases the database. Lookups after Close report no country and
// Prefixes returns ErrClosed. Close is idempotent.
func (db *DB) Close() error {
	// Not Reader.Close: it is not safe against concurrent lookups, and with
	// a heap buffer it has nothing to unmap.
	db.reader.Store(nil)
	return nil
}
