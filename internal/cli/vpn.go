package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/harden"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

func init() {
	register(command{"vpn", "vpn init|add|peers|remove|rotate|up: the WireGuard interface moat manages, and its peers", 36, runVPN})
}

const vpnUsage = `Usage: moat vpn SUBCOMMAND [flags]

  init                   keys, wg0's address and port, written to vpn.wireguard in moat.yaml
  add NAME               a peer: prints its client config and a QR code (then: moat apply)
  peers [--json]         peers with endpoint, latest handshake and transfer
  remove NAME            drop a peer from moat.yaml (then: moat apply)
  rotate NAME            new keys for a peer, same address (then: moat apply)
  up                     bring the interface up and hold it (moat-vpn.service runs this)
  up --client FILE       bring a client config up (a test or a second host)
`

// vpnSecondPaths are the checks that prove a second working path into
// the VPN before SSH moves behind it; each VPN moat knows adds its own
// from its own file, returning nil when c does not use that VPN. The
// Tailscale one (key expiry disabled or more than 30 days away) is
//
//	func init() {
//		vpnSecondPaths = append(vpnSecondPaths, func(c *config.Config, root string) harden.PathCheck {
//			if !slices.Contains(c.VPN.Interfaces, "tailscale0") {
//				return nil
//			}
//			return func(ctx context.Context) (string, error) { return tailscale.SecondPath(ctx, …) }
//		})
//	}
var vpnSecondPaths []func(c *config.Config, root string) harden.PathCheck

func init() {
	vpnSecondPaths = append(vpnSecondPaths, wireGuardSecondPath)
}

// secondPaths are the checks that apply to c.
func secondPaths(c *config.Config, root string) []harden.PathCheck {
	var out []harden.PathCheck
	for _, f := range vpnSecondPaths {
		if pc := f(c, root); pc != nil {
			out = append(out, pc)
		}
	}
	return out
}

// wireGuardSecondPath: an admin peer with a handshake in the last 10
// minutes on the interface moat manages.
func wireGuardSecondPath(c *config.Config, _ string) harden.PathCheck {
	w := c.VPN.WireGuard
	if w == nil {
		return nil
	}
	return func(context.Context) (string, error) {
		dev, err := vpn.Show(w.Name())
		if err != nil && !errors.Is(err, vpn.ErrNoDevice) {
			return "", err
		}
		return w.AdminHandshake(dev, time.Now(), vpn.SecondPathAge)
	}
}

// vpnStep is the vpn layer's step of a change: peers synced live.
func vpnStep(ctx context.Context, c *config.Config, root string) (*change.Step, error) {
	return vpn.MakeStep(ctx, vpn.StepInput{WireGuard: c.VPN.WireGuard, Keys: vpn.Keys{Root: root}})
}

// wireGuardPort is the UDP port the firewall opens for the managed
// interface, if any.
func wireGuardPort(c *config.Config) (schema.PortSpec, bool) {
	if c.VPN.WireGuard == nil {
		return schema.PortSpec{}, false
	}
	p := uint16(c.VPN.WireGuard.Port())
	return schema.PortSpec{Proto: "udp", From: p, To: p}, true
}

func runVPN(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, vpnUsage)
		return ExitUsage
	}
	switch args[0] {
	case "init":
		return runVPNInit(e, args[1:])
	case "add":
		return runVPNAdd(e, args[1:])
	case "peers":
		return runVPNPeers(e, args[1:])
	case "remove":
		return runVPNRemove(e, args[1:])
	case "rotate":
		return runVPNRotate(e, args[1:])
	case "up":
		return runVPNUp(e, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, vpnUsage)
		return ExitOK
	}
	fmt.Fprintf(e.stderr, "moat vpn: unknown subcommand %q\n\n%s", args[0], vpnUsage)
	return ExitUsage
}

// vpnConfig loads moat.yaml and its wireguard section.
func vpnConfig(e *env, f *flags, verb string) (*config.Config, *vpn.WireGuard, int, bool) {
	c, code, ok := loadConfig(e, f)
	if !ok {
		return nil, nil, code, false
	}
	if c.VPN.WireGuard == nil {
		fmt.Fprintf(e.stderr, "moat vpn %s: moat.yaml has no vpn.wireguard section: run moat vpn init first\n", verb)
		return nil, nil, ExitUsage, false
	}
	return c, c.VPN.WireGuard, 0, true
}

// saveWireGuard writes w into moat.yaml, refusing an edit that would not
// load.
func saveWireGuard(path string, w *vpn.WireGuard) error {
	cf, err := vpn.OpenConfigFile(path)
	if err != nil {
		return err
	}
	if err := cf.SetWireGuard(w); err != nil {
		return err
	}
	return cf.Save(func(b []byte) error {
		_, err := config.Parse(path, b)
		return err
	})
}

// takenPrefixes are the networks a new VPN subnet must not overlap: the
// host's addresses (docker0 and br-* bridges included) and its routes.
func takenPrefixes(ctx context.Context) []netip.Prefix {
	var out []netip.Prefix
	ifs, _ := host.New("").Interfaces()
	for _, i := range ifs {
		for _, a := range i.Addrs {
			out = append(out, a.Masked())
		}
	}
	for _, fam := range []string{"-4", "-6"} {
		b, err := exec.CommandContext(ctx, "ip", "-j", fam, "route", "show", "table", "all").Output()
		if err != nil {
			continue
		}
		var routes []struct {
			Dst string `json:"dst"`
		}
		if json.Unmarshal(b, &routes) != nil {
			continue
		}
		for _, r := range routes {
			if p, err := netip.ParsePrefix(r.Dst); err == nil {
				out = append(out, p)
			} else if a, err := netip.ParseAddr(r.Dst); err == nil {
				out = append(out, netip.PrefixFrom(a, a.BitLen()))
			}
		}
	}
	// Docker's default address pools, where it creates networks later.
	out = append(out, netip.MustParsePrefix("172.17.0.0/16"), netip.MustParsePrefix("172.18.0.0/15"))
	return out
}

func runVPNInit(e *env, args []string) int {
	f := newFlags(e, "vpn init", "vpn init [--address CIDR,...] [--ipv6] [--port N] [--endpoint IP:PORT] [--interface wg0] [-c FILE] [--root DIR]").withRoot()
	addr := f.String("address", "", "the host's address(es) on the interface, like 10.42.7.1/24 (default: a free random 10.x.y.1/24)")
	ipv6 := f.Bool("ipv6", false, "also give the interface a random ULA /64")
	port := f.Int("port", vpn.DefaultListenPort, "UDP listen port")
	endpoint := f.String("endpoint", "", "public IP:port peers dial (default: found at moat vpn add)")
	iface := f.String("interface", vpn.DefaultWGInterface, "interface name")
	if code, ok := f.parse(args); !ok {
		return code
	}
	path := config.Path(f.config)
	c := config.Default()
	if _, err := os.Stat(path); err == nil {
		var code int
		var ok bool
		if c, code, ok = loadConfig(e, f); !ok {
			return code
		}
	} // a missing moat.yaml is started with the wireguard section alone
	keys := vpn.Keys{Root: f.root}
	if w := c.VPN.WireGuard; w != nil {
		key, _, err := keys.EnsurePrivate(w.Name())
		if err != nil {
			fmt.Fprintf(e.stderr, "moat vpn init: %v\n", err)
			return ExitRuntime
		}
		fmt.Fprintf(e.stdout, "%s is already set up in %s (address %v, port %d, public key %s): nothing changed\n", w.Name(), path, w.Address, w.Port(), key.PublicKey())
		return ExitOK
	}
	w := &vpn.WireGuard{Interface: *iface, ListenPort: *port, Endpoint: *endpoint}
	if *iface == vpn.DefaultWGInterface {
		w.Interface = ""
	}
	if *port == vpn.DefaultListenPort {
		w.ListenPort = 0
	}
	ctx := context.Background()
	taken := takenPrefixes(ctx)
	if *addr != "" {
		for _, s := range strings.Split(*addr, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				fmt.Fprintf(e.stderr, "moat vpn init: --address %q: expected an address with its prefix, like 10.42.7.1/24\n", s)
				return ExitUsage
			}
			for _, t := range taken {
				if t.Overlaps(p.Masked()) && t.Bits() > 0 {
					fmt.Fprintf(e.stderr, "moat vpn init: --address %s overlaps %s, already on this host: pick another range\n", p, t)
					return ExitUsage
				}
			}
			w.Address = append(w.Address, vpn.IfaceAddr{Prefix: p})
		}
	} else {
		p, err := vpn.PickSubnet4(taken)
		if err != nil {
			fmt.Fprintf(e.stderr, "moat vpn init: %v\n", err)
			return ExitRuntime
		}
		w.Address = append(w.Address, vpn.IfaceAddr{Prefix: p})
	}
	if *ipv6 && !slices.ContainsFunc(w.Address, func(a vpn.IfaceAddr) bool { return a.Addr().Is6() }) {
		p, err := vpn.PickSubnet6(taken)
		if err != nil {
			fmt.Fprintf(e.stderr, "moat vpn init: %v\n", err)
			return ExitRuntime
		}
		w.Address = append(w.Address, vpn.IfaceAddr{Prefix: p})
	}
	if err := w.Validate(); err != nil {
		fmt.Fprintf(e.stderr, "moat vpn init: %v\n", err)
		return ExitUsage
	}
	key, _, err := keys.EnsurePrivate(w.Name())
	if err != nil {
		fmt.Fprintf(e.stderr, "moat vpn init: %v\n", err)
		return ExitRuntime
	}
	if err := saveWireGuard(path, w); err != nil {
		fmt.Fprintf(e.stderr, "moat vpn init: %v\n", err)
		return ExitRuntime
	}
	fmt.Fprintf(e.stdout, `%s: address %v, UDP port %d, public key %s
private key: %s (0600)
written: vpn.wireguard in %s

Next:
  moat apply                      opens UDP %d in the firewall (one transaction, as always)
  systemctl enable --now moat-vpn brings %s up now and at every boot (or: moat vpn up)
  moat vpn add laptop             a peer, with its config and a QR code for the phone apps
`, w.Name(), w.Address, w.Port(), key.PublicKey(), keys.PrivatePath(w.Name()), path, w.Port(), w.Name())
	return ExitOK
}

// peerFlags are add's and rotate's output flags.
type peerOutput struct {
	output, qr *string
	noQR       *bool
}

func addPeerOutputFlags(f *flags) peerOutput {
	return peerOutput{
		output: f.String("output", "", "also write the client config to `file` (0600)"),
		qr:     f.String("qr", "", "also write the QR code as a PNG `file`"),
		noQR:   f.Bool("no-qr", false, "do not print the QR code"),
	}
}

func runVPNAdd(e *env, args []string) int {
	f := newFlags(e, "vpn add", "vpn add NAME [--ipv6] [--allowed-ips CIDR,...] [--dns ADDR,...] [--pubkey KEY] [--output FILE] [--qr PNG] [-c FILE]").withRoot()
	ipv6 := f.Bool("ipv6", false, "also give the peer an IPv6 address (the interface needs one: moat vpn init --ipv6)")
	allowed := f.String("allowed-ips", "", "what the client routes into the tunnel (default: the VPN's subnets; 0.0.0.0/0,::/0 for everything)")
	dns := f.String("dns", "", "DNS servers for the client config")
	pubkey := f.String("pubkey", "", "the peer's own public key (it keeps its private key; none is generated)")
	admin := f.Bool("admin", true, "an admin peer: counts as the second path for SSH over the VPN, and its silence alerts")
	keepalive := f.Int("keepalive", 25, "persistent keepalive in seconds for the client (0: off)")
	endpoint := f.String("endpoint", "", "public IP:port the client dials (default: vpn.wireguard.endpoint, else this host's public address)")
	out := addPeerOutputFlags(f)
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() != 1 {
		fmt.Fprintln(e.stderr, "Usage: moat vpn add NAME [flags]")
		return ExitUsage
	}
	name := f.Arg(0)
	if err := vpn.ValidPeerName(name); err != nil {
		fmt.Fprintf(e.stderr, "moat vpn add: %v\n", err)
		return ExitUsage
	}
	c, w, code, ok := vpnConfig(e, f, "add")
	if !ok {
		return code
	}
	if _, dup := w.Peer(name); dup {
		fmt.Fprintf(e.stderr, "moat vpn add: peer %q exists: pick another name, or moat vpn rotate %s for new keys\n", name, name)
		return ExitUsage
	}
	p := vpn.Peer{Name: name}
	if !*admin {
		p.Admin = new(bool)
	}
	for _, fam := range []int{4, 6} {
		if fam == 6 && !*ipv6 {
			continue
		}
		a, err := w.NextFree(fam)
		if err != nil {
			if fam == 4 && *ipv6 {
				continue
			}
			fmt.Fprintf(e.stderr, "moat vpn add: %v\n", err)
			return ExitUsage
		}
		p.Addresses = append(p.Addresses, schema.CIDR{Prefix: netip.PrefixFrom(a, a.BitLen())})
	}
	cc, code, ok := newPeerKeys(e, f, c, w, &p, *pubkey, "add")
	if !ok {
		return code
	}
	w.Peers = append(w.Peers, p)
	return finishPeer(e, f, c, w, p, cc, peerOpts{allowed: *allowed, dns: *dns, keepalive: *keepalive, endpoint: *endpoint}, out, "add")
}

type peerOpts struct {
	allowed, dns, endpoint string
	keepalive              int
}

// newPeerKeys gives p a public key (its own or the one given) and a fresh
// preshared key, and starts its client config.
func newPeerKeys(e *env, f *flags, c *config.Config, w *vpn.WireGuard, p *vpn.Peer, pubkey, verb string) (vpn.ClientConfig, int, bool) {
	var cc vpn.ClientConfig
	if pubkey != "" {
		if _, err := vpn.ParseKey(pubkey); err != nil {
			fmt.Fprintf(e.stderr, "moat vpn %s: --pubkey: %v\n", verb, err)
			return cc, ExitUsage, false
		}
		p.PublicKey = pubkey
	} else {
		k, err := wgtypes.GeneratePrivateKey()
		if err != nil {
			fmt.Fprintf(e.stderr, "moat vpn %s: %v\n", verb, err)
			return cc, ExitRuntime, false
		}
		cc.PrivateKey = k.String()
		p.PublicKey = k.PublicKey().String()
	}
	for _, o := range w.Peers {
		if o.PublicKey == p.PublicKey && o.Name != p.Name {
			fmt.Fprintf(e.stderr, "moat vpn %s: that public key is peer %s's: each device needs its own\n", verb, o.Name)
			return cc, ExitUsage, false
		}
	}
	psk, err := vpn.Keys{Root: f.root}.NewPreshared(p.PublicKey)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat vpn %s: %v\n", verb, err)
		return cc, ExitRuntime, false
	}
	cc.PresharedKey = psk.String()
	return cc, 0, true
}

// finishPeer saves moat.yaml and prints the client config and its QR code.
func finishPeer(e *env, f *flags, c *config.Config, w *vpn.WireGuard, p vpn.Peer, cc vpn.ClientConfig, po peerOpts, out peerOutput, verb string) int {
	srv, err := vpn.Keys{Root: f.root}.Private(w.Name())
	if err != nil {
		fmt.Fprintf(e.stderr, "moat vpn %s: the interface's key: %v (run moat vpn init)\n", verb, err)
		return ExitRuntime
	}
	cc.PeerPublicKey = srv.PublicKey().String()
	for _, a := range p.Addresses {
		cc.Address = append(cc.Address, a.Prefix)
	}
	cc.DNS = w.DNS
	if po.dns != "" {
		cc.DNS = strings.Split(po.dns, ",")
	}
	cc.Keepalive = po.keepalive
	cc.AllowedIPs = w.Subnets()
	if po.allowed != "" {
		cc.AllowedIPs = nil
		for _, s := range strings.Split(po.allowed, ",") {
			pr, err := schema.ParseCIDR(strings.TrimSpace(s))
			if err != nil {
				fmt.Fprintf(e.stderr, "moat vpn %s: --allowed-ips: %v\n", verb, err)
				return ExitUsage
			}
			cc.AllowedIPs = append(cc.AllowedIPs, pr.Prefix)
		}
	}
	cc.Endpoint = po.endpoint
	if cc.Endpoint == "" {
		cc.Endpoint = w.Endpoint
	}
	if cc.Endpoint == "" {
		a, ok := hostPublicAddr()
		if !ok {
			fmt.Fprintf(e.stderr, "moat vpn %s: cannot tell this host's public address: give --endpoint IP:PORT (or set vpn.wireguard.endpoint)\n", verb)
			return ExitUsage
		}
		cc.Endpoint = netip.AddrPortFrom(a, uint16(w.Port())).String()
	}
	if _, err := netip.ParseAddrPort(cc.Endpoint); err != nil {
		fmt.Fprintf(e.stderr, "moat vpn %s: endpoint %q: expected IP:port\n", verb, cc.Endpoint)
		return ExitUsage
	}
	if err := saveWireGuard(config.Path(f.config), w); err != nil {
		vpn.Keys{Root: f.root}.RemovePreshared(p.PublicKey)
		fmt.Fprintf(e.stderr, "moat vpn %s: %v\n", verb, err)
		return ExitRuntime
	}
	text := cc.Render()
	if *out.output != "" {
		if err := writePrivate(*out.output, []byte(text)); err != nil {
			fmt.Fprintf(e.stderr, "moat vpn %s: --output: %v\n", verb, err)
			return ExitRuntime
		}
	}
	if *out.qr != "" {
		png, err := vpn.QRPNG(text, 512)
		if err == nil {
			err = writePrivate(*out.qr, png)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "moat vpn %s: --qr: %v\n", verb, err)
			return ExitRuntime
		}
	}
	fmt.Fprintf(e.stdout, "# peer %s (%s), written to %s\n# The private key below is shown once and not kept by moat.\n\n%s", p.Name, joinCIDRs(p.Addresses), config.Path(f.config), text)
	if !*out.noQR {
		qr, err := vpn.QRText(text)
		if err != nil {
			fmt.Fprintf(e.stderr, "moat vpn %s: %v\n", verb, err)
		} else {
			fmt.Fprintf(e.stdout, "\n%s", qr)
		}
	}
	fmt.Fprintf(e.stdout, "\nNext: moat plan shows the peer, moat apply puts it on %s live.\n", w.Name())
	return ExitOK
}

func joinCIDRs(cs []schema.CIDR) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ", ")
}

func writePrivate(path string, b []byte) error {
	dir := filepath.Dir(path)
	t, err := os.CreateTemp(dir, ".moat-*")
	if err != nil {
		return err
	}
	defer os.Remove(t.Name())
	if _, err := t.Write(b); err != nil {
		t.Close()
		return err
	}
	if err := t.Sync(); err != nil {
		t.Close()
		return err
	}
	if err := t.Close(); err != nil {
		return err
	}
	return os.Rename(t.Name(), path)
}

// hostPublicAddr is the first global address of the default route's
// interface.
func hostPublicAddr() (netip.Addr, bool) {
	h := host.New("")
	routes, _ := h.DefaultRoutes()
	ifs, _ := h.Interfaces()
	for _, r := range routes {
		for _, i := range ifs {
			if i.Name != r.Iface {
				continue
			}
			for _, a := range i.Addrs {
				if a.Addr().IsGlobalUnicast() && a.Addr().Is4() {
					return a.Addr(), true
				}
			}
		}
	}
	return netip.Addr{}, false
}

func runVPNPeers(e *env, args []string) int {
	f := newFlags(e, "vpn peers", "vpn peers [--json] [-c FILE]").withRoot()
	asJSON := f.Bool("json", false, "JSON output")
	if code, ok := f.parse(args); !ok {
		return code
	}
	_, w, code, ok := vpnConfig(e, f, "peers")
	if !ok {
		return code
	}
	dev, err := vpn.Show(w.Name())
	if err != nil && !errors.Is(err, vpn.ErrNoDevice) {
		fmt.Fprintf(e.stderr, "moat vpn peers: %v\n", err)
		return ExitRuntime
	}
	peers := w.Status(dev)
	if *asJSON {
		return printJSON(e, struct {
			Interface string           `json:"interface"`
			Up        bool             `json:"up"`
			Peers     []vpn.PeerStatus `json:"peers"`
		}{w.Name(), dev != nil, peers})
	}
	if dev == nil {
		fmt.Fprintf(e.stdout, "%s is down (moat vpn up, or systemctl start moat-vpn)\n", w.Name())
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tENDPOINT\tHANDSHAKE\tRX\tTX")
	now := time.Now()
	for _, p := range peers {
		hs := "never"
		switch {
		case !p.Live:
			hs = "not applied (moat apply)"
		case !p.LastHandshake.IsZero():
			hs = now.Sub(p.LastHandshake).Round(time.Second).String() + " ago"
		}
		ep := p.Endpoint
		if ep == "" {
			ep = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", p.Name, strings.Join(p.Addresses, ","), ep, hs, p.RxBytes, p.TxBytes)
	}
	tw.Flush()
	return ExitOK
}

// peerIndex finds the peer NAME, saying so when there is none.
func peerIndex(e *env, w *vpn.WireGuard, name, verb string) (int, bool) {
	i := slices.IndexFunc(w.Peers, func(p vpn.Peer) bool { return p.Name == name })
	if i < 0 {
		fmt.Fprintf(e.stderr, "moat vpn %s: no peer %q (moat vpn peers lists them)\n", verb, name)
	}
	return i, i >= 0
}

func runVPNRemove(e *env, args []string) int {
	f := newFlags(e, "vpn remove", "vpn remove NAME [-c FILE]").withRoot()
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() != 1 {
		fmt.Fprintln(e.stderr, "Usage: moat vpn remove NAME")
		return ExitUsage
	}
	_, w, code, ok := vpnConfig(e, f, "remove")
	if !ok {
		return code
	}
	name := f.Arg(0)
	i, ok := peerIndex(e, w, name, "remove")
	if !ok {
		return ExitUsage
	}
	w.Peers = slices.Delete(w.Peers, i, i+1)
	if err := saveWireGuard(config.Path(f.config), w); err != nil {
		fmt.Fprintf(e.stderr, "moat vpn remove: %v\n", err)
		return ExitRuntime
	}
	// The preshared key is kept: until moat apply, the peer is still on
	// the interface, and a rollback of that apply puts it back.
	fmt.Fprintf(e.stdout, "peer %s removed from %s\nNext: moat apply takes it off %s live (its tunnel ends then).\n", name, config.Path(f.config), w.Name())
	return ExitOK
}

func runVPNRotate(e *env, args []string) int {
	f := newFlags(e, "vpn rotate", "vpn rotate NAME [--pubkey KEY] [--output FILE] [--qr PNG] [-c FILE]").withRoot()
	pubkey := f.String("pubkey", "", "the peer's new public key (its own; none is generated)")
	endpoint := f.String("endpoint", "", "public IP:port the client dials")
	keepalive := f.Int("keepalive", 25, "persistent keepalive in seconds for the client (0: off)")
	out := addPeerOutputFlags(f)
	if code, ok := f.parse(args); !ok {
		return code
	}
	if f.NArg() != 1 {
		fmt.Fprintln(e.stderr, "Usage: moat vpn rotate NAME")
		return ExitUsage
	}
	c, w, code, ok := vpnConfig(e, f, "rotate")
	if !ok {
		return code
	}
	name := f.Arg(0)
	i, ok := peerIndex(e, w, name, "rotate")
	if !ok {
		return ExitUsage
	}
	old := w.Peers[i].PublicKey
	cc, code, ok := newPeerKeys(e, f, c, w, &w.Peers[i], *pubkey, "rotate")
	if !ok {
		return code
	}
	if w.Peers[i].PublicKey == old {
		fmt.Fprintln(e.stderr, "moat vpn rotate: the new public key is the old one: give a new key")
		return ExitUsage
	}
	return finishPeer(e, f, c, w, w.Peers[i], cc, peerOpts{endpoint: *endpoint, keepalive: *keepalive}, out, "rotate")
}

func runVPNUp(e *env, args []string) int {
	f := newFlags(e, "vpn up", "vpn up [--userspace] [--client FILE --interface NAME] [-c FILE] [--root DIR]").withRoot()
	userspace := f.Bool("userspace", false, "run wireguard-go even where the kernel module loads")
	client := f.String("client", "", "bring up this wg-quick client `file` instead of moat.yaml's interface")
	iface := f.String("interface", "", "the client's interface name (default: the file's name)")
	if code, ok := f.parse(args); !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var (
		name   string
		key    wgtypes.Key
		port   int
		peers  []wgtypes.PeerConfig
		addrs  []netip.Prefix
		routes []netip.Prefix
	)
	if *client != "" {
		b, err := os.ReadFile(*client)
		if err != nil {
			fmt.Fprintf(e.stderr, "moat vpn up: %v\n", err)
			return ExitUsage
		}
		cc, err := vpn.ParseClientConfig(string(b))
		if err == nil && cc.PrivateKey == "" {
			err = errors.New("no PrivateKey in [Interface]")
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "moat vpn up: %s: %v\n", *client, err)
			return ExitUsage
		}
		name = *iface
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(*client), filepath.Ext(*client))
		}
		key, _ = wgtypes.ParseKey(cc.PrivateKey)
		port = cc.ListenPort
		pc, err := cc.PeerConfig()
		if err != nil {
			fmt.Fprintf(e.stderr, "moat vpn up: %s: %v\n", *client, err)
			return ExitUsage
		}
		peers, addrs, routes = []wgtypes.PeerConfig{pc}, cc.Address, cc.AllowedIPs
	} else {
		_, w, code, ok := vpnConfig(e, f, "up")
		if !ok {
			return code
		}
		keys := vpn.Keys{Root: f.root}
		var err error
		if key, err = keys.Private(w.Name()); err != nil {
			fmt.Fprintf(e.stderr, "moat vpn up: %v (run moat vpn init)\n", err)
			return ExitRuntime
		}
		// The peers last confirmed, not moat.yaml's: an edit not applied
		// yet must not take effect at boot behind the transaction's back.
		from := *w
		applied, ok, err := vpn.AppliedPeers(f.root, w.Name())
		if err != nil {
			e.log.Warn("applied peers unreadable: using moat.yaml's", "err", err)
		} else if ok {
			from.Peers = applied
		}
		if peers, err = from.Desired(keys); err != nil {
			fmt.Fprintf(e.stderr, "moat vpn up: %v\n", err)
			return ExitRuntime
		}
		name, port = w.Name(), w.Port()
		routes = w.PeerRoutes(from.Peers) // site to site: the networks behind peers
		for _, a := range w.Address {
			addrs = append(addrs, a.Prefix)
		}
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(e.stderr, "moat vpn up: needs root (run with sudo)")
		return ExitRuntime
	}
	dev, err := vpn.Up(ctx, name, vpn.UpOptions{Userspace: *userspace, Log: e.log})
	if err != nil {
		fmt.Fprintf(e.stderr, "moat vpn up: %v\n", err)
		return ExitRuntime
	}
	defer dev.Close()
	if err := vpn.Configure(name, &key, port, peers, true); err != nil {
		fmt.Fprintf(e.stderr, "moat vpn up: %v\n", err)
		return ExitRuntime
	}
	if err := vpn.SetAddresses(name, addrs, routes); err != nil {
		fmt.Fprintf(e.stderr, "moat vpn up: %v\n", err)
		return ExitRuntime
	}
	impl := dev.Impl()
	e.log.Info("vpn up", "iface", name, "impl", impl, "peers", len(peers), "port", port)
	fmt.Fprintf(e.stdout, "%s up (%s), %d peer(s); stop with Ctrl-C or SIGTERM\n", name, impl, len(peers))
	select {
	case <-ctx.Done():
	case <-dev.Done():
		fmt.Fprintf(e.stderr, "moat vpn up: %s went away\n", name)
		return ExitRuntime
	}
	return ExitOK
}
