package vpn

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Notice kinds the watcher raises.
const (
	NoticeDown        = "down"
	NoticeUp          = "up"
	NoticeNewEndpoint = "new-endpoint"
	NoticeSilence     = "admin-silence"
)

// Notice is something the operator should hear about the interface.
type Notice struct {
	Kind     string
	Critical bool
	Peer     string
	Endpoint string
	Text     string
}

// Watch follows the interface between polls: up or down, each peer's
// endpoints (an endpoint never seen before is told, like an SSH login
// from a new source), and the admin peers' silence. Seen is what it has
// learnt, to be kept across restarts (the daemon saves it).
type Watch struct {
	// Seen maps a peer's public key to the endpoint addresses it came
	// from (ports change behind NAT and are not kept).
	Seen map[string][]string `json:"seen"`

	started  time.Time
	polled   bool
	down     bool
	silenced bool
}

// maxSeen bounds the endpoints remembered per peer (a phone roams).
const maxSeen = 32

// Observe compares one poll (dev nil: the interface is down) with what
// the watch knows, and returns what to tell.
func (w *Watch) Observe(c *WireGuard, dev *wgtypes.Device, now time.Time) []Notice {
	if w.Seen == nil {
		w.Seen = map[string][]string{}
	}
	if w.started.IsZero() {
		w.started = now
	}
	var out []Notice
	first := !w.polled
	w.polled = true
	if dev == nil {
		if !w.down {
			out = append(out, Notice{Kind: NoticeDown, Critical: true,
				Text: fmt.Sprintf("WireGuard interface %s is down: SSH over it fails (systemctl status moat-vpn; moat vpn up)", c.Name())})
		}
		w.down = true
		return out
	}
	if w.down && !first {
		out = append(out, Notice{Kind: NoticeUp, Text: fmt.Sprintf("WireGuard interface %s is up again", c.Name())})
	}
	w.down = false
	for _, s := range c.Status(dev) {
		if s.Endpoint == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(s.Endpoint)
		if err != nil {
			continue
		}
		ip := ap.Addr().Unmap().String()
		seen := w.Seen[s.PublicKey]
		if slices.Contains(seen, ip) {
			continue
		}
		text := fmt.Sprintf("WireGuard peer %s connected from %s, an address it never used before", s.Name, ip)
		if len(seen) == 0 {
			text = fmt.Sprintf("WireGuard peer %s connected for the first time, from %s", s.Name, ip)
		}
		out = append(out, Notice{Kind: NoticeNewEndpoint, Peer: s.Name, Endpoint: ip,
			Text: text + ". If that was not you, rotate its keys: moat vpn rotate " + s.Name + " && moat apply"})
		seen = append(seen, ip)
		if len(seen) > maxSeen {
			seen = seen[len(seen)-maxSeen:]
		}
		w.Seen[s.PublicKey] = seen
	}
	// Silence: the latest admin handshake, or the watch's start when none
	// was ever seen (a fresh setup is not an alarm).
	latest := w.started
	admins := 0
	for _, s := range c.Status(dev) {
		if s.Admin {
			admins++
			if s.LastHandshake.After(latest) {
				latest = s.LastHandshake
			}
		}
	}
	if admins > 0 && now.Sub(latest) > c.Silence() {
		if !w.silenced {
			out = append(out, Notice{Kind: NoticeSilence,
				Text: fmt.Sprintf("no admin peer of %s has made a handshake for %s: check that your way in over the VPN still works (moat vpn peers)", c.Name(), now.Sub(latest).Round(time.Hour))})
		}
		w.silenced = true
	} else {
		w.silenced = false
	}
	return out
}
