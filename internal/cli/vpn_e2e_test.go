package cli

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

// wgLab is the recipe's starting point: sshd on vps, moat.yaml at stage
// public, then (steps 1 and 2) moat vpn init, moat vpn up and moat apply.
type wgLab struct {
	*e2e
	attacker        *lab.Host
	cfg             string
	wgVPS, wgLaptop string
	vpsVPNAddr      string
	op              *ssh.Client
	vpnUp           *lab.Proc // moat vpn up on vps
}

func (x *wgLab) mustOK(c *ssh.Client, args ...string) string {
	x.t.Helper()
	o, code := x.run(c, args...)
	if code != 0 {
		x.t.Fatalf("moat %s: exit %d\n%s", strings.Join(args, " "), code, o)
	}
	return o
}

func newWGLab(t *testing.T) *wgLab {
	lab.RequireRoot(t)
	_, err := os.Stat("/dev/net/tun")
	lab.Require(t, err == nil, "needs /dev/net/tun for wireguard-go")
	x := &wgLab{e2e: newE2E(t)}
	// The e2e lab's stand-in VPN is a veth named wg0: this test brings a
	// real one up instead.
	x.vps.MustRun(t, "ip", "link", "del", "wg0")
	x.attacker = x.lab.Host("attacker")
	x.lab.Link(x.vps, "eth1", x.attacker, "eth0", []string{"203.0.113.1/24"}, []string{"203.0.113.2/24"})

	// Interface names are global to the machine through wireguard-go's
	// UAPI sockets (/var/run/wireguard/NAME.sock), not per namespace.
	suffix := fmt.Sprint(os.Getpid() % 100000)
	x.wgVPS, x.wgLaptop = "wgv"+suffix, "wgl"+suffix
	x.cfg = x.e2e.cfg
	cfg := x.cfg
	os.WriteFile(cfg, []byte(`host:
  admin:
    user: deploy
  updates:
    unattended: false
  swap:
    disabled: true
  sysctl:
    disabled: true
ssh:
  permit_root_login: prohibit-password
firewall:
  public_interface: eth0
vpn:
  interfaces: []
  ranges: []
`), 0o644)
	if err := attackerLogin(x.attacker, "203.0.113.1:22", x.rootKey); err != nil && !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("before the recipe the attacker should reach sshd: %v", err)
	}
	x.op = x.mustClient(vpsPublic+":22", "root", x.rootKey)
	t.Cleanup(func() { x.op.Close() })

	// 1. moat vpn init: keys, an address, a port, vpn.wireguard in moat.yaml.
	o := x.mustOK(x.op, "vpn", "init", "-c", cfg, "--interface", x.wgVPS, "--endpoint", vpsPublic+":51820")
	c, err := config.Load(cfg, true)
	if err != nil || c.VPN.WireGuard == nil {
		t.Fatalf("moat.yaml after vpn init: %v\n%s", err, o)
	}
	w := c.VPN.WireGuard
	x.vpsVPNAddr = w.Address[0].Addr().String()
	if fi, err := os.Stat(filepath.Join(x.root, vpn.StateDir, x.wgVPS+".key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v %v", err, fi)
	}
	// The interfaces moat's host facts read under --root: eth0, eth1 and
	// the new WireGuard interface.
	os.WriteFile(filepath.Join(x.root, ".fixture/interfaces.json"), []byte(fmt.Sprintf(`[{"name":"eth0","index":2,"mtu":1500,"flags":["up","running"],"addrs":["198.51.100.1/24"]},
 {"name":"eth1","index":4,"mtu":1500,"flags":["up","running"],"addrs":["203.0.113.1/24"]},
 {"name":%q,"index":3,"mtu":1420,"flags":["up","running"],"addrs":[%q]}]`, x.wgVPS, w.Address[0].String())), 0o644)

	// 2. moat vpn up (moat-vpn.service in the recipe), then moat apply
	// opens the UDP port through the normal transaction.
	x.startVPN()
	o = x.mustOK(x.op, "apply", "-c", cfg, "--yes")
	if !strings.Contains(string(x.vps.MustRun(t, "nft", "list", "table", "inet", "moat")), "51820") {
		t.Fatalf("the firewall does not open UDP 51820:\n%s", o)
	}
	return x
}

// TestE2EWireGuardRecipe follows the README recipe "From no VPN to SSH
// over WireGuard only" step by step, with wireguard-go (userspace, over
// /dev/net/tun) on both ends: CI has no WireGuard kernel module.
//
// vps and laptop share the "public" link (eth0); an attacker reaches vps
// over a second public link (eth1). moat runs on vps inside SSH sessions,
// as the operator would run it; the laptop brings the printed client
// config up with `moat vpn up --client`.
// startVPN starts moat vpn up on vps, as moat-vpn.service does at boot.
func (x *wgLab) startVPN() {
	x.t.Helper()
	x.vpnUp = x.vps.Start(x.t, x.bin, "vpn", "up", "-c", x.cfg, "--root", x.root)
	waitFor(x.t, 10*time.Second, "the vps interface", func() bool {
		out, err := x.vps.Run(context.Background(), "ip", "addr", "show", x.wgVPS)
		return err == nil && strings.Contains(string(out), x.vpsVPNAddr)
	})
}

// restartVPN is a reboot as far as the interface is concerned.
func (x *wgLab) restartVPN() {
	x.t.Helper()
	x.vpnUp.Stop()
	waitFor(x.t, 10*time.Second, "the vps interface gone", func() bool {
		_, err := x.vps.Run(context.Background(), "ip", "link", "show", x.wgVPS)
		return err != nil
	})
	x.startVPN()
}

func livePeers(t *testing.T, iface string) int {
	t.Helper()
	var n int
	waitFor(t, 5*time.Second, "reading "+iface, func() bool {
		dev, err := vpn.Show(iface)
		if err == nil {
			n = len(dev.Peers)
		}
		return err == nil
	})
	return n
}

func TestE2EWireGuardRecipe(t *testing.T) {
	x := newWGLab(t)
	cfg, op, attacker, wgVPS, wgLaptop, vpsVPNAddr := x.cfg, x.op, x.attacker, x.wgVPS, x.wgLaptop, x.vpsVPNAddr
	pub := vpsPublic + ":22"
	mustOK := x.mustOK
	var o string

	// 3. moat vpn add laptop: config, QR code, then apply puts it on live.
	laptopConf := filepath.Join(filepath.Dir(x.root), "laptop.conf")
	o = mustOK(op, "vpn", "add", "laptop", "-c", cfg, "--output", laptopConf)
	if !strings.Contains(o, "[Peer]") || !strings.Contains(o, "▀") {
		t.Fatalf("vpn add prints no config or QR code:\n%s", o)
	}
	if plan := mustOK(op, "plan", "-c", cfg); !strings.Contains(plan, "+ peer laptop") {
		t.Fatalf("plan does not show the new peer:\n%s", plan)
	}
	mustOK(op, "apply", "-c", cfg, "--yes")
	// Stage vpn now, the laptop not connected yet: refused, saying why.
	setExposure(t, cfg, "vpn")
	if o, code := x.run(op, "apply", "-c", cfg, "--yes"); code != ExitUsage || !strings.Contains(o, "has ever completed a handshake") {
		t.Fatalf("stage vpn before any admin-peer handshake: exit %d\n%q", code, o)
	}
	setExposure(t, cfg, "public")

	// 4. The laptop brings the printed config up.
	x.admin.Start(t, x.bin, "vpn", "up", "--client", laptopConf, "--interface", wgLaptop)
	tunnel := vpsVPNAddr + ":22"
	waitFor(t, 20*time.Second, "SSH over the tunnel", func() bool { return x.canLogInWithin(tunnel, 3*time.Second) == nil })

	// 5. Stage vpn+public, then from a session over the tunnel stage vpn:
	// the second path (a fresh admin-peer handshake) is there.
	setExposure(t, cfg, "vpn+public")
	mustOK(op, "apply", "-c", cfg, "--yes")
	overVPN := x.mustClient(tunnel, "root", x.rootKey)
	defer overVPN.Close()
	setExposure(t, cfg, "vpn")
	o = mustOK(overVPN, "apply", "-c", cfg, "--yes")
	if err := attackerLogin(attacker, "203.0.113.1:22", x.rootKey); err == nil || strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("at stage vpn the attacker still reaches sshd: %v\n%s", err, o)
	}
	if err := x.loginFailure(pub, 3*time.Second); err == nil {
		t.Fatal("at stage vpn the public path still lets logins in")
	}
	if err := x.loginSoon(tunnel, 20*time.Second); err != nil {
		t.Fatalf("at stage vpn SSH over WireGuard fails: %v", err)
	}
	// A forged tunnel address on another link is not the VPN: the
	// attacker takes an unused address of the WireGuard subnet, and the
	// vps even routes it back to them, so only the arrival interface tells
	// it from a peer. Dropped, while the tunnel still logs in.
	spoof := netip.MustParseAddr(vpsVPNAddr).As4()
	spoof[3] = 200
	spoofAddr := netip.AddrFrom4(spoof).String()
	attacker.MustRun(t, "ip", "addr", "add", spoofAddr+"/32", "dev", "eth0")
	// sshd listens on the tunnel address only at this stage: the
	// attacker aims there, through the vps's eth1.
	attacker.MustRun(t, "ip", "route", "add", vpsVPNAddr+"/32", "via", "203.0.113.1", "dev", "eth0", "src", spoofAddr)
	x.vps.MustRun(t, "ip", "route", "add", spoofAddr+"/32", "dev", "eth1")
	if err := attackerLogin(attacker, tunnel, x.rootKey); err == nil || strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("a forged WireGuard source on eth1 reaches sshd at stage vpn: %v", err)
	}
	if err := x.canLogIn(tunnel); err != nil {
		t.Fatalf("SSH over WireGuard fails beside the forgery: %v", err)
	}
	attacker.MustRun(t, "ip", "route", "del", vpsVPNAddr+"/32")

	// 6. A peer change keeps the laptop's tunnel: no new handshake, no
	// reset counters, the open session still works.
	before := peerOf(t, wgVPS, "laptop", cfg)
	mustOK(overVPN, "vpn", "add", "phone", "-c", cfg, "--no-qr")
	mustOK(overVPN, "apply", "-c", cfg, "--yes")
	after := peerOf(t, wgVPS, "laptop", cfg)
	if !after.LastHandshake.Equal(before.LastHandshake) && time.Since(before.LastHandshake) < 100*time.Second {
		t.Errorf("applying a new peer renewed the laptop's handshake: %v -> %v", before.LastHandshake, after.LastHandshake)
	}
	if after.RxBytes < before.RxBytes {
		t.Errorf("the laptop's counters went back (%d -> %d): the peer was removed and added again", before.RxBytes, after.RxBytes)
	}
	if o, code := x.run(overVPN, "vpn", "peers", "-c", cfg); code != 0 || !strings.Contains(o, "phone") || !strings.Contains(o, "ago") {
		t.Errorf("vpn peers: %d\n%s", code, o)
	}
	// moat status shows the VPN block (here without a daemon: read live).
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	st, _ := x.vps.Run(sctx, x.bin, "status", "-c", cfg, "--socket", filepath.Join(t.TempDir(), "none.sock"), "--state", t.TempDir())
	// wireguard-go: what CI runs, and what moat status says runs.
	if !strings.Contains(string(st), "VPN  WireGuard "+wgVPS+" up (wireguard-go (userspace))") || !strings.Contains(string(st), "handshake ") {
		t.Errorf("moat status lacks the VPN block:\n%s", st)
	}

	// 7. Removing the last admin peer with a handshake, SSH being
	// VPN-only, is refused; with --force it goes through and cuts the
	// laptop off.
	mustOK(overVPN, "vpn", "remove", "phone", "-c", cfg)
	mustOK(overVPN, "vpn", "remove", "laptop", "-c", cfg)
	if o, code := x.run(overVPN, "apply", "-c", cfg, "--yes"); code != ExitUsage || !strings.Contains(o, "second working path") {
		t.Fatalf("removing the only working admin peer at stage vpn: exit %d\n%s", code, o)
	}
	// From the provider's console: the session over the tunnel ends with
	// the peer.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := x.vps.Run(ctx, x.bin, "apply", "-c", cfg, "--yes", "--force", "--root", x.root)
	if err != nil || !strings.Contains(string(out), "moat expose ssh public") {
		t.Fatalf("apply --force: %v\n%s", err, out)
	}
	if err := x.canLogInWithin(tunnel, 3*time.Second); err == nil {
		t.Fatal("the removed peer still logs in over the tunnel")
	}
}

func setExposure(t *testing.T, cfg, exp string) {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if i := strings.Index(s, "  exposure: "); i >= 0 {
		j := strings.IndexByte(s[i:], '\n')
		s = s[:i] + "  exposure: " + exp + s[i+j:]
	} else {
		s = strings.Replace(s, "ssh:\n", "ssh:\n  exposure: "+exp+"\n", 1)
	}
	if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// attackerLogin tries an SSH login from the attacker (with the operator's
// own key, the strongest attacker): a refused or dropped connection is
// an error without "unable to authenticate".
func attackerLogin(h *lab.Host, addr string, key ssh.Signer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return lab.SSHLogin(ctx, h, addr, "root", ssh.PublicKeys(key))
}

func peerOf(t *testing.T, iface, name, cfg string) vpn.PeerStatus {
	t.Helper()
	c, err := config.Load(cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := vpn.Show(iface)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.VPN.WireGuard.Status(dev) {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no peer %s", name)
	return vpn.PeerStatus{}
}

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("%s: not within %s", what, within)
}

// TestE2EWireGuardPeerChangeRollsBack: a peer change is part of the
// transaction like any other: unconfirmed, it is undone on the live
// interface, not only in the files.
func TestE2EWireGuardPeerChangeRollsBack(t *testing.T) {
	x := newWGLab(t)
	x.mustOK(x.op, "vpn", "add", "laptop", "-c", x.cfg, "--no-qr")
	done := make(chan struct{})
	var out string
	var code int
	go func() {
		defer close(done)
		// The window outlasts the look at the peers on a loaded machine.
		out, code = x.run(x.op, "apply", "-c", x.cfg, "--confirm", "10s")
	}()
	x.waiting(done, &out)
	if dev, err := vpn.Show(x.wgVPS); err != nil || len(dev.Peers) != 1 {
		t.Fatalf("during the window the peer should be on %s: %v %+v", x.wgVPS, err, dev)
	}
	<-done
	if code != ExitRollback {
		t.Fatalf("apply without confirm: exit %d\n%s", code, out)
	}
	if dev, err := vpn.Show(x.wgVPS); err != nil || len(dev.Peers) != 0 {
		t.Fatalf("after the rollback %s still has peers: %v %+v", x.wgVPS, err, dev)
	}
	// A reboot brings up what was confirmed, not what moat.yaml says now.
	x.restartVPN()
	if n := livePeers(t, x.wgVPS); n != 0 {
		t.Fatalf("after a reboot the rolled-back peer is on %s (%d peers)", x.wgVPS, n)
	}
	x.mustOK(x.op, "apply", "-c", x.cfg, "--yes")
	x.restartVPN()
	if n := livePeers(t, x.wgVPS); n != 1 {
		t.Fatalf("after a reboot the confirmed peer is not on %s (%d peers)", x.wgVPS, n)
	}
}

// TestE2EWireGuardSiteToSite: a network behind a peer (a home LAN behind
// the laptop) is routed into the tunnel when the peer's addresses gain it
// and moat apply runs, with no restart of the interface, and no longer
// once it is removed and applied. wireguard-go on both ends.
func TestE2EWireGuardSiteToSite(t *testing.T) {
	x := newWGLab(t)
	laptopConf := filepath.Join(filepath.Dir(x.root), "laptop.conf")
	x.mustOK(x.op, "vpn", "add", "laptop", "-c", x.cfg, "--no-qr", "--output", laptopConf)
	x.mustOK(x.op, "apply", "-c", x.cfg, "--yes")
	// The laptop routes a LAN (192.168.50.0/24, a host "home" on it).
	home := x.lab.Host("home")
	x.lab.Link(x.admin, "lan0", home, "eth0", []string{"192.168.50.1/24"}, []string{"192.168.50.2/24"})
	home.Route("default", "via", "192.168.50.1")
	x.admin.Sysctl("net.ipv4.ip_forward", "1")
	x.admin.Start(t, x.bin, "vpn", "up", "--client", laptopConf, "--interface", x.wgLaptop)
	tunnel := x.vpsVPNAddr + ":22"
	waitFor(t, 20*time.Second, "SSH over the tunnel", func() bool { return x.canLogInWithin(tunnel, 3*time.Second) == nil })
	if home.CanConnect("tcp", tunnel, time.Second) {
		t.Fatal("the LAN reaches the vps before it is the laptop's")
	}

	setLAN := func(with bool) {
		t.Helper()
		f, err := vpn.OpenConfigFile(x.cfg)
		if err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(x.cfg, true)
		if err != nil {
			t.Fatal(err)
		}
		w := *c.VPN.WireGuard
		w.Peers = slices.Clone(w.Peers)
		p := &w.Peers[0]
		p.Addresses = p.Addresses[:1]
		if with {
			p.Addresses = append(p.Addresses, schema.MustCIDR("192.168.50.0/24"))
		}
		if err := f.SetWireGuard(&w); err != nil {
			t.Fatal(err)
		}
		if err := f.Save(nil); err != nil {
			t.Fatal(err)
		}
	}
	before := peerOf(t, x.wgVPS, "laptop", x.cfg)
	setLAN(true)
	if plan := x.mustOK(x.op, "plan", "-c", x.cfg); !strings.Contains(plan, "~ peer laptop") {
		t.Fatalf("plan does not show the peer's new network:\n%s", plan)
	}
	x.mustOK(x.op, "apply", "-c", x.cfg, "--yes")
	if out := string(x.vps.MustRun(t, "ip", "route", "show", "192.168.50.0/24")); !strings.Contains(out, "dev "+x.wgVPS+" proto 92") {
		t.Errorf("no route into the tunnel for the peer's network: %q", out)
	}
	waitFor(t, 10*time.Second, "the LAN behind the laptop reaching the vps", func() bool { return home.CanConnect("tcp", tunnel, time.Second) })
	if after := peerOf(t, x.wgVPS, "laptop", x.cfg); after.RxBytes < before.RxBytes {
		t.Errorf("the laptop's counters went back (%d -> %d): its tunnel was restarted", before.RxBytes, after.RxBytes)
	}

	setLAN(false)
	x.mustOK(x.op, "apply", "-c", x.cfg, "--yes")
	if out := string(x.vps.MustRun(t, "ip", "route", "show", "192.168.50.0/24")); out != "" {
		t.Errorf("the removed network is still routed: %q", out)
	}
	if home.CanConnect("tcp", tunnel, time.Second) {
		t.Error("the removed network still reaches the vps")
	}
	if err := x.loginSoon(tunnel, 20*time.Second); err != nil {
		t.Errorf("the laptop itself lost the tunnel: %v", err)
	}
}
