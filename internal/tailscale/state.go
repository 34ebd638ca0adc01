package tailscale

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Status is the part of tailscaled's ipnstate.Status moat reads
// (GET /localapi/v0/status, `tailscale status --json`).
type Status struct {
	Version string
	// BackendState is "NoState", "NeedsLogin", "NeedsMachineAuth",
	// "Stopped", "Starting" or "Running".
	BackendState   string
	TailscaleIPs   []netip.Addr
	Self           *PeerStatus
	MagicDNSSuffix string
	CurrentTailnet *TailnetStatus
	Health         []string
}

// TailnetStatus is the tailnet the node is in.
type TailnetStatus struct {
	Name            string
	MagicDNSSuffix  string
	MagicDNSEnabled bool
}

// PeerStatus is the part of ipnstate.PeerStatus moat reads, for Self.
type PeerStatus struct {
	ID       string
	HostName string
	// DNSName is the MagicDNS name, ending with a dot.
	DNSName        string
	OS             string
	TailscaleIPs   []netip.Addr
	AllowedIPs     []netip.Prefix
	PrimaryRoutes  []netip.Prefix
	Online         bool
	ExitNode       bool
	ExitNodeOption bool
	Capabilities   []string
	CapMap         map[string]json.RawMessage
	Expired        bool
	// KeyExpiry is absent when the node key does not expire (key expiry
	// disabled in the admin console): tailscaled omits a zero expiry.
	KeyExpiry *time.Time
}

// ServeConfig is the part of ipn.ServeConfig moat reads
// (GET /localapi/v0/serve-config, `tailscale serve status --json`).
type ServeConfig struct {
	TCP map[uint16]*TCPPortHandler
	// Web maps "host:port" to its HTTP handlers.
	Web map[string]*WebServerConfig
	// AllowFunnel maps "host:port" to whether the internet reaches it.
	AllowFunnel map[string]bool
	// Foreground are configs of `tailscale serve`/`funnel` sessions run
	// without --bg, by session.
	Foreground map[string]*ServeConfig
}

// TCPPortHandler is what tailscaled does with a TCP port.
type TCPPortHandler struct {
	HTTPS, HTTP  bool
	TCPForward   string
	TerminateTLS string
}

// WebServerConfig maps mount points to handlers.
type WebServerConfig struct {
	Handlers map[string]*HTTPHandler
}

// HTTPHandler serves one mount point: exactly one field is set.
type HTTPHandler struct {
	Path, Proxy, Text, Redirect string
}

// Prefs is the part of ipn.Prefs moat reads (GET /localapi/v0/prefs).
type Prefs struct {
	// AdvertiseRoutes are the subnet routes offered; 0.0.0.0/0 and ::/0
	// among them offer the node as an exit node.
	AdvertiseRoutes []netip.Prefix
	RunSSH          bool
	ShieldsUp       bool
}

// State is what moat knows of tailscaled.
type State struct {
	// Source says where it was read: "local API" or "tailscale CLI".
	Source string
	Status Status
	// Serve is nil when it could not be read; Prefs likewise (the CLI
	// fallback has no prefs).
	Serve *ServeConfig
	Prefs *Prefs
}

// Running reports whether the node is up and logged in.
func (s *State) Running() bool { return s.Status.BackendState == "Running" && s.Status.Self != nil }

// KeyExpiry returns when the node key expires; disabled is true when key
// expiry is disabled for this node. ok is false when tailscaled does not
// say (not logged in).
func (s *State) KeyExpiry() (t time.Time, disabled, ok bool) {
	if s.Status.Self == nil {
		return time.Time{}, false, false
	}
	if s.Status.Self.KeyExpiry == nil || s.Status.Self.KeyExpiry.IsZero() {
		return time.Time{}, true, true
	}
	return *s.Status.Self.KeyExpiry, false, true
}

// IPs are the node's Tailscale addresses.
func (s *State) IPs() []netip.Addr {
	if len(s.Status.TailscaleIPs) > 0 {
		return s.Status.TailscaleIPs
	}
	if s.Status.Self != nil {
		return s.Status.Self.TailscaleIPs
	}
	return nil
}

// DNSName is the node's MagicDNS name without the trailing dot.
func (s *State) DNSName() string {
	if s.Status.Self == nil {
		return ""
	}
	return strings.TrimSuffix(s.Status.Self.DNSName, ".")
}

var exitRoutes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// SubnetRoutes are the subnet routes the node advertises (exit routes
// excepted): from the prefs when read, else those the control plane made
// it primary for.
func (s *State) SubnetRoutes() []netip.Prefix {
	var src []netip.Prefix
	if s.Prefs != nil {
		src = s.Prefs.AdvertiseRoutes
	} else if s.Status.Self != nil {
		src = s.Status.Self.PrimaryRoutes
	}
	var out []netip.Prefix
	for _, p := range src {
		if !slices.Contains(exitRoutes, p) {
			out = append(out, p)
		}
	}
	return out
}

// AdvertisesExitNode reports whether the node offers itself as an exit
// node (advertised in the prefs, or approved in the status).
func (s *State) AdvertisesExitNode() bool {
	if s.Prefs != nil && slices.ContainsFunc(s.Prefs.AdvertiseRoutes, func(p netip.Prefix) bool { return slices.Contains(exitRoutes, p) }) {
		return true
	}
	return s.Status.Self != nil && s.Status.Self.ExitNodeOption
}

// FunnelAllowed reports whether the tailnet's policy grants this node
// Funnel (the "funnel" node capability).
func (s *State) FunnelAllowed() bool {
	if s.Status.Self == nil {
		return false
	}
	_, ok := s.Status.Self.CapMap["funnel"]
	return ok || slices.Contains(s.Status.Self.Capabilities, "funnel")
}

// Funnel is one host:port the internet reaches through Tailscale's
// Funnel relays, and what answers it on this host.
type Funnel struct {
	HostPort string `json:"host_port"` // "node.tailnet.ts.net:443"
	Port     uint16 `json:"port"`
	Targets  []Target
}

// Target is what a Funnel (or Serve) hands a connection to.
type Target struct {
	Kind string `json:"kind"` // "proxy", "tcp", "path", "text", "redirect"
	// Mount is the HTTP mount point ("/" for TCP forwards).
	Mount string `json:"mount"`
	// To is the proxied URL, forwarded address, path or redirect.
	To string `json:"to"`
	// Local is the local address a proxy or forward reaches; invalid
	// for files, text, redirects, Unix sockets and remote hosts.
	Local netip.AddrPort `json:"local"`
}

// Funnels lists what Funnel publishes, background and foreground
// configs together, sorted by host:port.
func (s *State) Funnels() []Funnel {
	if s.Serve == nil {
		return nil
	}
	var out []Funnel
	var walk func(sc *ServeConfig)
	walk = func(sc *ServeConfig) {
		for hp, on := range sc.AllowFunnel {
			if !on {
				continue
			}
			_, ps, err := net.SplitHostPort(hp)
			port, perr := strconv.ParseUint(ps, 10, 16)
			if err != nil || perr != nil {
				continue
			}
			f := Funnel{HostPort: hp, Port: uint16(port)}
			if h := sc.TCP[uint16(port)]; h != nil && h.TCPForward != "" {
				f.Targets = append(f.Targets, Target{Kind: "tcp", Mount: "/", To: h.TCPForward, Local: localOf(h.TCPForward, "tcp")})
			}
			if w := sc.Web[hp]; w != nil {
				mounts := make([]string, 0, len(w.Handlers))
				for m := range w.Handlers {
					mounts = append(mounts, m)
				}
				sort.Strings(mounts)
				for _, m := range mounts {
					h := w.Handlers[m]
					if h == nil {
						continue
					}
					switch {
					case h.Proxy != "":
						f.Targets = append(f.Targets, Target{Kind: "proxy", Mount: m, To: h.Proxy, Local: localOf(h.Proxy, "http")})
					case h.Path != "":
						f.Targets = append(f.Targets, Target{Kind: "path", Mount: m, To: h.Path})
					case h.Text != "":
						f.Targets = append(f.Targets, Target{Kind: "text", Mount: m})
					case h.Redirect != "":
						f.Targets = append(f.Targets, Target{Kind: "redirect", Mount: m, To: h.Redirect})
					}
				}
			}
			out = append(out, f)
		}
		for _, fg := range sc.Foreground {
			if fg != nil {
				walk(fg)
			}
		}
	}
	walk(s.Serve)
	sort.Slice(out, func(i, j int) bool { return out[i].HostPort < out[j].HostPort })
	return out
}

// localOf returns the local address a Serve target reaches, as
// tailscaled expands it: a bare port is 127.0.0.1:port; "localhost" is
// loopback; a URL without a port takes its scheme's.
func localOf(target, defaultScheme string) netip.AddrPort {
	if p, err := strconv.ParseUint(target, 10, 16); err == nil {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(p))
	}
	if strings.HasPrefix(target, "unix:") {
		return netip.AddrPort{}
	}
	if !strings.Contains(target, "://") {
		target = defaultScheme + "://" + target
	}
	u, err := url.Parse(target)
	if err != nil {
		return netip.AddrPort{}
	}
	host, ps := u.Hostname(), u.Port()
	if ps == "" {
		switch strings.TrimSuffix(u.Scheme, "+insecure") {
		case "https":
			ps = "443"
		case "http":
			ps = "80"
		default:
			return netip.AddrPort{}
		}
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return netip.AddrPort{}
	}
	var a netip.Addr
	if host == "localhost" {
		a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	} else if a, err = netip.ParseAddr(host); err != nil {
		return netip.AddrPort{} // a name: not resolved (never DNS for a verdict)
	}
	return netip.AddrPortFrom(a.Unmap().WithZone(""), uint16(port))
}

// SecondPathMinKeyLife is how far away the node key's expiry must be for
// Tailscale to count as a second working path into the host.
const SecondPathMinKeyLife = 30 * 24 * time.Hour

// SecondPath is the Tailscale half of the SSH-behind-VPN gate: nil when
// Tailscale is a second working way into the host at now — tailscaled
// running and logged in with a Tailscale address, and the node key's
// expiry disabled or more than 30 days away; otherwise an error saying
// why not and what to do. st nil (tailscaled absent) is an error.
func SecondPath(st *State, now time.Time) error {
	if st == nil {
		return fmt.Errorf("tailscaled is not running: no Tailscale path into this host")
	}
	if !st.Running() {
		return fmt.Errorf("tailscale is %q, not Running: run tailscale up", st.Status.BackendState)
	}
	if len(st.IPs()) == 0 {
		return fmt.Errorf("tailscale has no address on this node")
	}
	if st.Status.Self.Expired {
		return fmt.Errorf("this node's key has expired: re-authenticate it (tailscale up --force-reauth) from another way in")
	}
	t, disabled, _ := st.KeyExpiry()
	if disabled {
		return nil
	}
	if left := t.Sub(now); left <= SecondPathMinKeyLife {
		return fmt.Errorf("this node's key expires %s (in %s), within 30 days: disable key expiry for it in the Tailscale admin console (Machines, ..., Disable key expiry), or re-authenticate with tailscale up --force-reauth",
			t.UTC().Format(time.RFC3339), daysText(left))
	}
	return nil
}

func daysText(d time.Duration) string {
	if d < 0 {
		return "the past"
	}
	if d < 48*time.Hour {
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
