package vpn

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/moat-sh/moat/internal/schema"
)

func key(t *testing.T) wgtypes.Key {
	t.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testWG(t *testing.T) *WireGuard {
	return &WireGuard{Address: []IfaceAddr{{netip.MustParsePrefix("10.9.8.1/24")}}}
}

func TestValidateCatchesWhatLocksPeersOut(t *testing.T) {
	k := key(t).PublicKey().String()
	cases := map[string]struct {
		w    WireGuard
		want string
	}{
		"no address":      {WireGuard{}, "address: missing"},
		"network address": {WireGuard{Address: []IfaceAddr{{netip.MustParsePrefix("10.9.8.0/24")}}}, "not a host address"},
		"bad name":        {WireGuard{Interface: "wg 0", Address: []IfaceAddr{{netip.MustParsePrefix("10.9.8.1/24")}}}, "invalid interface"},
		"dup key": {WireGuard{Address: []IfaceAddr{{netip.MustParsePrefix("10.9.8.1/24")}}, Peers: []Peer{
			{Name: "a", PublicKey: k, Addresses: []schema.CIDR{schema.MustCIDR("10.9.8.2")}},
			{Name: "b", PublicKey: k, Addresses: []schema.CIDR{schema.MustCIDR("10.9.8.3")}}}}, "another peer's too"},
		"host's address": {WireGuard{Address: []IfaceAddr{{netip.MustParsePrefix("10.9.8.1/24")}}, Peers: []Peer{
			{Name: "a", PublicKey: k, Addresses: []schema.CIDR{schema.MustCIDR("10.9.8.1")}}}}, "already the host's"},
		"outside": {WireGuard{Address: []IfaceAddr{{netip.MustParsePrefix("10.9.8.1/24")}}, Peers: []Peer{
			{Name: "a", PublicKey: k, Addresses: []schema.CIDR{schema.MustCIDR("10.9.9.2")}}}}, "outside"},
		"bad key": {WireGuard{Address: []IfaceAddr{{netip.MustParsePrefix("10.9.8.1/24")}}, Peers: []Peer{
			{Name: "a", PublicKey: "abc", Addresses: []schema.CIDR{schema.MustCIDR("10.9.8.2")}}}}, "invalid WireGuard key"},
		"name with slash": {WireGuard{Address: []IfaceAddr{{netip.MustParsePrefix("10.9.8.1/24")}}, Peers: []Peer{
			{Name: "../x", PublicKey: k, Addresses: []schema.CIDR{schema.MustCIDR("10.9.8.2")}}}}, "invalid peer name"},
	}
	for name, c := range cases {
		err := c.w.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}

func TestNextFreeSkipsUsedAndStopsAtBroadcast(t *testing.T) {
	w := &WireGuard{Address: []IfaceAddr{{netip.MustParsePrefix("10.9.8.1/30")}}}
	a, err := w.NextFree(4)
	if err != nil || a != netip.MustParseAddr("10.9.8.2") {
		t.Fatalf("first free: %v %v", a, err)
	}
	w.Peers = append(w.Peers, Peer{Name: "a", Addresses: []schema.CIDR{schema.MustCIDR("10.9.8.2")}})
	if a, err := w.NextFree(4); err == nil {
		t.Fatalf("a /30 with host and one peer is full, got %v (10.9.8.3 is the broadcast)", a)
	}
	if _, err := w.NextFree(6); err == nil {
		t.Fatal("no IPv6 address: NextFree(6) must say so")
	}
}

func TestPickSubnetAvoidsTaken(t *testing.T) {
	// Everything in 10/8 taken but 10.200.7.0/24.
	var taken []netip.Prefix
	for i := range 256 {
		if i != 200 {
			taken = append(taken, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16))
		}
	}
	taken = append(taken, netip.MustParsePrefix("10.200.0.0/22"))
	for range 20 {
		p, err := PickSubnet4(taken)
		if err != nil {
			// 256 random tries can miss the few free /24s: that is an error, not a clash.
			continue
		}
		for _, tk := range taken {
			if tk.Overlaps(p.Masked()) {
				t.Fatalf("picked %s overlapping %s", p, tk)
			}
		}
	}
	if _, err := PickSubnet4([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}); err == nil {
		t.Fatal("all of 10/8 taken: want an error, not a clash")
	}
	p6, err := PickSubnet6(nil)
	if err != nil || !netip.MustParsePrefix("fd00::/8").Contains(p6.Addr()) || p6.Bits() != 64 {
		t.Fatalf("ULA: %v %v", p6, err)
	}
}

func sampleClient(t *testing.T) ClientConfig {
	return ClientConfig{
		PrivateKey: key(t).String(), Address: []netip.Prefix{netip.MustParsePrefix("10.9.8.2/32")},
		DNS: []string{"10.9.8.1"}, PeerPublicKey: key(t).PublicKey().String(), PresharedKey: key(t).String(),
		Endpoint: "203.0.113.5:51820", AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.9.8.0/24")}, Keepalive: 25,
	}
}

func TestClientConfigRoundTrip(t *testing.T) {
	c := sampleClient(t)
	got, err := ParseClientConfig(c.Render())
	if err != nil {
		t.Fatal(err)
	}
	if got.Render() != c.Render() {
		t.Fatalf("round trip:\n%s\nvs\n%s", got.Render(), c.Render())
	}
}

func TestParseClientConfigRefusesWhatItCannotHonour(t *testing.T) {
	base := sampleClient(t).Render()
	for name, in := range map[string]string{
		"PostUp runs commands": strings.Replace(base, "[Peer]", "PostUp = rm -rf /\n\n[Peer]", 1),
		"host name endpoint":   strings.Replace(base, "203.0.113.5:51820", "vpn.example.com:51820", 1),
		"two peers":            base + "\n[Peer]\nPublicKey = " + key(t).PublicKey().String() + "\n",
		"no peer":              base[:strings.Index(base, "[Peer]")],
		"bad key":              strings.Replace(base, "PresharedKey = ", "PresharedKey = x", 1),
	} {
		if _, err := ParseClientConfig(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// decodeQR reads a QR code image back with gozxing.
func decodeQR(t *testing.T, img image.Image) string {
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

// textImage turns the terminal rendering back into pixels: each cell is
// two modules, the top and bottom halves; a drawn half is light.
func textImage(t *testing.T, s string) image.Image {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	w := len([]rune(lines[0]))
	const px = 4
	img := image.NewGray(image.Rect(0, 0, w*px, len(lines)*2*px))
	for y, l := range lines {
		for x, r := range []rune(l) {
			top := r == '█' || r == '▀'
			bottom := r == '█' || r == '▄'
			if r != ' ' && !top && !bottom {
				t.Fatalf("unexpected rune %q", r)
			}
			for dy := range px {
				for dx := range px {
					c := func(light bool) color.Gray {
						if light {
							return color.Gray{255}
						}
						return color.Gray{0}
					}
					img.SetGray(x*px+dx, y*2*px+dy, c(top))
					img.SetGray(x*px+dx, y*2*px+px+dy, c(bottom))
				}
			}
		}
	}
	return img
}

func TestQRDecodesToTheSameConfig(t *testing.T) {
	text := sampleClient(t).Render()
	term, err := QRText(text)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeQR(t, textImage(t, term)); got != text {
		t.Fatalf("terminal QR decodes to\n%q\nwant\n%q", got, text)
	}
	b, err := QRPNG(text, 512)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeQR(t, img); got != text {
		t.Fatalf("PNG QR decodes to %q", got)
	}
}

func ipn(s string) net.IPNet { return ipNet(netip.MustParsePrefix(s)) }

func TestDiffPeersLeavesUnchangedPeersAlone(t *testing.T) {
	a, b, c := key(t).PublicKey(), key(t).PublicKey(), key(t).PublicKey()
	zero := wgtypes.Key{}
	ka := 25 * time.Second
	live := []wgtypes.Peer{
		{PublicKey: a, AllowedIPs: []net.IPNet{ipn("10.9.8.2/32")}, PersistentKeepaliveInterval: ka, LastHandshakeTime: time.Now()},
		{PublicKey: b, AllowedIPs: []net.IPNet{ipn("10.9.8.3/32")}, PersistentKeepaliveInterval: ka},
	}
	want := []wgtypes.PeerConfig{
		{PublicKey: a, PresharedKey: &zero, PersistentKeepaliveInterval: &ka, AllowedIPs: []net.IPNet{ipn("10.9.8.2/32")}},
		{PublicKey: c, PresharedKey: &zero, PersistentKeepaliveInterval: &ka, AllowedIPs: []net.IPNet{ipn("10.9.8.4/32")}},
	}
	got := DiffPeers(live, want, map[wgtypes.Key]string{a: "laptop", c: "phone"})
	if len(got) != 2 {
		t.Fatalf("want add phone and remove b, got %+v", got)
	}
	for _, g := range got {
		if g.Config.PublicKey == a {
			t.Fatalf("unchanged peer laptop is in the change: its handshake would be at risk: %s", g.Line)
		}
	}
	if !strings.HasPrefix(got[0].Line, "+ peer phone") || !got[1].Config.Remove || !strings.HasPrefix(got[1].Line, "- peer") {
		t.Fatalf("lines: %q %q", got[0].Line, got[1].Line)
	}
	// A changed address is an update of that peer only.
	want[0].AllowedIPs = []net.IPNet{ipn("10.9.8.9/32")}
	got = DiffPeers(live[:1], want[:1], nil)
	if len(got) != 1 || !strings.HasPrefix(got[0].Line, "~ peer") {
		t.Fatalf("update: %+v", got)
	}
}

func TestPrefixesIncludeWireGuard(t *testing.T) {
	c := Config{Ranges: []schema.CIDR{schema.MustCIDR("100.64.0.0/10")}, WireGuard: testWG(t)}
	c.WireGuard.Peers = []Peer{{Name: "home", Addresses: []schema.CIDR{schema.MustCIDR("10.9.8.2"), schema.MustCIDR("192.168.50.0/24")}}}
	got := c.Prefixes()
	want := []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("10.9.8.0/24"), netip.MustParsePrefix("192.168.50.0/24")}
	if len(got) != len(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v want %v", got, want)
		}
	}
	if !c.Contains(netip.MustParseAddr("192.168.50.7")) || c.Contains(netip.MustParseAddr("10.9.9.1")) {
		t.Fatal("Contains disagrees with Prefixes")
	}
}

func TestAdminHandshakeSecondPath(t *testing.T) {
	pk := key(t).PublicKey()
	w := testWG(t)
	no := false
	w.Peers = []Peer{{Name: "laptop", PublicKey: pk.String()}, {Name: "cam", PublicKey: key(t).PublicKey().String(), Admin: &no}}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	dev := &wgtypes.Device{Peers: []wgtypes.Peer{{PublicKey: pk, LastHandshakeTime: now.Add(-11 * time.Minute)}}}
	if _, err := w.AdminHandshake(dev, now, SecondPathAge); err == nil {
		t.Fatal("an 11-minute-old handshake passed the 10-minute rule")
	}
	dev.Peers[0].LastHandshakeTime = now.Add(-2 * time.Minute)
	if ev, err := w.AdminHandshake(dev, now, SecondPathAge); err != nil || !strings.Contains(ev, "laptop") {
		t.Fatalf("%q %v", ev, err)
	}
	// A fresh handshake from a non-admin peer proves nothing.
	w.Peers[0].Admin = &no
	dev.Peers = append(dev.Peers, wgtypes.Peer{})
	if _, err := w.AdminHandshake(dev, now, SecondPathAge); err == nil {
		t.Fatal("non-admin peer counted")
	}
	if _, err := w.AdminHandshake(nil, now, SecondPathAge); err == nil {
		t.Fatal("interface down passed")
	}
}

func TestWatchTellsEachThingOnce(t *testing.T) {
	pk := key(t).PublicKey()
	w := testWG(t)
	w.Peers = []Peer{{Name: "laptop", PublicKey: pk.String()}}
	var wt Watch
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	kinds := func(ns []Notice) []string {
		var out []string
		for _, n := range ns {
			out = append(out, n.Kind)
		}
		return out
	}
	if got := kinds(wt.Observe(w, nil, now)); len(got) != 1 || got[0] != NoticeDown {
		t.Fatalf("down: %v", got)
	}
	if got := wt.Observe(w, nil, now.Add(time.Minute)); len(got) != 0 {
		t.Fatalf("down twice told twice: %v", got)
	}
	ep := &net.UDPAddr{IP: net.ParseIP("198.51.100.7"), Port: 40000}
	dev := &wgtypes.Device{Peers: []wgtypes.Peer{{PublicKey: pk, Endpoint: ep, LastHandshakeTime: now.Add(2 * time.Minute)}}}
	if got := kinds(wt.Observe(w, dev, now.Add(2*time.Minute))); len(got) != 2 || got[0] != NoticeUp || got[1] != NoticeNewEndpoint {
		t.Fatalf("up with a first endpoint: %v", got)
	}
	// Same address, another port (NAT): nothing new.
	dev.Peers[0].Endpoint = &net.UDPAddr{IP: net.ParseIP("198.51.100.7"), Port: 40001}
	if got := wt.Observe(w, dev, now.Add(3*time.Minute)); len(got) != 0 {
		t.Fatalf("a new port alone alerted: %v", kinds(got))
	}
	dev.Peers[0].Endpoint = &net.UDPAddr{IP: net.ParseIP("203.0.113.9"), Port: 40001}
	got := wt.Observe(w, dev, now.Add(4*time.Minute))
	if len(got) != 1 || got[0].Kind != NoticeNewEndpoint || !strings.Contains(got[0].Text, "never used before") {
		t.Fatalf("new endpoint: %+v", got)
	}
	// Eight days of silence: told once, and again only after a handshake.
	later := now.Add(8 * 24 * time.Hour)
	if got := kinds(wt.Observe(w, dev, later)); len(got) != 1 || got[0] != NoticeSilence {
		t.Fatalf("silence: %v", got)
	}
	if got := wt.Observe(w, dev, later.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("silence told twice: %v", kinds(got))
	}
}

func TestConfigNeedsTheInterfaceListed(t *testing.T) {
	c := Config{WireGuard: testWG(t)}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "not listed") {
		t.Fatalf("wg0 missing from vpn.interfaces: %v", err)
	}
	c.Interfaces = []string{"wg0"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestMakeStepWritesTheBootPeerSetOnConfirmOnly(t *testing.T) {
	root := t.TempDir()
	w := testWG(t)
	pk := key(t).PublicKey()
	w.Peers = []Peer{{Name: "laptop", PublicKey: pk.String(), Addresses: []schema.CIDR{schema.MustCIDR("10.9.8.2")}}}
	down := func(string) (*wgtypes.Device, error) { return nil, ErrNoDevice }
	st, err := MakeStep(t.Context(), StepInput{WireGuard: w, Keys: Keys{Root: root}, Live: down})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Files) != 0 || len(st.Final) != 1 || st.Final[0].Path != AppliedPath("wg0") || st.Final[0].Mode != 0o600 {
		t.Fatalf("the boot peer set must be a Final file (written on confirm): files %v final %v", st.Files, st.Final)
	}
	if strings.Contains(string(st.Final[0].Data), "preshared") {
		t.Fatal("the boot peer set holds secrets; plan would print them")
	}
	// Once written, and the interface already as configured: nothing to do.
	p := filepath.Join(root, AppliedPath("wg0"))
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, st.Final[0].Data, 0o600)
	ka := time.Duration(0)
	live := func(string) (*wgtypes.Device, error) {
		return &wgtypes.Device{Peers: []wgtypes.Peer{{PublicKey: pk, AllowedIPs: []net.IPNet{ipn("10.9.8.2/32")}, PersistentKeepaliveInterval: ka}}}, nil
	}
	st, err = MakeStep(t.Context(), StepInput{WireGuard: w, Keys: Keys{Root: root}, Live: live})
	if err != nil || !st.Empty() {
		t.Fatalf("nothing changed, yet the step is %+v (%v)", st, err)
	}
	peers, ok, err := AppliedPeers(root, "wg0")
	if err != nil || !ok || len(peers) != 1 || peers[0].PublicKey != pk.String() {
		t.Fatalf("applied peers: %v %v %v", peers, ok, err)
	}
}
