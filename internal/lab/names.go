package lab

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// A namespace is named mt<token><lab>-<host>, e.g. "mtk3x7q1-vps": the
// 5-character token names the owning process (see janitor.go), <lab> counts
// labs in base 36 within it.
const (
	namePrefix = "mt"
	tokenLen   = 5
)

var (
	nsNameRE   = regexp.MustCompile(`^mt[a-z2-7]{5}[0-9a-z]+-[a-z][a-z0-9-]*$`)
	hostNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)
)

// tokenOf returns the owner token of a lab namespace name, or "" when the name
// is not one of ours.
func tokenOf(name string) string {
	if !nsNameRE.MatchString(name) {
		return ""
	}
	return name[len(namePrefix) : len(namePrefix)+tokenLen]
}

func checkHostName(name string) error {
	if !hostNameRE.MatchString(name) {
		return fmt.Errorf("host name %q: want 1-20 of [a-z0-9-], starting with a letter", name)
	}
	return nil
}

// checkIfName mirrors the kernel's rule for interface names (IFNAMSIZ 16,
// counting the NUL).
func checkIfName(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n") {
		return fmt.Errorf("interface name %q: want 1-15 characters without '/', ':' or spaces", name)
	}
	return nil
}

func parsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	ps := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("address %q: want CIDR like 198.51.100.1/24 or 2001:db8::1/64: %w", c, err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}
