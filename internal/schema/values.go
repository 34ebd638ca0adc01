package schema

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Port is a TCP or UDP port number, 1 to 65535.
type Port uint16

// UnmarshalNode implements Unmarshaler.
func (p *Port) UnmarshalNode(n *yaml.Node) error {
	s, err := Scalar(n, "a port number")
	if err != nil {
		return err
	}
	v, err := ParsePort(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ParsePort parses a port number.
func ParsePort(s string) (Port, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v < 1 || v > 65535 {
		return 0, fmt.Errorf("expected a port from 1 to 65535, found %q", s)
	}
	return Port(v), nil
}

// PortSpec is a port or port range with its protocol, written "443",
// "443/tcp", "51820/udp" or "60000-61000/udp". The protocol defaults to tcp.
type PortSpec struct {
	Proto    string // "tcp" or "udp"
	From, To uint16 // To == From for a single port
}

// ParsePortSpec parses the PortSpec forms above.
func ParsePortSpec(s string) (PortSpec, error) {
	bad := fmt.Errorf("expected a port like 443, 443/tcp or 60000-61000/udp, found %q", s)
	body, proto, hasProto := strings.Cut(s, "/")
	if !hasProto {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return PortSpec{}, fmt.Errorf("unknown protocol %q in %q: expected tcp or udp", proto, s)
	}
	lo, hi, isRange := strings.Cut(body, "-")
	from, err := ParsePort(lo)
	if err != nil {
		return PortSpec{}, bad
	}
	to := from
	if isRange {
		if to, err = ParsePort(hi); err != nil {
			return PortSpec{}, bad
		}
		if to < from {
			return PortSpec{}, fmt.Errorf("port range %q runs backwards", s)
		}
	}
	return PortSpec{Proto: proto, From: uint16(from), To: uint16(to)}, nil
}

// UnmarshalNode implements Unmarshaler.
func (p *PortSpec) UnmarshalNode(n *yaml.Node) error {
	s, err := Scalar(n, "a port like 443/tcp")
	if err != nil {
		return err
	}
	v, err := ParsePortSpec(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Contains reports whether port lies in the spec's range.
func (p PortSpec) Contains(proto string, port uint16) bool {
	return p.Proto == proto && p.From <= port && port <= p.To
}

func (p PortSpec) String() string {
	if p.From == p.To {
		return fmt.Sprintf("%d/%s", p.From, p.Proto)
	}
	return fmt.Sprintf("%d-%d/%s", p.From, p.To, p.Proto)
}

// CIDR is an IPv4 or IPv6 network. A bare address means that one host
// (/32 or /128). Host bits must be zero, so a typo cannot widen a rule
// silently.
type CIDR struct{ netip.Prefix }

// ParseCIDR parses a CIDR or a bare address.
func ParseCIDR(s string) (CIDR, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return CIDR{}, fmt.Errorf("expected an address or CIDR like 203.0.113.7 or 10.0.0.0/8, found %q", s)
		}
		a = a.Unmap()
		return CIDR{netip.PrefixFrom(a, a.BitLen())}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return CIDR{}, fmt.Errorf("expected a CIDR like 10.0.0.0/8 or fd00::/8, found %q", s)
	}
	if p.Masked() != p {
		return CIDR{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
	}
	return CIDR{p}, nil
}

// MustCIDR is ParseCIDR for constants.
func MustCIDR(s string) CIDR {
	c, err := ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return c
}

// UnmarshalNode implements Unmarshaler.
func (c *CIDR) UnmarshalNode(n *yaml.Node) error {
	s, err := Scalar(n, "an address or CIDR")
	if err != nil {
		return err
	}
	v, err := ParseCIDR(s)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Duration is a time span written like 30s, 10m, 1h30m, 7d or 2w.
type Duration time.Duration

// Permanent is the Duration written "permanent": a ban that never ends.
// Only fields tagged `yaml:"name,permanent"` accept it (the decoder
// refuses it elsewhere); consumers test for it before adding it to a time.
const Permanent = Duration(math.MaxInt64)

// ParseDuration accepts time.ParseDuration's units plus d (24h) and w
// (7d), and "permanent" (see Permanent).
func ParseDuration(s string) (Duration, error) {
	bad := fmt.Errorf("expected a duration like 30s, 10m, 1h or 7d, found %q", s)
	if strings.HasPrefix(s, "-") {
		// fail2ban's bantime = -1.
		bad = fmt.Errorf("expected a duration like 30s, 10m, 1h or 7d, found %q (a ban that never ends is bantime: permanent)", s)
	}
	if s == "" {
		return 0, bad
	}
	if s == "permanent" {
		return Permanent, nil
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') && rest[j] != '.' {
			j++
		}
		if i == 0 || j == i {
			return 0, bad
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		var mult time.Duration
		switch unit {
		case "d":
			mult = 24 * time.Hour
		case "w":
			mult = 7 * 24 * time.Hour
		default:
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, bad
			}
			total += d
			continue
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, bad
		}
		total += time.Duration(f * float64(mult))
	}
	if total < 0 {
		return 0, bad
	}
	return Duration(total), nil
}

// UnmarshalNode implements Unmarshaler.
func (d *Duration) UnmarshalNode(n *yaml.Node) error {
	s, err := Scalar(n, "a duration like 10m")
	if err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string {
	if d == Permanent {
		return "permanent"
	}
	t := time.Duration(d)
	if t != 0 && t%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", t/(24*time.Hour))
	}
	return t.String()
}

// Size is a number of bytes written like 512MiB, 2GiB or 2G (powers of
// 1024 either way, as free(1) and fallocate(1) read them).
type Size uint64

// ParseSize parses a Size.
func ParseSize(s string) (Size, error) {
	bad := fmt.Errorf("expected a size like 512MiB or 2GiB, found %q", s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, bad
	}
	v, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		return 0, bad
	}
	var shift uint
	switch strings.TrimSpace(s[i:]) {
	case "", "B":
	case "K", "KB", "KiB":
		shift = 10
	case "M", "MB", "MiB":
		shift = 20
	case "G", "GB", "GiB":
		shift = 30
	case "T", "TB", "TiB":
		shift = 40
	default:
		return 0, bad
	}
	if v > (1<<63)>>shift {
		return 0, bad
	}
	return Size(v << shift), nil
}

// UnmarshalNode implements Unmarshaler.
func (z *Size) UnmarshalNode(n *yaml.Node) error {
	s, err := Scalar(n, "a size like 2GiB")
	if err != nil {
		return err
	}
	v, err := ParseSize(s)
	if err != nil {
		return err
	}
	*z = v
	return nil
}

func (z Size) String() string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if z != 0 && z%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", z>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%dB", uint64(z))
}

// Rate is an event rate written like 10/s, 30/minute or 1000/hour.
type Rate struct {
	N   int
	Per time.Duration
}

// ParseRate parses a Rate.
func ParseRate(s string) (Rate, error) {
	bad := fmt.Errorf("expected a rate like 10/s, 30/minute or 1000/hour, found %q", s)
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, bad
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return Rate{}, bad
	}
	var per time.Duration
	switch unit {
	case "s", "sec", "second":
		per = time.Second
	case "m", "min", "minute":
		per = time.Minute
	case "h", "hour":
		per = time.Hour
	case "d", "day":
		per = 24 * time.Hour
	default:
		return Rate{}, bad
	}
	return Rate{N: n, Per: per}, nil
}

// UnmarshalNode implements Unmarshaler.
func (r *Rate) UnmarshalNode(n *yaml.Node) error {
	s, err := Scalar(n, "a rate like 10/s")
	if err != nil {
		return err
	}
	v, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// PerSecond returns the rate as events per second.
func (r Rate) PerSecond() float64 {
	if r.Per == 0 {
		return 0
	}
	return float64(r.N) / r.Per.Seconds()
}

func (r Rate) String() string {
	unit := map[time.Duration]string{time.Second: "second", time.Minute: "minute", time.Hour: "hour", 24 * time.Hour: "day"}[r.Per]
	return fmt.Sprintf("%d/%s", r.N, unit)
}

// Country is an ISO 3166-1 alpha-2 country code, upper case.
type Country string

// ParseCountry validates a country code (either case).
func ParseCountry(s string) (Country, error) {
	u := strings.ToUpper(s)
	if len(u) != 2 || !strings.Contains(countryCodes, " "+u+" ") {
		return "", fmt.Errorf("expected an ISO 3166-1 alpha-2 country code like DE or US, found %q", s)
	}
	return Country(u), nil
}

// UnmarshalNode implements Unmarshaler.
func (c *Country) UnmarshalNode(n *yaml.Node) error {
	s, err := Scalar(n, "a country code like DE")
	if err != nil {
		return err
	}
	v, err := ParseCountry(s)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// countryCodes lists ISO 3166-1 alpha-2 as assigned, plus EU and XK which
// the common geo databases use.
const countryCodes = " AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET EU FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW "

// OneOf checks s against the allowed values of an enumerated key.
func OneOf(s string, allowed ...string) error {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return fmt.Errorf("expected one of %s, found %q", strings.Join(allowed, ", "), s)
}

// Exposure is how far a service is reachable: the staged path of SSH from
// the internet to the VPN only.
type Exposure string

// The exposure stages, in the order an operator moves through them.
const (
	ExposurePublic    Exposure = "public"     // stage 1: reachable from the internet
	ExposureVPNPublic Exposure = "vpn+public" // stage 2: both, while the VPN path is proven
	ExposureVPN       Exposure = "vpn"        // stage 3: VPN only
)

// UnmarshalNode implements Unmarshaler.
func (e *Exposure) UnmarshalNode(n *yaml.Node) error {
	s, err := Scalar(n, "public, vpn+public or vpn")
	if err != nil {
		return err
	}
	if err := OneOf(s, "public", "vpn+public", "vpn"); err != nil {
		return err
	}
	*e = Exposure(s)
	return nil
}

// Public reports whether the internet may reach the service.
func (e Exposure) Public() bool { return e == ExposurePublic || e == ExposureVPNPublic || e == "" }

// VPN reports whether the VPN may reach the service.
func (e Exposure) VPN() bool { return e == ExposureVPN || e == ExposureVPNPublic }
