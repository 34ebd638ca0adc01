package ban

import (
	"strings"
	"testing"
)

func TestCheckManual(t *testing.T) {
	prot := append([]Protected{
		{pfx("198.51.100.7/32"), "host.admin.sources"},
		{pfx("100.64.0.0/10"), "the VPN"},
		{pfx("203.0.113.9/32"), "your SSH session"},
		{pfx("192.0.2.10/32"), "this host's address"},
		{pfx("2001:db8::5/128"), "this host's address"},
	}, LoopbackRanges...)
	for in, want := range map[string]string{
		"198.51.100.7/32":      "host.admin.sources",
		"198.51.100.0/24":      "198.51.100.7/32 (host.admin.sources)", // a network holding it
		"100.100.1.1/32":       "the VPN",
		"203.0.113.9/32":       "your SSH session",
		"127.0.0.1/32":         "loopback",
		"::ffff:127.0.0.1/128": "loopback",
		"::1/128":              "loopback",
		"192.0.2.10/32":        "this host",
		"2001:db8::/64":        "this host",
		"0.0.0.0/0":            "loopback",
		"198.51.100.8/32":      "",
		"2001:db8:1::/48":      "",
	} {
		err := CheckManual(pfx(in), prot)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s refused: %v", in, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--force")):
			t.Errorf("%s: %v, want a refusal naming %q and --force", in, err, want)
		}
	}
}
