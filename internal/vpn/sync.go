package vpn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/moat-sh/moat/internal/change"
)

// ActionPeers is the change action that puts a set of peers back on the
// interface (the undo of the vpn step).
const ActionPeers = "vpn-peers"

// PeerChange is one peer to add, update or remove on the live interface.
type PeerChange struct {
	Config wgtypes.PeerConfig
	Line   string // for plan: "+ peer laptop 10.42.7.2/32 (key abcd…)"
}

// DiffPeers compares the live peers with the wanted ones and returns only
// the peers that differ: unchanged peers are not touched, so their
// sessions and handshakes survive an apply. names maps public keys to
// the config's peer names, for the lines.
func DiffPeers(live []wgtypes.Peer, want []wgtypes.PeerConfig, names map[wgtypes.Key]string) []PeerChange {
	var out []PeerChange
	have := map[wgtypes.Key]wgtypes.Peer{}
	for _, p := range live {
		have[p.PublicKey] = p
	}
	label := func(k wgtypes.Key) string {
		if n := names[k]; n != "" {
			return n
		}
		return "(unnamed)"
	}
	wanted := map[wgtypes.Key]bool{}
	for _, w := range want {
		wanted[w.PublicKey] = true
		p, ok := have[w.PublicKey]
		ips := prefixStrings(w.AllowedIPs)
		switch {
		case !ok:
			out = append(out, PeerChange{w, fmt.Sprintf("+ peer %s %s (key %s)", label(w.PublicKey), ips, short(w.PublicKey))})
		case !samePeer(p, w):
			out = append(out, PeerChange{w, fmt.Sprintf("~ peer %s %s (key %s; was %s)", label(w.PublicKey), ips, short(w.PublicKey), prefixStrings(p.AllowedIPs))})
		}
	}
	for _, p := range live {
		if !wanted[p.PublicKey] {
			out = append(out, PeerChange{wgtypes.PeerConfig{PublicKey: p.PublicKey, Remove: true},
				fmt.Sprintf("- peer %s %s (key %s)", label(p.PublicKey), prefixStrings(p.AllowedIPs), short(p.PublicKey))})
		}
	}
	return out
}

func samePeer(p wgtypes.Peer, w wgtypes.PeerConfig) bool {
	if w.PresharedKey != nil && *w.PresharedKey != p.PresharedKey {
		return false
	}
	if w.PersistentKeepaliveInterval != nil && *w.PersistentKeepaliveInterval != p.PersistentKeepaliveInterval {
		return false
	}
	a, b := prefixList(p.AllowedIPs), prefixList(w.AllowedIPs)
	return slices.Equal(a, b)
}

func prefixList(ns []net.IPNet) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = prefixOf(n).String()
	}
	slices.Sort(out)
	return out
}

func prefixStrings(ns []net.IPNet) string { return strings.Join(prefixList(ns), ",") }

func short(k wgtypes.Key) string { return k.String()[:8] + "…" }

// savedPeer is a live peer as the undo restores it.
type savedPeer struct {
	PublicKey    string   `json:"public_key"`
	PresharedKey string   `json:"preshared_key,omitempty"` // change.json is 0600, like the key files
	Keepalive    int      `json:"keepalive,omitempty"`
	AllowedIPs   []string `json:"allowed_ips"`
}

type peersData struct {
	Interface string      `json:"interface"`
	Peers     []savedPeer `json:"peers"`
}

// StepInput is what the vpn step is planned from.
type StepInput struct {
	WireGuard *WireGuard
	Keys      Keys
	// Live reads the interface; nil is Show.
	Live func(name string) (*wgtypes.Device, error)
}

// MakeStep plans the peers' part of a change: the live interface's peers
// made to match the config, changed peers only (ReplacePeers false), and
// the undo that puts the old set back. When the interface is not up
// there is nothing live to change: moat vpn up configures every peer as
// it starts.
func MakeStep(ctx context.Context, in StepInput) (*change.Step, error) {
	w := in.WireGuard
	if w == nil {
		return nil, nil
	}
	st := &change.Step{Layer: "vpn"}
	// The peer set for boot, written on confirm: moat vpn up starts from
	// it, so neither an edit never applied nor a change rolled back takes
	// effect at the next boot.
	data, err := appliedJSON(w)
	if err != nil {
		return nil, err
	}
	if cur, err := change.ReadCurrent(in.Keys.Root, AppliedPath(w.Name())); err != nil {
		return nil, err
	} else if !bytes.Equal(cur, data) {
		st.Final = append(st.Final, change.File{Path: AppliedPath(w.Name()), Data: data, Mode: 0o600})
	}
	live := in.Live
	if live == nil {
		live = Show
	}
	dev, err := live(w.Name())
	if errors.Is(err, ErrNoDevice) {
		st.Warnings = append(st.Warnings, fmt.Sprintf("%s is not up: its %d peer(s) apply when it starts (moat vpn up, or systemctl start moat-vpn)", w.Name(), len(w.Peers)))
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	want, err := w.Desired(in.Keys)
	if err != nil {
		return nil, err
	}
	names := map[wgtypes.Key]string{}
	for i, p := range w.Peers {
		names[want[i].PublicKey] = p.Name
	}
	changes := DiffPeers(dev.Peers, want, names)
	if len(changes) == 0 {
		return st, nil
	}
	var b strings.Builder
	var cfgs []wgtypes.PeerConfig
	for _, c := range changes {
		b.WriteString("  " + c.Line + "\n")
		cfgs = append(cfgs, c.Config)
	}
	st.Diff = b.String()
	st.Summary = append(st.Summary, fmt.Sprintf("%s: %d peer change(s), applied live; unchanged peers keep their sessions", w.Name(), len(changes)))
	saved := peersData{Interface: w.Name()}
	for _, p := range dev.Peers {
		sp := savedPeer{PublicKey: p.PublicKey.String(), Keepalive: int(p.PersistentKeepaliveInterval / time.Second)}
		if p.PresharedKey != (wgtypes.Key{}) {
			sp.PresharedKey = p.PresharedKey.String()
		}
		for _, n := range p.AllowedIPs {
			sp.AllowedIPs = append(sp.AllowedIPs, prefixOf(n).String())
		}
		saved.Peers = append(saved.Peers, sp)
	}
	st.Undo = append(st.Undo, change.NewAction(ActionPeers, saved))
	name := w.Name()
	routes := w.PeerRoutes(w.Peers)
	st.Apply = func(ctx context.Context, _ *change.Writer) error {
		if err := Configure(name, nil, 0, cfgs, false); err != nil {
			return err
		}
		// A network behind a peer (site to site) is routed into the tunnel
		// as the peer comes, and no longer once it goes.
		return SyncRoutes(name, routes)
	}
	return st, nil
}

// Handlers are the vpn step's change actions.
func Handlers() change.Handlers {
	return change.Handlers{ActionPeers: func(ctx context.Context, env change.Env, data json.RawMessage) error {
		var d peersData
		if err := json.Unmarshal(data, &d); err != nil {
			return err
		}
		if env.Boot {
			return nil // moat vpn up configures the interface from moat.yaml as it starts
		}
		dev, err := Show(d.Interface)
		if errors.Is(err, ErrNoDevice) {
			return nil
		}
		if err != nil {
			return err
		}
		var want []wgtypes.PeerConfig
		for _, sp := range d.Peers {
			pc, err := sp.config()
			if err != nil {
				return err
			}
			want = append(want, pc)
		}
		var cfgs []wgtypes.PeerConfig
		for _, c := range DiffPeers(dev.Peers, want, nil) {
			cfgs = append(cfgs, c.Config)
		}
		if len(cfgs) == 0 {
			return nil
		}
		if err := Configure(d.Interface, nil, 0, cfgs, false); err != nil {
			return err
		}
		var routes []netip.Prefix
		for _, pc := range want {
			for _, n := range pc.AllowedIPs {
				if p := prefixOf(n); !p.IsSingleIP() {
					routes = append(routes, p)
				}
			}
		}
		return SyncRoutes(d.Interface, routes)
	}}
}

func (sp savedPeer) config() (wgtypes.PeerConfig, error) {
	pub, err := wgtypes.ParseKey(sp.PublicKey)
	if err != nil {
		return wgtypes.PeerConfig{}, err
	}
	pc := wgtypes.PeerConfig{PublicKey: pub, ReplaceAllowedIPs: true}
	var psk wgtypes.Key
	if sp.PresharedKey != "" {
		if psk, err = wgtypes.ParseKey(sp.PresharedKey); err != nil {
			return pc, err
		}
	}
	pc.PresharedKey = &psk
	ka := time.Duration(sp.Keepalive) * time.Second
	pc.PersistentKeepaliveInterval = &ka
	for _, s := range sp.AllowedIPs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return pc, err
		}
		pc.AllowedIPs = append(pc.AllowedIPs, ipNet(p))
	}
	return pc, nil
}

// AppliedPath is where the confirmed peer set of iface is kept for boot.
func AppliedPath(iface string) string { return StateDir + "/" + iface + ".peers.json" }

// applied is the file at AppliedPath: no secrets (preshared keys stay in
// their own files, named by public key), so plan may show its diff.
type applied struct {
	WrittenBy string `json:"written_by"`
	Peers     []Peer `json:"peers"`
}

func appliedJSON(w *WireGuard) ([]byte, error) {
	a := applied{WrittenBy: "moat apply (on confirm), from vpn.wireguard.peers: moat vpn up configures these", Peers: w.Peers}
	if a.Peers == nil {
		a.Peers = []Peer{}
	}
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// AppliedPeers reads the confirmed peer set of iface under root; ok is
// false when none was ever confirmed.
func AppliedPeers(root, iface string) (peers []Peer, ok bool, err error) {
	b, err := change.ReadCurrent(root, AppliedPath(iface))
	if err != nil || b == nil {
		return nil, false, err
	}
	var a applied
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, false, fmt.Errorf("%s: %w (moat apply writes it again)", AppliedPath(iface), err)
	}
	return a.Peers, true, nil
}
