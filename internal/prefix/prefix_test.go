package prefix

import (
	"net/netip"
	"testing"
)

func TestCanonicalAndWiden(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bits     int
	}{
		{"192.0.2.7/24", "192.0.2.0/24", 64},
		{"::ffff:192.0.2.7/120", "192.0.2.0/24", 64},
		{"::ffff:192.0.2.7/128", "192.0.2.7/32", 64},
		{"2001:db8::1/128", "2001:db8::/64", 64},
		{"2001:db8::1/128", "2001:db8::1/128", 128},
		{"2001:db8::/48", "2001:db8::/48", 64},
		{"::ffff:0:0/80", "", 64},
	} {
		got, ok := WidenPrefix(netip.MustParsePrefix(tc.in), tc.bits)
		if tc.want == "" {
			if ok {
				t.Errorf("WidenPrefix(%s) = %s, want refused", tc.in, got)
			}
			continue
		}
		if !ok || got.String() != tc.want {
			t.Errorf("WidenPrefix(%s, %d) = %s %v, want %s", tc.in, tc.bits, got, ok, tc.want)
		}
	}
	if got := Widen(netip.MustParseAddr("::ffff:198.51.100.9"), 64); got.String() != "198.51.100.9/32" {
		t.Errorf("Widen(mapped) = %s", got)
	}
	if got := Widen(netip.MustParseAddr("2001:db8:1:2:3:4:5:6"), 56); got.String() != "2001:db8:1::/56" {
		t.Errorf("Widen(v6, 56) = %s", got)
	}
}
