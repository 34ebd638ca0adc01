package probe

import (
	"fmt"
	"slices"
	"strings"
)

// Intent is the exposure moat.yaml declares, as the probe holds it
// against what it sees. The CLI builds it from the config; the probe
// imports no layer.
type Intent struct {
	// Source names the config file.
	Source string `json:"source"`
	// PublicTCP and PublicUDP are firewall.public (plus the gateway's
	// listening ports).
	PublicTCP []PortRange `json:"public_tcp"`
	PublicUDP []PortRange `json:"public_udp,omitempty"`
	// SSHPort and SSHExposure are ssh.port and ssh.exposure ("public",
	// "vpn+public", "vpn").
	SSHPort     uint16 `json:"ssh_port"`
	SSHExposure string `json:"ssh_exposure"`
	// Sites are gateway.sites' host names.
	Sites []string `json:"sites,omitempty"`
	// Routes are the gateway's routes.
	Routes []Route `json:"routes,omitempty"`
	// Admin is the admin user.
	Admin string `json:"admin,omitempty"`
}

// PortRange is an inclusive port range.
type PortRange struct {
	From uint16 `json:"from"`
	To   uint16 `json:"to"`
}

func (r PortRange) String() string {
	if r.From == r.To {
		return fmt.Sprint(r.From)
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

func inRanges(rs []PortRange, p uint16) bool {
	return slices.ContainsFunc(rs, func(r PortRange) bool { return p >= r.From && p <= r.To })
}

// SSHPublic reports whether the declared exposure lets the internet reach
// SSH.
func (in *Intent) SSHPublic() bool {
	return in.SSHExposure == "" || strings.Contains(in.SSHExposure, "public")
}

// DeclaredTCP reports whether port is meant to be reachable from outside.
func (in *Intent) DeclaredTCP(port uint16) bool {
	if inRanges(in.PublicTCP, port) {
		return true
	}
	return port == in.SSHPort && in.SSHPublic()
}

// DeclaredUDP reports whether a UDP port is meant to be reachable.
func (in *Intent) DeclaredUDP(port uint16) bool { return inRanges(in.PublicUDP, port) }

// Site reports whether name is one of the gateway's sites.
func (in *Intent) Site(name string) bool {
	for _, s := range in.Sites {
		if strings.EqualFold(s, name) || (strings.HasPrefix(s, "*.") && strings.HasSuffix(strings.ToLower(name), strings.ToLower(s[1:]))) {
			return true
		}
	}
	return false
}
