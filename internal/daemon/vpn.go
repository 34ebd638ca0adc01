package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/vpn"
)

// VPNSeenFile keeps the endpoints each WireGuard peer came from, so a
// restart does not announce every peer as new.
const VPNSeenFile = "vpn-endpoints.json"

// vpnPollEvery is how often the daemon reads the WireGuard interface.
const vpnPollEvery = 30 * time.Second

// vpnSourcesEvery is how often the gateway's allow: [vpn] is checked
// against the applied peers.
const vpnSourcesEvery = 5 * time.Second

// writeVPN renders the VPN block.
func writeVPN(w io.Writer, v *vpn.InterfaceStatus, now time.Time) {
	if v == nil {
		return
	}
	state := "up"
	if !v.Up {
		state = "DOWN (systemctl start moat-vpn, or moat vpn up)"
	}
	if v.Error != "" {
		state = "not read: " + v.Error
	}
	if v.Impl != "" {
		state += " (" + string(v.Impl) + ")"
	}
	fmt.Fprintf(w, "\nVPN  WireGuard %s %s, UDP %d, %d peer(s)\n", v.Interface, state, v.Port, len(v.Peers))
	for _, p := range v.Peers {
		hs := "no handshake yet"
		switch {
		case !p.Live && v.Up:
			hs = "not on the interface (moat apply)"
		case !p.LastHandshake.IsZero():
			hs = "handshake " + now.Sub(p.LastHandshake).Round(time.Second).String() + " ago"
		}
		role := ""
		if p.Admin {
			role = " admin"
		}
		fmt.Fprintf(w, "  %-14s %-18s %s%s\n", p.Name, strings.Join(p.Addresses, ","), hs, role)
	}
}

// runVPNWatch polls the WireGuard interface and raises the VPN alerts:
// interface down, a peer from a new endpoint, admin peers silent for
// vpn.wireguard.admin_silence. It follows config reloads.
func (d *Daemon) runVPNWatch(ctx context.Context) error {
	path := filepath.Join(d.o.StateDir, VPNSeenFile)
	var wt vpn.Watch
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &wt)
	}
	t := time.NewTicker(vpnPollEvery)
	defer t.Stop()
	// The gateway's VPN sources are a small file read, checked more often
	// than the interface: a peer applied counts within seconds.
	src := time.NewTicker(vpnSourcesEvery)
	defer src.Stop()
	for {
		d.followVPNSources()
		d.mu.Lock()
		w := d.cfg.VPN.WireGuard
		d.mu.Unlock()
		if w != nil && vpnPoll(w, &wt, vpn.Show, d.disp.Notify, d.log.Warn, time.Now()) {
			if b, err := json.Marshal(&wt); err == nil {
				writeStateFile(path, b)
			}
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return nil
			case <-src.C:
				d.followVPNSources()
			case <-t.C:
				waiting = false
			}
		}
	}
}

// vpnSources is what the gateway's allow: [vpn] admits: the VPN's ranges
// with the WireGuard peers moat apply last confirmed (vpn.AppliedPeers)
// in place of moat.yaml's, so a peer applied or removed, and a network
// routed through it (site to site), counts as the interface does, without
// waiting for a reload of moat run. Before any apply, moat.yaml's peers.
func vpnSources(root string, c vpn.Config) []netip.Prefix {
	if w := c.WireGuard; w != nil {
		if peers, ok, err := vpn.AppliedPeers(root, w.Name()); err == nil && ok {
			live := *w
			live.Peers = peers
			c.WireGuard = &live
		}
	}
	return c.Prefixes()
}

// followVPNSources gives the gateway the VPN sources of now. It holds the
// reload lock: a reload in progress sets them from its own config.
func (d *Daemon) followVPNSources() {
	if d.gw == nil {
		return
	}
	d.reloading.Lock()
	defer d.reloading.Unlock()
	d.mu.Lock()
	c := d.cfg.VPN
	d.mu.Unlock()
	if err := d.gw.SetVPN(vpnSources(d.o.vpnRoot, c)); err != nil {
		d.log.Warn("the gateway keeps its previous VPN sources", "err", err)
	}
}

// vpnPoll reads the interface once and notifies what the watch finds; it
// reports whether the watch learnt an endpoint (to be saved).
func vpnPoll(w *vpn.WireGuard, wt *vpn.Watch, show func(string) (*wgtypes.Device, error), notify func(alert.Event), warn func(string, ...any), now time.Time) bool {
	dev, err := show(w.Name())
	if err != nil && !errors.Is(err, vpn.ErrNoDevice) {
		warn("read the WireGuard interface", "iface", w.Name(), "err", err)
		return false
	}
	learnt := false
	for _, n := range wt.Observe(w, dev, now) {
		learnt = learnt || n.Kind == vpn.NoticeNewEndpoint
		notify(alert.VPN{What: n.Kind, Interface: w.Name(), Peer: n.Peer, Endpoint: n.Endpoint,
			Text: n.Text, Critical: n.Critical, Time: now}.Event())
	}
	return learnt
}

// writeStateFile writes a small state file atomically, root-only.
func writeStateFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vpn-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
