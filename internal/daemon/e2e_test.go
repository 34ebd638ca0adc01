package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moat-sh/moat/internal/lab"
)

// buildMoat builds the moat binary for tests that run it as a process in a
// lab namespace, as an operator would.
func buildMoat(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "moat")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/moat-sh/moat/cmd/moat")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build moat: %v\n%s", err, out)
	}
	return bin
}

// tryPasswords makes one SSH connection and tries each password; it
// reports whether the TCP connect itself succeeded.
func tryPasswords(h *lab.Host, addr, user string, passwords ...string) (connected bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := h.Dial(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	i := 0
	cfg := &ssh.ClientConfig{User: user, HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Auth: []ssh.AuthMethod{ssh.RetryableAuthMethod(ssh.PasswordCallback(func() (string, error) {
			p := passwords[i%len(passwords)]
			i++
			return p, nil
		}), len(passwords))}}
	if c, _, _, err := ssh.NewClientConn(conn, addr, cfg); err == nil {
		c.Close()
	}
	return true
}

func moatCLI(t *testing.T, bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// TestGuardEndToEnd: a real sshd in vps logging to a file; an attacker
// brute-forcing passwords; after maxretry failures the attacker's next
// connect times out while the admin still logs in with a key; the ban
// survives kill -9 of moat and a restart; moat unban restores access.
func TestGuardEndToEnd(t *testing.T) {
	lab.RequireTool(t, "sshd", "nft", "go")
	bin := buildMoat(t)
	l := lab.New(t)
	vps, attacker, admin := l.Host("vps"), l.Host("attacker"), l.Host("admin")
	l.Link(vps, "eth0", attacker, "eth0", []string{"198.51.100.1/24"}, []string{"198.51.100.2/24"})
	l.Link(vps, "wg0", admin, "eth0", []string{"10.8.0.1/24"}, []string{"10.8.0.2/24"})

	dir := t.TempDir()
	logPath := filepath.Join(dir, "auth.log")
	signer, pub := lab.GenerateKey()
	d := vps.StartSSHD(t, lab.SSHDOptions{
		ExtraConfig: "PasswordAuthentication yes\nMaxAuthTries 6\n",
		Users: []lab.SSHUser{
			{Name: "deploy", AuthorizedKeys: []string{pub}},
			{Name: "alice", Password: "the right one"},
		},
		LogFile: logPath, SyslogFormat: true,
	})
	cfg := filepath.Join(dir, "moat.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`host:
  admin:
    user: deploy
    sources: [10.8.0.2]
ssh:
  port: %d
  exposure: vpn+public
  rate_limit: 1000/minute
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
      maxretry: 3
      findtime: 10m
      bantime: 1h
`, d.Port, logPath)), 0o600)

	if out, err := vps.Run(context.Background(), bin, "apply", "firewall", "--yes", "-c", cfg, "--root", filepath.Join(dir, "root")); err != nil {
		t.Fatalf("apply firewall: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "moat.sock")
	state := filepath.Join(dir, "state")
	start := func() *lab.Proc {
		p := vps.Start(t, bin, "run", "-c", cfg, "--state", state, "--socket", sock)
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			// moat status exits 1 until the daemon answers (moat bans
			// reads the store without one).
			if _, err := moatCLI(t, bin, "status", "--socket", sock, "--state", state); err == nil {
				return p
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("moat run did not come up:\n%s", p.Output())
		return nil
	}
	moat := start()

	pub4 := d.Addr("198.51.100.1")
	if !attacker.CanConnect("tcp", pub4, time.Second) {
		t.Fatal("attacker cannot reach sshd before any ban")
	}
	// Three wrong passwords in one connection: maxretry is 3.
	tryPasswords(attacker, pub4, "alice", "wrong1", "wrong2", "wrong3")
	banned := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if !attacker.CanConnect("tcp", pub4, 300*time.Millisecond) {
			banned = true
			break
		}
	}
	if !banned {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("attacker not banned after 3 failures\nsshd log:\n%s\nmoat:\n%s", log, moat.Output())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := lab.SSHLogin(ctx, admin, d.Addr("10.8.0.1"), "deploy", ssh.PublicKeys(signer)); err != nil {
		t.Fatalf("admin locked out: %v", err)
	}

	// kill -9 and restart: the kernel keeps the element, the store the ban.
	moat.Signal(os.Kill)
	moat.Wait()
	if attacker.CanConnect("tcp", pub4, 300*time.Millisecond) {
		t.Fatal("ban lost when moat died")
	}
	start()
	out, err := moatCLI(t, bin, "bans", "--json", "--socket", sock)
	if err != nil {
		t.Fatalf("moat bans: %v\n%s", err, out)
	}
	var bans []struct {
		Prefix string `json:"prefix"`
		Jail   string `json:"jail"`
	}
	if err := json.Unmarshal([]byte(out), &bans); err != nil || len(bans) != 1 || bans[0].Prefix != "198.51.100.2/32" || bans[0].Jail != "sshd" {
		t.Fatalf("after restart, bans = %s (%v)", out, err)
	}
	if attacker.CanConnect("tcp", pub4, 300*time.Millisecond) {
		t.Fatal("ban lost after restart")
	}

	if out, err := moatCLI(t, bin, "unban", "198.51.100.2", "--socket", sock); err != nil || !strings.Contains(out, "unbanned 198.51.100.2/32") {
		t.Fatalf("moat unban: %v\n%s", err, out)
	}
	if !attacker.CanConnect("tcp", pub4, time.Second) {
		t.Fatal("moat unban did not restore access")
	}
	// A manual ban of a CIDR works through the same path.
	if out, err := moatCLI(t, bin, "ban", "198.51.100.0/24", "--for", "1m", "--reason", "test", "--socket", sock); err != nil {
		t.Fatalf("moat ban: %v\n%s", err, out)
	}
	if attacker.CanConnect("tcp", pub4, 300*time.Millisecond) {
		t.Fatal("manual CIDR ban not enforced")
	}
	if out, err := moatCLI(t, bin, "jail", "status", "--socket", sock); err != nil || !strings.Contains(out, "sshd") {
		t.Fatalf("moat jail status: %v\n%s", err, out)
	}
}
