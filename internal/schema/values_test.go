package schema

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"30s": 30 * time.Second, "10m": 10 * time.Minute, "1h30m": 90 * time.Minute,
		"7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1d12h": 36 * time.Hour, "1.5d": 36 * time.Hour,
	}
	for s, want := range good {
		got, err := ParseDuration(s)
		if err != nil || got.D() != want {
			t.Errorf("%q: got %v, %v; want %v", s, got.D(), err, want)
		}
	}
	for _, s := range []string{"", "10", "d", "forever", "-5m", "1y", "5m-"} {
		if _, err := ParseDuration(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}

func TestParsePortSpec(t *testing.T) {
	good := map[string]PortSpec{
		"443": {"tcp", 443, 443}, "53/udp": {"udp", 53, 53}, "60000-61000/udp": {"udp", 60000, 61000},
	}
	for s, want := range good {
		got, err := ParsePortSpec(s)
		if err != nil || got != want {
			t.Errorf("%q: got %v, %v", s, got, err)
		}
		if got.String() != s && s != "443" {
			t.Errorf("%q round trip: %s", s, got)
		}
	}
	for _, s := range []string{"0", "65536", "22/sctp", "100-90", "a-b", "80/", "/tcp", "-1"} {
		if _, err := ParsePortSpec(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}

func TestParseCIDR(t *testing.T) {
	for s, want := range map[string]string{
		"203.0.113.7": "203.0.113.7/32", "10.0.0.0/8": "10.0.0.0/8", "2001:db8::1": "2001:db8::1/128",
		"::ffff:1.2.3.4": "1.2.3.4/32", "fd7a:115c:a1e0::/48": "fd7a:115c:a1e0::/48",
	} {
		got, err := ParseCIDR(s)
		if err != nil || got.String() != want {
			t.Errorf("%q: got %v, %v; want %s", s, got, err, want)
		}
	}
	for _, s := range []string{"10.0.0.1/8", "1.2.3", "fe80::1%eth0", "host.example.com", "10.0.0.0/33", ""} {
		if _, err := ParseCIDR(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}

func TestParseSizeRateCountry(t *testing.T) {
	if z, err := ParseSize("2GiB"); err != nil || z != 2<<30 || z.String() != "2GiB" {
		t.Errorf("2GiB: %v %v", z, err)
	}
	if _, err := ParseSize("99999999999999T"); err == nil {
		t.Error("overflow accepted")
	}
	if r, err := ParseRate("30/minute"); err != nil || r.PerSecond() != 0.5 {
		t.Errorf("rate: %v %v", r, err)
	}
	if c, err := ParseCountry("de"); err != nil || c != "DE" {
		t.Errorf("de: %v %v", c, err)
	}
	for _, s := range []string{"XX", "DEU", "", "d"} {
		if _, err := ParseCountry(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
