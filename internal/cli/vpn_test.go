package cli

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/vpn"
)

func runMoat(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// vpnFixture is a moat.yaml with a comment and a root for the keys.
func vpnFixture(t *testing.T) (cfg, root string) {
	dir := t.TempDir()
	cfg, root = filepath.Join(dir, "moat.yaml"), filepath.Join(dir, "root")
	os.WriteFile(cfg, []byte("# the operator's own note\nssh:\n  port: 22\n"), 0o600)
	if o, e, c := runMoat(t, "vpn", "init", "-c", cfg, "--root", root, "--address", "10.77.1.1/24", "--endpoint", "203.0.113.5:51820"); c != 0 {
		t.Fatalf("vpn init: %d %s %s", c, o, e)
	}
	return cfg, root
}

func TestVPNInitWritesConfigAndKey(t *testing.T) {
	cfg, root := vpnFixture(t)
	b, _ := os.ReadFile(cfg)
	if !strings.Contains(string(b), "# the operator's own note") {
		t.Errorf("vpn init dropped the file's comment:\n%s", b)
	}
	c, err := config.Load(cfg, true)
	if err != nil || c.VPN.WireGuard == nil || c.VPN.WireGuard.Address[0].String() != "10.77.1.1/24" {
		t.Fatalf("config: %v %+v", err, c)
	}
	fi, err := os.Stat(filepath.Join(root, vpn.StateDir, "wg0.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v", err)
	}
	key1, _ := os.ReadFile(filepath.Join(root, vpn.StateDir, "wg0.key"))
	// Twice: nothing changes, the host keeps its identity.
	if o, _, c := runMoat(t, "vpn", "init", "-c", cfg, "--root", root); c != 0 || !strings.Contains(o, "nothing changed") {
		t.Fatalf("second init: %d %s", c, o)
	}
	if key2, _ := os.ReadFile(filepath.Join(root, vpn.StateDir, "wg0.key")); !bytes.Equal(key1, key2) {
		t.Fatal("a second vpn init replaced the private key: every peer would be locked out")
	}
	// The firewall opens the port: it is in the spec's public ports.
	if p, ok := wireGuardPort(c); !ok || p.From != 51820 || p.Proto != "udp" {
		t.Fatalf("port: %+v %v", p, ok)
	}
}

// qrFromText reads the terminal QR code (half blocks) back into pixels.
func qrFromText(t *testing.T, s string) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.ContainsAny(l, "█▀▄") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		t.Fatal("no QR code in the output")
	}
	const px = 4
	w := len([]rune(lines[0]))
	img := image.NewGray(image.Rect(0, 0, w*px, len(lines)*2*px))
	for y, l := range lines {
		for x, r := range []rune(l) {
			top, bottom := r == '█' || r == '▀', r == '█' || r == '▄'
			for dy := range px {
				for dx := range px {
					img.SetGray(x*px+dx, y*2*px+dy, color.Gray{Y: 255 * b2u(top)})
					img.SetGray(x*px+dx, y*2*px+px+dy, color.Gray{Y: 255 * b2u(bottom)})
				}
			}
		}
	}
	return decodeImage(t, img)
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func decodeImage(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decode QR: %v", err)
	}
	return res.GetText()
}

func TestVPNAddPrintsConfigAndQRThatDecodeAlike(t *testing.T) {
	cfg, root := vpnFixture(t)
	dir := filepath.Dir(cfg)
	o, e, c := runMoat(t, "vpn", "add", "phone", "-c", cfg, "--root", root, "--dns", "10.77.1.1", "--output", filepath.Join(dir, "phone.conf"), "--qr", filepath.Join(dir, "phone.png"))
	if c != 0 {
		t.Fatalf("vpn add: %d %s", c, e)
	}
	file, _ := os.ReadFile(filepath.Join(dir, "phone.conf"))
	if !strings.Contains(o, string(file)) {
		t.Fatalf("printed config differs from --output:\n%s\n%s", o, file)
	}
	if got := qrFromText(t, o); got != string(file) {
		t.Fatalf("terminal QR decodes to\n%s\nwant\n%s", got, file)
	}
	pngb, _ := os.ReadFile(filepath.Join(dir, "phone.png"))
	img, err := png.Decode(bytes.NewReader(pngb))
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeImage(t, img); got != string(file) {
		t.Fatalf("PNG QR decodes to %q", got)
	}
	for _, f := range []string{"phone.conf", "phone.png"} {
		if fi, _ := os.Stat(filepath.Join(dir, f)); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v: it holds a private key", f, fi.Mode().Perm())
		}
	}
	cc, err := vpn.ParseClientConfig(string(file))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := vpn.Keys{Root: root}.Private("wg0")
	if cc.PeerPublicKey != srv.PublicKey().String() || cc.Address[0].String() != "10.77.1.2/32" || cc.Endpoint != "203.0.113.5:51820" || cc.DNS[0] != "10.77.1.1" {
		t.Fatalf("client config: %+v", cc)
	}
	// The config names the peer's public key, never a private one.
	yml, _ := os.ReadFile(cfg)
	if strings.Contains(string(yml), cc.PrivateKey) || strings.Contains(string(yml), cc.PresharedKey) {
		t.Fatal("moat.yaml holds a secret key")
	}
	priv, _ := wgtypes.ParseKey(cc.PrivateKey)
	if !strings.Contains(string(yml), priv.PublicKey().String()) {
		t.Fatal("moat.yaml lacks the peer's public key")
	}
}

func TestVPNPeerCommandsRefuseMistakes(t *testing.T) {
	cfg, root := vpnFixture(t)
	if _, e, c := runMoat(t, "vpn", "add", "laptop", "-c", cfg, "--root", root, "--no-qr"); c != 0 {
		t.Fatal(e)
	}
	c0, _ := config.Load(cfg, true)
	laptop, _ := c0.VPN.WireGuard.Peer("laptop")
	cases := [][]string{
		{"vpn", "add", "laptop"},                                  // taken name
		{"vpn", "add", "../etc/x"},                                // a name that would be a path
		{"vpn", "add", "twin", "--pubkey", laptop.PublicKey},      // another device's key
		{"vpn", "add", "bad", "--pubkey", "not-a-key"},            // not a key
		{"vpn", "remove", "nobody"},                               // unknown
		{"vpn", "rotate", "laptop", "--pubkey", laptop.PublicKey}, // same key
	}
	before, _ := os.ReadFile(cfg)
	for _, args := range cases {
		args = append(args, "-c", cfg, "--root", root)
		if args[1] != "remove" {
			args = append(args, "--no-qr")
		}
		if _, e, c := runMoat(t, args...); c != ExitUsage || strings.Contains(e, "flag provided but not defined") {
			t.Errorf("%v: exit %d, want %d: %s", args, c, ExitUsage, e)
		}
	}
	if after, _ := os.ReadFile(cfg); !bytes.Equal(before, after) {
		t.Errorf("a refused command changed moat.yaml:\n%s", after)
	}
	// rotate: new key, same address; remove: gone.
	if _, e, c := runMoat(t, "vpn", "rotate", "laptop", "-c", cfg, "--root", root, "--no-qr"); c != 0 {
		t.Fatal(e)
	}
	c1, _ := config.Load(cfg, true)
	p, _ := c1.VPN.WireGuard.Peer("laptop")
	if p.PublicKey == laptop.PublicKey || p.Addresses[0] != laptop.Addresses[0] {
		t.Fatalf("rotate: %+v -> %+v", laptop, p)
	}
	if _, e, c := runMoat(t, "vpn", "remove", "laptop", "-c", cfg, "--root", root); c != 0 {
		t.Fatal(e)
	}
	c2, _ := config.Load(cfg, true)
	if _, ok := c2.VPN.WireGuard.Peer("laptop"); ok {
		t.Fatal("remove left the peer")
	}
}

func TestVPNInitIPv6AndAddIPv6(t *testing.T) {
	dir := t.TempDir()
	cfg, root := filepath.Join(dir, "moat.yaml"), filepath.Join(dir, "root")
	if o, e, c := runMoat(t, "vpn", "init", "-c", cfg, "--root", root, "--ipv6", "--endpoint", "203.0.113.5:51820"); c != 0 {
		t.Fatalf("init: %s %s", o, e)
	}
	c0, err := config.Load(cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	w := c0.VPN.WireGuard
	if len(w.Address) != 2 || !w.Address[0].Addr().Is4() || !w.Address[1].Addr().Is6() || w.Address[1].Bits() != 64 {
		t.Fatalf("addresses: %v", w.Address)
	}
	o, e, c := runMoat(t, "vpn", "add", "laptop", "--ipv6", "-c", cfg, "--root", root, "--no-qr")
	if c != 0 {
		t.Fatal(e)
	}
	cc, err := vpn.ParseClientConfig(o[strings.Index(o, "[Interface]"):strings.Index(o, "\nNext:")])
	if err != nil {
		t.Fatal(err)
	}
	if len(cc.Address) != 2 || !cc.Address[1].Addr().Is6() || len(cc.AllowedIPs) != 2 {
		t.Fatalf("client: %+v", cc)
	}
	if !w.Address[1].Subnet().Contains(cc.Address[1].Addr()) {
		t.Fatalf("%v outside %v", cc.Address[1], w.Address[1])
	}
	// The VPN's ranges now hold both subnets: the firewall, the gateway's
	// allow: [vpn] and the guard's ignore list see the peers.
	c1, _ := config.Load(cfg, true)
	if !c1.VPN.Contains(cc.Address[0].Addr()) || !c1.VPN.Contains(cc.Address[1].Addr()) {
		t.Fatalf("vpn ranges %v miss the peer", c1.VPN.Prefixes())
	}
}

func TestVPNInitRefusesAClashingAddress(t *testing.T) {
	dir := t.TempDir()
	cfg, root := filepath.Join(dir, "moat.yaml"), filepath.Join(dir, "root")
	// 127.0.0.0/8 is on lo, on every host; 172.17.0.0/16 is Docker's
	// default bridge even before Docker creates it.
	for _, a := range []string{"127.0.0.5/24", "172.17.5.1/24"} {
		if _, e, c := runMoat(t, "vpn", "init", "-c", cfg, "--root", root, "--address", a); c != ExitUsage || !strings.Contains(e, "overlaps") {
			t.Errorf("--address %s: exit %d %s", a, c, e)
		}
	}
	if _, err := os.Stat(cfg); err == nil {
		t.Error("a refused init wrote moat.yaml")
	}
	if _, err := os.Stat(filepath.Join(root, vpn.StateDir)); err == nil {
		t.Error("a refused init wrote keys")
	}
}

func TestVPNPeersJSONWhileDown(t *testing.T) {
	dir := t.TempDir()
	cfg, root := filepath.Join(dir, "moat.yaml"), filepath.Join(dir, "root")
	iface := fmt.Sprintf("wgt%d", os.Getpid()%100000) // no such interface here
	if _, e, c := runMoat(t, "vpn", "init", "-c", cfg, "--root", root, "--interface", iface, "--address", "10.77.1.1/24", "--endpoint", "203.0.113.5:51820"); c != 0 {
		t.Fatal(e)
	}
	if _, e, c := runMoat(t, "vpn", "add", "laptop", "-c", cfg, "--root", root, "--no-qr"); c != 0 {
		t.Fatal(e)
	}
	o, e, c := runMoat(t, "vpn", "peers", "--json", "-c", cfg, "--root", root)
	if c != 0 {
		t.Fatalf("%d %s", c, e)
	}
	for _, want := range []string{`"interface": "` + iface + `"`, `"up": false`, `"name": "laptop"`, `"live": false`, `"admin": true`} {
		if !strings.Contains(o, want) {
			t.Errorf("%s missing:\n%s", want, o)
		}
	}
}
