package firewall

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/moat-sh/moat/internal/geo"
	"github.com/moat-sh/moat/internal/schema"
)

// writeCountryDB builds a GeoLite2-Country style database placing the
// world's addresses: the attacker's first IPv4 address and IPv6 /64 in
// RU, the second ones in DE, and the VPN range in RU too (to prove the
// VPN is exempt).
func writeCountryDB(t *testing.T) string {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoLite2-Country",
		IncludeReservedNetworks: true, // the world uses documentation ranges
	})
	if err != nil {
		t.Fatal(err)
	}
	country := func(code string) mmdbtype.Map {
		return mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(code)}}
	}
	for _, e := range []struct{ net, code string }{
		{attacker4 + "/32", "RU"},
		{"2001:db8:1::/64", "RU"},
		{"10.8.0.0/24", "RU"},
		{attacker4b + "/32", "DE"},
		{"2001:db8:2::/64", "DE"},
	} {
		_, n, err := net.ParseCIDR(e.net)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(n, country(e.code)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "country.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGeo(t *testing.T) {
	w := newWorld(t)
	db, err := geo.Open(writeCountryDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, mode := range []struct {
		mode    string
		country schema.Country
	}{{"deny", "RU"}, {"allow", "DE"}} {
		t.Run(mode.mode, func(t *testing.T) {
			v4, v6, err := db.Prefixes([]string{string(mode.country)})
			if err != nil {
				t.Fatal(err)
			}
			spec := w.spec(schema.ExposureVPNPublic)
			spec.Geo = Geo{Mode: mode.mode, Countries: []schema.Country{mode.country}, V4: v4, V6: v6}
			w.apply(t, spec)
			web := func(addr string) string { return hostPort(addr, 80) }
			check(t, []probe{
				{from: w.attacker, src: attacker4, network: "tcp", dst: web(vpsPub4)},
				{from: w.attacker, src: attacker4, network: "tcp", dst: hostPort(vpsPub4, 8080)}, // published too
				{from: w.attacker, src: attacker4, network: "udp", dst: hostPort(vpsPub4, 51820)},
				{from: w.attacker, src: attacker4b, network: "tcp", dst: web(vpsPub4), open: true},
				{from: w.attacker, src: attacker6, network: "tcp", dst: web(vpsPub6)},
				{from: w.attacker, src: attacker6b, network: "tcp", dst: web(vpsPub6b), open: true},
				// The VPN is exempt, though its range is placed in RU.
				{from: w.admin, network: "tcp", dst: web(vpsVPN4), open: true},
				{from: w.admin, network: "tcp", dst: hostPort(vpsVPN4, 22), open: true},
				{from: w.admin, network: "tcp", dst: hostPort(vpsVPN4, 9090), open: true},
			})
		})
	}
}
