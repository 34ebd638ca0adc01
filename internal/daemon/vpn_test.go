package daemon

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/vpn"
)

func TestStatusShowsTheVPNBlock(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st := Status{Running: true, VPN: &VPNStatus{Interface: "wg0", Up: true, Port: 51820, Peers: []vpn.PeerStatus{
		{Name: "laptop", Addresses: []string{"10.9.8.2/32"}, Admin: true, Live: true, LastHandshake: now.Add(-90 * time.Second)},
		{Name: "phone", Addresses: []string{"10.9.8.3/32"}, Admin: true, Live: false},
	}}}
	var b bytes.Buffer
	st.WriteText(&b, now)
	out := b.String()
	for _, want := range []string{"VPN  WireGuard wg0 up, UDP 51820, 2 peer(s)", "laptop", "handshake 1m30s ago", "not on the interface (moat apply)"} {
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
