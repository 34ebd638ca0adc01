package vpn

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// ClientConfig is a peer's side of the tunnel, in wg-quick's format: what
// `moat vpn add` prints and encodes as a QR code for the WireGuard apps,
// and what `moat vpn up --client FILE` brings up.
type ClientConfig struct {
	PrivateKey string // "" when the peer brought its own key
	Address    []netip.Prefix
	DNS        []string
	ListenPort int

	PeerPublicKey string
	PresharedKey  string
	Endpoint      string
	AllowedIPs    []netip.Prefix
	Keepalive     int
}

// Render writes the config in wg-quick's format. A peer that brought its
// own key gets a placeholder line it must fill in.
func (c ClientConfig) Render() string {
	var b strings.Builder
	b.WriteString("[Interface]\n")
	if c.PrivateKey != "" {
		b.WriteString("PrivateKey = " + c.PrivateKey + "\n")
	} else {
		b.WriteString("# PrivateKey = (the private key of the public key you gave)\n")
	}
	b.WriteString("Address = " + joinPrefixes(c.Address) + "\n")
	if len(c.DNS) > 0 {
		b.WriteString("DNS = " + strings.Join(c.DNS, ", ") + "\n")
	}
	if c.ListenPort != 0 {
		b.WriteString("ListenPort = " + strconv.Itoa(c.ListenPort) + "\n")
	}
	b.WriteString("\n[Peer]\n")
	b.WriteString("PublicKey = " + c.PeerPublicKey + "\n")
	if c.PresharedKey != "" {
		b.WriteString("PresharedKey = " + c.PresharedKey + "\n")
	}
	b.WriteString("Endpoint = " + c.Endpoint + "\n")
	b.WriteString("AllowedIPs = " + joinPrefixes(c.AllowedIPs) + "\n")
	if c.Keepalive > 0 {
		b.WriteString("PersistentKeepalive = " + strconv.Itoa(c.Keepalive) + "\n")
	}
	return b.String()
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// maxClientConfig bounds what ParseClientConfig reads.
const maxClientConfig = 64 << 10

// ParseClientConfig reads a wg-quick config with one [Peer]. Unknown keys
// (PostUp, Table, …) are refused rather than ignored: a config moat
// brings up must mean exactly what it says, and PostUp runs commands.
func ParseClientConfig(data string) (ClientConfig, error) {
	var c ClientConfig
	if len(data) > maxClientConfig {
		return c, fmt.Errorf("client config is %d bytes: more than %d", len(data), maxClientConfig)
	}
	section, peers := "", 0
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), maxClientConfig)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") {
			switch strings.ToLower(line) {
			case "[interface]":
				if section != "" {
					return c, fmt.Errorf("line %d: [Interface] must come first, once", n)
				}
			case "[peer]":
				if section == "" {
					return c, fmt.Errorf("line %d: [Peer] before [Interface]", n)
				}
				if peers++; peers > 1 {
					return c, fmt.Errorf("line %d: more than one [Peer]: moat brings up client configs with one peer", n)
				}
			default:
				return c, fmt.Errorf("line %d: unknown section %s", n, line)
			}
			section = strings.ToLower(line)
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return c, fmt.Errorf("line %d: expected Key = Value", n)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		var err error
		switch section + k {
		case "[interface]privatekey":
			_, err = ParseKey(v)
			c.PrivateKey = v
		case "[interface]address":
			c.Address, err = parseAddrList(v)
		case "[interface]dns":
			c.DNS = splitList(v)
		case "[interface]listenport":
			c.ListenPort, err = parsePort(v)
		case "[peer]publickey":
			_, err = ParseKey(v)
			c.PeerPublicKey = v
		case "[peer]presharedkey":
			_, err = ParseKey(v)
			c.PresharedKey = v
		case "[peer]endpoint":
			if _, err = netip.ParseAddrPort(v); err != nil {
				err = fmt.Errorf("endpoint %q: expected IP:port (moat resolves no names)", v)
			}
			c.Endpoint = v
		case "[peer]allowedips":
			c.AllowedIPs, err = parseAddrList(v)
		case "[peer]persistentkeepalive":
			c.Keepalive, err = strconv.Atoi(v)
			if err == nil && (c.Keepalive < 0 || c.Keepalive > 65535) {
				err = fmt.Errorf("keepalive %d out of range", c.Keepalive)
			}
		case "[interface]", "[peer]":
		default:
			err = fmt.Errorf("unsupported key %q in %s", k, section)
		}
		if err != nil {
			return c, fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	switch {
	case section == "":
		return c, fmt.Errorf("no [Interface] section")
	case peers == 0:
		return c, fmt.Errorf("no [Peer] section")
	case c.PeerPublicKey == "":
		return c, fmt.Errorf("[Peer] has no PublicKey")
	}
	return c, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parseAddrList(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range splitList(v) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q: expected an address or CIDR", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePort(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("port %q out of range 0 to 65535", v)
	}
	return n, nil
}

// PeerConfig is the config's [Peer] in wgctrl form.
func (c ClientConfig) PeerConfig() (wgtypes.PeerConfig, error) {
	pub, err := wgtypes.ParseKey(c.PeerPublicKey)
	if err != nil {
		return wgtypes.PeerConfig{}, err
	}
	pc := wgtypes.PeerConfig{PublicKey: pub, ReplaceAllowedIPs: true}
	if c.PresharedKey != "" {
		psk, err := wgtypes.ParseKey(c.PresharedKey)
		if err != nil {
			return pc, err
		}
		pc.PresharedKey = &psk
	}
	if c.Endpoint != "" {
		ap, err := netip.ParseAddrPort(c.Endpoint)
		if err != nil {
			return pc, err
		}
		pc.Endpoint = net.UDPAddrFromAddrPort(ap)
	}
	ka := time.Duration(c.Keepalive) * time.Second
	pc.PersistentKeepaliveInterval = &ka
	for _, p := range c.AllowedIPs {
		pc.AllowedIPs = append(pc.AllowedIPs, ipNet(p.Masked()))
	}
	return pc, nil
}
