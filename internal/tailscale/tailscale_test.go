package tailscale_test

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/tailscale"
	"github.com/moat-sh/moat/internal/tailscale/tailscaletest"
)

var now = time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)

func read(t *testing.T, a tailscaletest.Answers) *tailscale.State {
	t.Helper()
	for k, v := range a {
		a[k] = tailscaletest.Fixture(v)
	}
	c := &tailscale.Client{Socket: tailscaletest.Serve(t, a), CLI: "-"}
	st, err := c.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestExpiryNear(t *testing.T) {
	st := read(t, tailscaletest.Answers{"/localapi/v0/status": "status-expiry-near.json", "/localapi/v0/serve-config": "serve-none.json", "/localapi/v0/prefs": "prefs-plain.json"})
	if st.Source != "local API" || !st.Running() || st.DNSName() != "vps.tail1234.ts.net" {
		t.Fatalf("state: %+v", st)
	}
	exp, disabled, ok := st.KeyExpiry()
	if !ok || disabled || !exp.Equal(time.Date(2026, 12, 15, 8, 14, 2, 0, time.UTC)) {
		t.Errorf("expiry %v disabled %v ok %v", exp, disabled, ok)
	}
	if ips := st.IPs(); len(ips) != 2 || ips[0] != netip.MustParseAddr("100.101.102.103") {
		t.Errorf("ips %v", ips)
	}
	err := tailscale.SecondPath(st, now)
	if err == nil || !strings.Contains(err.Error(), "within 30 days") || !strings.Contains(err.Error(), "8 days") {
		t.Errorf("second path with the key expiring in 8 days: %v", err)
	}
	if len(st.Funnels()) != 0 || len(st.SubnetRoutes()) != 0 || st.AdvertisesExitNode() || st.FunnelAllowed() {
		t.Errorf("nothing published or routed: %+v", st)
	}
}

func TestExpiryDisabled(t *testing.T) {
	st := read(t, tailscaletest.Answers{"/localapi/v0/status": "status-expiry-disabled.json"})
	if _, disabled, ok := st.KeyExpiry(); !ok || !disabled {
		t.Errorf("expiry disabled not seen")
	}
	if err := tailscale.SecondPath(st, now); err != nil {
		t.Errorf("second path with key expiry disabled: %v", err)
	}
	if st.Serve != nil || st.Prefs != nil {
		t.Error("serve config or prefs read from 404s")
	}
	// 31 days away is a second path; 29 is not.
	far := read(t, tailscaletest.Answers{"/localapi/v0/status": "status-expiry-near.json"})
	exp, _, _ := far.KeyExpiry()
	if err := tailscale.SecondPath(far, exp.Add(-31*24*time.Hour)); err != nil {
		t.Errorf("31 days left: %v", err)
	}
	if err := tailscale.SecondPath(far, exp.Add(-29*24*time.Hour)); err == nil {
		t.Error("29 days left passed")
	}
	if err := tailscale.SecondPath(nil, now); err == nil {
		t.Error("no tailscaled passed")
	}
}

func TestFunnelTargets(t *testing.T) {
	st := read(t, tailscaletest.Answers{"/localapi/v0/status": "status-funnel.json", "/localapi/v0/serve-config": "serve-funnel.json"})
	if !st.FunnelAllowed() {
		t.Error("funnel capability not seen")
	}
	fs := st.Funnels()
	if len(fs) != 2 {
		t.Fatalf("funnels: %+v", fs)
	}
	// 8443 is served to the tailnet only: not a funnel.
	if fs[0].HostPort != "vps.tail1234.ts.net:10000" || fs[0].Targets[0].Local != netip.MustParseAddrPort("127.0.0.1:5432") {
		t.Errorf("tcp funnel: %+v", fs[0])
	}
	f := fs[1]
	if f.Port != 443 || len(f.Targets) != 2 || f.Targets[0].Local != netip.MustParseAddrPort("127.0.0.1:3000") || f.Targets[1].Kind != "path" {
		t.Errorf("https funnel: %+v", f)
	}
}

func TestSubnetRoutes(t *testing.T) {
	st := read(t, tailscaletest.Answers{"/localapi/v0/status": "status-subnet.json", "/localapi/v0/prefs": "prefs-subnet.json"})
	if r := st.SubnetRoutes(); len(r) != 1 || r[0] != netip.MustParsePrefix("10.20.0.0/24") || !st.AdvertisesExitNode() {
		t.Errorf("routes %v exit %v", r, st.AdvertisesExitNode())
	}
	// Without prefs (the CLI fallback), the approved primary routes.
	st.Prefs = nil
	if r := st.SubnetRoutes(); len(r) != 1 || !st.AdvertisesExitNode() {
		t.Errorf("from status: %v", r)
	}
}

func TestAbsentAndBounded(t *testing.T) {
	c := &tailscale.Client{Socket: filepath.Join(t.TempDir(), "none.sock"), CLI: "-"}
	if _, err := c.Read(context.Background()); !errors.Is(err, tailscale.ErrAbsent) {
		t.Errorf("no socket, no CLI: %v", err)
	}
	// A socket that answers garbage is an error, not a state.
	sock := tailscaletest.Serve(t, tailscaletest.Answers{"/localapi/v0/status": "tailscale_test.go"})
	if _, err := (&tailscale.Client{Socket: sock, CLI: "-"}).Read(context.Background()); err == nil {
		t.Error("garbage accepted")
	}
}

func TestLocalTarget(t *testing.T) {
	// Serve's own forms: a port, host:port, URLs with and without ports.
	sc := &tailscale.ServeConfig{AllowFunnel: map[string]bool{"n:443": true}, Web: map[string]*tailscale.WebServerConfig{"n:443": {Handlers: map[string]*tailscale.HTTPHandler{
		"/a": {Proxy: "3000"}, "/b": {Proxy: "localhost:3030"}, "/c": {Proxy: "https+insecure://127.0.0.1"}, "/d": {Proxy: "http://app.internal:80"}, "/e": {Proxy: "http://[::1]:8080/x"},
	}}}}
	st := &tailscale.State{Serve: sc}
	got := map[string]string{}
	for _, tg := range st.Funnels()[0].Targets {
		got[tg.Mount] = tg.Local.String()
	}
	want := map[string]string{"/a": "127.0.0.1:3000", "/b": "127.0.0.1:3030", "/c": "127.0.0.1:443", "/d": "invalid AddrPort", "/e": "[::1]:8080"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
}
