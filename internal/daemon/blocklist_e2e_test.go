package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/lab"
)

// TestBlocklistEndToEnd: moat apply firewall and moat run in a lab
// namespace with a blocklist naming the attacker's network and the
// admin's address: the attacker's connections are dropped, an unlisted
// host and the admin (over the VPN) still connect, moat status shows the
// list; after kill -9, the sets emptied by hand and the list's file gone
// (the network down), a restart enforces the cached copy.
func TestBlocklistEndToEnd(t *testing.T) {
	lab.RequireTool(t, "sshd", "nft", "go")
	bin := buildMoat(t)
	l := lab.New(t)
	vps, attacker, other, admin := l.Host("vps"), l.Host("attacker"), l.Host("other"), l.Host("admin")
	l.Link(vps, "eth0", attacker, "eth0", []string{"198.51.100.1/24"}, []string{"198.51.100.2/24"})
	l.Link(vps, "eth1", other, "eth0", []string{"203.0.113.1/24"}, []string{"203.0.113.2/24"})
	l.Link(vps, "wg0", admin, "eth0", []string{"10.8.0.1/24"}, []string{"10.8.0.2/24"})
	_, pub := lab.GenerateKey()
	d := vps.StartSSHD(t, lab.SSHDOptions{Users: []lab.SSHUser{{Name: "deploy", AuthorizedKeys: []string{pub}}}})
	ln, err := vps.Listen("tcp", "[::]:80")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	dir := t.TempDir()
	list := filepath.Join(dir, "drop.txt")
	os.WriteFile(list, []byte("; test DROP list\n198.51.100.0/24 ; SBL1\n10.8.0.0/24 ; the VPN: carved out\n"), 0o644)
	authLog := filepath.Join(dir, "auth.log")
	os.WriteFile(authLog, nil, 0o600)
	cfg := filepath.Join(dir, "moat.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`host:
  admin:
    user: deploy
    sources: [10.8.0.2]
ssh:
  port: %d
  exposure: vpn+public
vpn:
  interfaces: [wg0]
  ranges: [10.8.0.0/24]
firewall:
  public_interface: eth0
  public: [80/tcp]
guard:
  jails:
    sshd:
      source: file
      paths: [%s]
  blocklists:
    - name: drop
      file: %s
`, d.Port, authLog, list)), 0o600)
	if out, err := vps.Run(context.Background(), bin, "apply", "firewall", "--yes", "-c", cfg, "--root", filepath.Join(dir, "root")); err != nil {
		t.Fatalf("apply firewall: %v\n%s", err, out)
	}
	sock, state := filepath.Join(dir, "moat.sock"), filepath.Join(dir, "state")
	reach := func(h *lab.Host, addr string) bool { return h.CanConnect("tcp", addr, 500*time.Millisecond) }
	start := func() *lab.Proc {
		p := vps.Start(t, bin, "run", "-c", cfg, "--state", state, "--socket", sock)
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			if !reach(attacker, "198.51.100.1:80") {
				return p
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("the listed attacker still connects:\n%s", p.Output())
		return nil
	}
	moat := start()
	if !reach(other, "203.0.113.1:80") || !reach(admin, "10.8.0.1:80") {
		t.Fatal("an unlisted host or the admin over the VPN was dropped")
	}
	out, err := moatCLI(t, bin, "status", "--socket", sock, "--state", state)
	if err != nil || !strings.Contains(out, "BLOCKLISTS") || !strings.Contains(out, "drop ") || !strings.Contains(out, "carved out") {
		t.Errorf("moat status: %v\n%s", err, out)
	}

	// kill -9; the sets emptied; the list's origin gone.
	moat.Signal(os.Kill)
	moat.Wait()
	vps.MustRun(t, "nft", "flush", "set", "inet", "moat", "block4")
	os.Remove(list)
	if !reach(attacker, "198.51.100.1:80") {
		t.Fatal("the set was not emptied")
	}
	start() // fails the test unless the cached copy drops the attacker again
	if !reach(other, "203.0.113.1:80") {
		t.Error("an unlisted host was dropped after the restart")
	}
}
