package ban

import (
	"fmt"
	"net/netip"
	"strings"
)

// Protected is a range an operator's ban must not touch without --force,
// and why.
type Protected struct {
	Prefix netip.Prefix
	Why    string // "host.admin.sources", "the VPN", "your SSH session", …
}

// LoopbackRanges are never worth banning: a ban of them breaks the host's
// own services.
var LoopbackRanges = []Protected{
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
}

// CheckManual refuses a manual ban of p that overlaps a protected range
// (a ban of a network holding the admin's address counts): the error
// names every reason and the way past it.
func CheckManual(p netip.Prefix, protected []Protected) error {
	p, ok := CanonicalPrefix(p)
	if !ok {
		return fmt.Errorf("invalid prefix %v", p)
	}
	var why []string
	seen := map[string]bool{}
	for _, r := range protected {
		q, ok := CanonicalPrefix(r.Prefix)
		if !ok || !q.Overlaps(p) {
			continue
		}
		s := fmt.Sprintf("%s (%s)", q, r.Why)
		if !seen[s] {
			seen[s] = true
			why = append(why, s)
		}
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("refusing to ban %s: it covers %s; a ban would cut them off (use --force if you mean it)", p, strings.Join(why, ", "))
}
