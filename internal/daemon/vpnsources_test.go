package daemon

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/gateway"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

// TestVPNSourcesFollowAppliedPeers: the gateway's allow: [vpn] follows
// the peers moat apply confirmed (the set on the interface), not the
// moat.yaml the daemon loaded: a site-to-site peer's network counts once
// applied and stops counting once removed and applied, with no reload.
func TestVPNSourcesFollowAppliedPeers(t *testing.T) {
	root := t.TempDir()
	key := "hT1hhpe9MwCeJK7Yhkx5EAvS6ROagLQYdPA4nnkvRUk="
	c := vpn.Config{
		Interfaces: []string{"wg0"},
		Ranges:     []schema.CIDR{schema.MustCIDR("100.64.0.0/10")},
		WireGuard: &vpn.WireGuard{Interface: "wg0", Address: []vpn.IfaceAddr{{Prefix: netip.MustParsePrefix("10.42.7.1/24")}},
			Peers: []vpn.Peer{{Name: "laptop", PublicKey: key, Addresses: []schema.CIDR{schema.MustCIDR("10.42.7.2/32")}}}},
	}
	got := func() string { return fmt.Sprint(vpnSources(root, c)) }
	// Before any apply: moat.yaml's peers.
	if g := got(); g != "[100.64.0.0/10 10.42.7.0/24]" {
		t.Fatalf("before apply: %s", g)
	}
	apply := func(peers ...vpn.Peer) { writeApplied(t, root, peers...) }
	home := vpn.Peer{Name: "home", PublicKey: key, Addresses: []schema.CIDR{schema.MustCIDR("10.42.7.3/32"), schema.MustCIDR("192.168.50.0/24")}}
	apply(c.WireGuard.Peers[0], home)
	if g := got(); g != "[100.64.0.0/10 10.42.7.0/24 192.168.50.0/24]" {
		t.Errorf("after applying a site-to-site peer: %s", g)
	}
	apply(c.WireGuard.Peers[0])
	if g := got(); g != "[100.64.0.0/10 10.42.7.0/24]" {
		t.Errorf("after removing it: %s", g)
	}
	// The daemon's config is not touched.
	if len(c.WireGuard.Peers) != 1 {
		t.Errorf("config peers changed: %v", c.WireGuard.Peers)
	}
}

// TestGatewayFollowsAppliedPeers runs a real gateway as moat run wires it
// and applies a site-to-site peer behind its back (the file moat apply
// writes on confirm): its network is admitted by allow: [vpn] at the
// daemon's next check, and refused again once the peer is removed and
// applied; no reload. The client comes from 127.0.0.1, the "site network"
// here.
func TestGatewayFollowsAppliedPeers(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := selfSigned(t, dir, "app.test")
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the app\n") }))
	defer app.Close()
	gcfg := gateway.Config{HTTP: "127.0.0.1:0", HTTPS: "127.0.0.1:0", Sites: []gateway.Site{{Host: "app.test", Certificate: certPath, Key: keyPath,
		Routes: []gateway.Route{{Path: "/admin", Upstream: app.URL, Allow: []string{"vpn"}}}}}}
	key := "hT1hhpe9MwCeJK7Yhkx5EAvS6ROagLQYdPA4nnkvRUk="
	cfg := &config.Config{Gateway: &gcfg}
	cfg.VPN = vpn.Config{Interfaces: []string{"wg0"},
		WireGuard: &vpn.WireGuard{Interface: "wg0", Address: []vpn.IfaceAddr{{Prefix: netip.MustParsePrefix("10.42.7.1/24")}},
			Peers: []vpn.Peer{{Name: "laptop", PublicKey: key, Addresses: []schema.CIDR{schema.MustCIDR("10.42.7.2/32")}}}}}
	g, err := gateway.New(gcfg, gateway.Deps{VPN: vpnSources(dir, cfg.VPN), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	d := &Daemon{o: Options{vpnRoot: dir}, cfg: cfg, gw: g, log: slog.New(slog.DiscardHandler)}

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "app.test", InsecureSkipVerify: true}}}
	status := func() int {
		t.Helper()
		var code int
		waitUntil(t, 10*time.Second, "the gateway answering", func() bool {
			req, _ := http.NewRequest("GET", "https://"+g.HTTPSAddr()+"/admin", nil)
			req.Host = "app.test" // the gateway answers its sites' names only
			resp, err := client.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			code = resp.StatusCode
			return true
		})
		return code
	}
	if c := status(); c == 200 {
		t.Fatal("admitted before any peer routes 127.0.0.0/8")
	}
	site := vpn.Peer{Name: "office", PublicKey: key, Addresses: []schema.CIDR{schema.MustCIDR("10.42.7.3/32"), schema.MustCIDR("127.0.0.0/8")}}
	writeApplied(t, dir, cfg.VPN.WireGuard.Peers[0], site)
	d.followVPNSources()
	if c := status(); c != 200 {
		t.Fatalf("the applied peer's network is refused: %d", c)
	}
	writeApplied(t, dir, cfg.VPN.WireGuard.Peers[0])
	d.followVPNSources()
	if c := status(); c == 200 {
		t.Fatal("the removed peer's network is still admitted")
	}
}

func writeApplied(t *testing.T, root string, peers ...vpn.Peer) {
	t.Helper()
	p := filepath.Join(root, vpn.AppliedPath("wg0"))
	os.MkdirAll(filepath.Dir(p), 0o700)
	b, _ := json.Marshal(map[string]any{"peers": peers})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// selfSigned writes a self-signed certificate for host and its key.
func selfSigned(t *testing.T, dir, host string) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cp, kp := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cp, kp
}
