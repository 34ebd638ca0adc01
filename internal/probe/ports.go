package probe

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// TopTCP are the TCP ports --ports top scans: the usual services, the
// admin and datastore ports that must never face the internet, and common
// alternates.
var TopTCP = []uint16{
	21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 389, 443, 445, 465, 587,
	631, 873, 993, 995, 1080, 1433, 1521, 1883, 2049, 2222, 2375, 2376, 2379,
	2380, 3000, 3306, 3389, 4369, 5000, 5432, 5601, 5672, 5900, 5984, 6379,
	6443, 7001, 8000, 8008, 8080, 8081, 8086, 8088, 8443, 8500, 8888, 9000,
	9090, 9092, 9100, 9200, 9300, 9418, 10250, 11211, 15672, 25565, 27017,
	27018, 28017, 50000,
}

// ParsePorts reads --ports: "all" (1-65535), "top" (TopTCP) or a list of
// ports and ranges ("22,80,443,8000-8100"). The result is sorted and has no
// duplicates.
func ParsePorts(s string) ([]uint16, error) {
	switch strings.TrimSpace(s) {
	case "", "all":
		out := make([]uint16, 0, 65535)
		for p := 1; p <= 65535; p++ {
			out = append(out, uint16(p))
		}
		return out, nil
	case "top":
		return slices.Sorted(slices.Values(TopTCP)), nil
	}
	var out []uint16
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := parsePort(lo)
		if err != nil {
			return nil, fmt.Errorf("--ports %q: %w (expected all, top or a list like 22,80,8000-8100)", s, err)
		}
		b := a
		if isRange {
			if b, err = parsePort(hi); err != nil {
				return nil, fmt.Errorf("--ports %q: %w", s, err)
			}
			if b < a {
				return nil, fmt.Errorf("--ports %q: range %s runs backwards", s, f)
			}
		}
		for p := int(a); p <= int(b); p++ {
			out = append(out, uint16(p))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(n), nil
}
