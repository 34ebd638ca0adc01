package vpn

import (
	"fmt"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// SecondPathAge is how recent an admin peer's handshake must be for SSH to
// move behind the VPN: proof the tunnel works now, not last month.
const SecondPathAge = 10 * time.Minute

// PeerStatus is a configured peer joined with the live interface.
type PeerStatus struct {
	Name          string    `json:"name"`
	PublicKey     string    `json:"public_key"`
	Addresses     []string  `json:"addresses"`
	Admin         bool      `json:"admin"`
	Endpoint      string    `json:"endpoint,omitempty"`
	LastHandshake time.Time `json:"last_handshake,omitzero"`
	RxBytes       int64     `json:"rx_bytes"`
	TxBytes       int64     `json:"tx_bytes"`
	// Live is false when the peer is in moat.yaml but not on the
	// interface yet (moat apply puts it there).
	Live bool `json:"live"`
}

// Status joins the configured peers with the live device (nil: down).
func (w *WireGuard) Status(dev *wgtypes.Device) []PeerStatus {
	live := map[string]wgtypes.Peer{}
	if dev != nil {
		for _, p := range dev.Peers {
			live[p.PublicKey.String()] = p
		}
	}
	var out []PeerStatus
	for _, p := range w.Peers {
		s := PeerStatus{Name: p.Name, PublicKey: p.PublicKey, Admin: p.IsAdmin()}
		for _, a := range p.Addresses {
			s.Addresses = append(s.Addresses, a.String())
		}
		if lp, ok := live[p.PublicKey]; ok {
			s.Live = true
			s.LastHandshake = lp.LastHandshakeTime
			s.RxBytes, s.TxBytes = lp.ReceiveBytes, lp.TransmitBytes
			if lp.Endpoint != nil {
				s.Endpoint = lp.Endpoint.String()
			}
		}
		out = append(out, s)
	}
	return out
}

// AdminHandshake checks the WireGuard half of the second working path:
// an admin peer whose latest handshake is at most within old. It returns
// the evidence, or an error saying what is missing.
func (w *WireGuard) AdminHandshake(dev *wgtypes.Device, now time.Time, within time.Duration) (string, error) {
	if dev == nil {
		return "", fmt.Errorf("%s is not up (moat vpn up)", w.Name())
	}
	var latest PeerStatus
	admins := 0
	for _, s := range w.Status(dev) {
		if !s.Admin {
			continue
		}
		admins++
		if s.LastHandshake.After(latest.LastHandshake) {
			latest = s
		}
	}
	switch {
	case admins == 0:
		return "", fmt.Errorf("%s has no admin peer: moat vpn add NAME for your laptop or phone", w.Name())
	case latest.LastHandshake.IsZero():
		return "", fmt.Errorf("no admin peer of %s has ever completed a handshake: bring a client up (its config from moat vpn add)", w.Name())
	case now.Sub(latest.LastHandshake) > within:
		return "", fmt.Errorf("the latest admin-peer handshake on %s was %s ago (peer %s), more than %s: connect a client now", w.Name(), now.Sub(latest.LastHandshake).Round(time.Second), latest.Name, within)
	}
	return fmt.Sprintf("admin peer %s completed a WireGuard handshake on %s %s ago", latest.Name, w.Name(), now.Sub(latest.LastHandshake).Round(time.Second)), nil
}
