package vpn

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/moat-sh/moat/internal/schema"
)

// Defaults of the wireguard section.
const (
	DefaultWGInterface = "wg0"
	DefaultListenPort  = 51820
	// StateDir holds the interface's private key and the peers' preshared
	// keys, root-only: moat.yaml names public keys only, so it can be
	// shared, diffed and backed up without leaking a secret.
	StateDir = "/var/lib/moat/wireguard"
)

// WireGuard is vpn.wireguard: an interface moat manages, with its peers.
type WireGuard struct {
	// Interface is the WireGuard interface's name (wg0).
	Interface string `yaml:"interface"`
	// Address is the host's own address on the interface, with the
	// subnet its peers take addresses from: 10.42.7.1/24, fd3c:…::1/64.
	Address []IfaceAddr `yaml:"address"`
	// ListenPort is the UDP port peers reach the host on; the firewall
	// opens it to everyone.
	ListenPort int `yaml:"listen_port,omitempty"`
	// Endpoint is the public host:port peers dial, written into their
	// configs; "" means the host's public address, found at `moat vpn add`.
	Endpoint string `yaml:"endpoint,omitempty"`
	// DNS is written into client configs (optional).
	DNS []string `yaml:"dns,omitempty"`
	// AdminSilence is how long no admin peer may go without a handshake
	// before an alert says the way in may be broken (default 7d).
	AdminSilence schema.Duration `yaml:"admin_silence,omitempty"`
	// Peers are the devices allowed in.
	Peers []Peer `yaml:"peers"`
}

// DefaultAdminSilence is AdminSilence's default.
const DefaultAdminSilence = 7 * 24 * time.Hour

// Silence is AdminSilence with its default.
func (w *WireGuard) Silence() time.Duration {
	if w.AdminSilence <= 0 {
		return DefaultAdminSilence
	}
	return w.AdminSilence.D()
}

// Peer is one WireGuard peer.
type Peer struct {
	Name      string `yaml:"name"`
	PublicKey string `yaml:"public_key"`
	// Addresses are the peer's tunnel addresses (/32, /128) and any
	// network routed through it (a home LAN).
	Addresses []schema.CIDR `yaml:"addresses"`
	// Admin peers are the operator's own devices: one of them must have a
	// recent handshake before SSH moves behind the VPN, and a long
	// silence from all of them raises an alert. Default true.
	Admin *bool `yaml:"admin,omitempty"`
	// Keepalive is the persistent keepalive in seconds (0: off).
	Keepalive int `yaml:"keepalive,omitempty"`
}

// IsAdmin reports whether the peer is an admin peer (the default).
func (p Peer) IsAdmin() bool { return p.Admin == nil || *p.Admin }

// IfaceAddr is an interface address with its prefix length:
// 10.42.7.1/24 (host bits set, unlike a schema.CIDR).
type IfaceAddr struct{ netip.Prefix }

// UnmarshalNode implements schema.Unmarshaler.
func (a *IfaceAddr) UnmarshalNode(n *yaml.Node) error {
	s, err := schema.Scalar(n, "an interface address like 10.42.7.1/24")
	if err != nil {
		return err
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Zone() != "" {
		return fmt.Errorf("expected an interface address with its prefix like 10.42.7.1/24 or fd00:1::1/64, found %q", s)
	}
	*a = IfaceAddr{p}
	return nil
}

// Subnet is the network the address is in.
func (a IfaceAddr) Subnet() netip.Prefix { return a.Masked() }

var peerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$`)

// ValidPeerName checks a peer name: it names files and appears in
// commands, so letters, digits, '.', '_' and '-' only, 32 at most.
func ValidPeerName(name string) error {
	if !peerName.MatchString(name) {
		return fmt.Errorf("invalid peer name %q: 1 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// ParseKey checks a base64 WireGuard key (32 bytes).
func ParseKey(s string) ([32]byte, error) {
	var k [32]byte
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		return k, fmt.Errorf("invalid WireGuard key %q: expected 44 characters of base64 (wg genkey | wg pubkey)", s)
	}
	copy(k[:], b)
	return k, nil
}

// Name is the interface name with its default.
func (w *WireGuard) Name() string {
	if w.Interface == "" {
		return DefaultWGInterface
	}
	return w.Interface
}

// Port is the listen port with its default.
func (w *WireGuard) Port() int {
	if w.ListenPort == 0 {
		return DefaultListenPort
	}
	return w.ListenPort
}

// Subnets are the interface's networks.
func (w *WireGuard) Subnets() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range w.Address {
		out = append(out, a.Subnet())
	}
	return out
}

// Peer returns the peer named name.
func (w *WireGuard) Peer(name string) (Peer, bool) {
	for _, p := range w.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return Peer{}, false
}

// Validate checks the section as a whole: names, keys, addresses inside
// the interface's subnets and used once.
func (w *WireGuard) Validate() error {
	var errs []error
	if err := ValidInterface(w.Name()); err != nil || w.Name()[len(w.Name())-1] == '*' {
		errs = append(errs, schema.Errorf("interface", "invalid interface name %q", w.Name()))
	}
	if len(w.Address) == 0 {
		errs = append(errs, schema.Errorf("address", "missing: the host's address on %s with its subnet, like 10.42.7.1/24 (moat vpn init picks one)", w.Name()))
	}
	fam := map[bool]bool{}
	for i, a := range w.Address {
		if fam[a.Addr().Is4()] {
			errs = append(errs, schema.Errorf(indexPath("address", i), "one address per family"))
		}
		fam[a.Addr().Is4()] = true
		if a.Addr() == a.Masked().Addr() || a.Bits() == a.Addr().BitLen() {
			errs = append(errs, schema.Errorf(indexPath("address", i), "%s is not a host address in a subnet: write it like 10.42.7.1/24", a))
		}
	}
	if p := w.ListenPort; p < 0 || p > 65535 {
		errs = append(errs, schema.Errorf("listen_port", "port %d out of range 1 to 65535", p))
	}
	names, keys := map[string]bool{}, map[string]bool{}
	used := map[netip.Addr]string{}
	for _, a := range w.Address {
		used[a.Addr()] = "the host"
	}
	for i, p := range w.Peers {
		at := func(k string) string { return indexPath("peers", i) + k }
		if err := ValidPeerName(p.Name); err != nil {
			errs = append(errs, schema.Errorf(at(".name"), "%v", err))
		} else if names[p.Name] {
			errs = append(errs, schema.Errorf(at(".name"), "peer %q listed twice", p.Name))
		}
		names[p.Name] = true
		if _, err := ParseKey(p.PublicKey); err != nil {
			errs = append(errs, schema.Errorf(at(".public_key"), "%v", err))
		} else if keys[p.PublicKey] {
			errs = append(errs, schema.Errorf(at(".public_key"), "public key of peer %q is another peer's too: each device needs its own key", p.Name))
		}
		keys[p.PublicKey] = true
		if len(p.Addresses) == 0 {
			errs = append(errs, schema.Errorf(at(".addresses"), "peer %q has no address", p.Name))
		}
		for j, a := range p.Addresses {
			if a.IsSingleIP() {
				if !slices.ContainsFunc(w.Subnets(), func(s netip.Prefix) bool { return s.Contains(a.Addr()) }) {
					errs = append(errs, schema.Errorf(at(".addresses"+"["+fmt.Sprint(j)+"]"), "%s is outside %s's subnets %v", a, w.Name(), w.Subnets()))
				}
				if o, dup := used[a.Addr()]; dup {
					errs = append(errs, schema.Errorf(at(".addresses"+"["+fmt.Sprint(j)+"]"), "%s is already %s's", a.Addr(), o))
				}
				used[a.Addr()] = "peer " + p.Name + "'s"
			}
		}
		if p.Keepalive < 0 || p.Keepalive > 65535 {
			errs = append(errs, schema.Errorf(at(".keepalive"), "keepalive %d out of range 0 to 65535 seconds", p.Keepalive))
		}
	}
	return joinErrs(errs)
}
