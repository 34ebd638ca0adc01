package daemon

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/vpn"
)

func TestStatusShowsTheVPNBlock(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st := Status{Running: true, VPN: &vpn.InterfaceStatus{Interface: "wg0", Up: true, Port: 51820, Impl: vpn.Userspace, Peers: []vpn.PeerStatus{
		{Name: "laptop", Addresses: []string{"10.9.8.2/32"}, Admin: true, Live: true, LastHandshake: now.Add(-90 * time.Second)},
		{Name: "phone", Addresses: []string{"10.9.8.3/32"}, Admin: true, Live: false},
	}}}
	var b bytes.Buffer
	st.WriteText(&b, now)
	out := b.String()
	for _, want := range []string{"VPN  WireGuard wg0 up (wireguard-go (userspace)), UDP 51820, 2 peer(s)", "laptop", "handshake 1m30s ago", "not on the interface (moat apply)"} {
		if !strings.Contains(out, want) {
			t.Errorf("%q missing:\n%s", want, out)
		}
	}
	st.VPN.Up = false
	b.Reset()
	st.WriteText(&b, now)
	if !strings.Contains(b.String(), "DOWN") {
		t.Errorf("a down interface is not shouted:\n%s", b.String())
	}
}

func TestVPNEventSeverities(t *testing.T) {
	if e := (alert.VPN{What: vpn.NoticeDown, Critical: true}).Event(); e.Severity != alert.Critical || e.Kind != alert.KindVPN {
		t.Errorf("down: %+v", e)
	}
	if e := (alert.VPN{What: vpn.NoticeUp}).Event(); e.Severity != alert.Info {
		t.Errorf("up: %+v", e)
	}
	if e := (alert.VPN{What: vpn.NoticeNewEndpoint, Peer: "laptop", Endpoint: "203.0.113.9"}).Event(); e.Severity != alert.Warning || e.Fields["endpoint"] != "203.0.113.9" {
		t.Errorf("new endpoint: %+v", e)
	}
}

// TestVPNPollAlertsAndRemembersAcrossRestarts: the daemon's poll turns the
// watch's notices into vpn alerts, and what it learnt of endpoints, saved
// and loaded again, keeps a restart from announcing every peer as new.
func TestVPNPollAlertsAndRemembersAcrossRestarts(t *testing.T) {
	k, _ := wgtypes.GeneratePrivateKey()
	pk := k.PublicKey()
	w := &vpn.WireGuard{Address: []vpn.IfaceAddr{{Prefix: netip.MustParsePrefix("10.9.8.1/24")}},
		Peers: []vpn.Peer{{Name: "laptop", PublicKey: pk.String()}}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var rec recorder
	warn := func(string, ...any) {}
	down := func(string) (*wgtypes.Device, error) { return nil, vpn.ErrNoDevice }
	dev := &wgtypes.Device{Peers: []wgtypes.Peer{{PublicKey: pk, LastHandshakeTime: now,
		Endpoint: &net.UDPAddr{IP: net.ParseIP("198.51.100.7"), Port: 5000}}}}
	up := func(string) (*wgtypes.Device, error) { return dev, nil }

	var wt vpn.Watch
	vpnPoll(w, &wt, down, rec.notify, warn, now)
	if len(rec.events) != 1 || rec.events[0].Kind != alert.KindVPN || rec.events[0].Severity != alert.Critical {
		t.Fatalf("down: %+v", rec.events)
	}
	if !vpnPoll(w, &wt, up, rec.notify, warn, now.Add(time.Minute)) {
		t.Fatal("a first endpoint was not reported as learnt (it would not be saved)")
	}
	saved, _ := json.Marshal(&wt)
	var again vpn.Watch
	json.Unmarshal(saved, &again)
	rec.events = nil
	vpnPoll(w, &again, up, rec.notify, warn, now.Add(2*time.Minute))
	for _, e := range rec.events {
		if e.Fields["what"] == vpn.NoticeNewEndpoint {
			t.Fatalf("after a restart the known endpoint was announced again: %+v", e)
		}
	}
}
