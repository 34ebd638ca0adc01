package tailscale_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/tailscale"
	"github.com/moat-sh/moat/internal/tailscale/tailscaletest"
)

// FuzzState: whatever tailscaled (or something posing as it on the
// socket) answers, reading the state's facts never panics, and a Funnel
// target's local address is loopback, unspecified or a literal, never a
// name resolved.
func FuzzState(f *testing.F) {
	for _, n := range []string{"serve-funnel.json", "serve-tailnet-only.json", "status-expiry-near.json"} {
		b, err := os.ReadFile(tailscaletest.Fixture(n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, b)
	}
	f.Add([]byte(`{"AllowFunnel":{"h:443":true},"Web":{"h:443":{"Handlers":{"/":{"Proxy":"http://[::1%eth0]:x"}}}},"TCP":{"443":{"TCPForward":"unix:/x"}}}`), []byte(`{"Self":{"KeyExpiry":"0001-01-01T00:00:00Z"}}`))
	f.Fuzz(func(t *testing.T, serve, status []byte) {
		st := &tailscale.State{}
		if json.Unmarshal(status, &st.Status) != nil {
			return
		}
		var sc tailscale.ServeConfig
		if json.Unmarshal(serve, &sc) == nil {
			st.Serve = &sc
		}
		st.KeyExpiry()
		st.SubnetRoutes()
		st.AdvertisesExitNode()
		st.FunnelAllowed()
		_ = tailscale.SecondPath(st, time.Now())
		for _, fn := range st.Funnels() {
			for _, tg := range fn.Targets {
				if tg.Local.IsValid() && tg.Local.Addr().Zone() != "" {
					t.Fatalf("a zoned local address: %v", tg.Local)
				}
			}
		}
	})
}
