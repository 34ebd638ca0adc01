package sshd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// serveSSH runs a golang.org/x/crypto/ssh server on a loopback port until
// the test ends and returns its address.
func serveSSH(t *testing.T, cfg *ssh.ServerConfig) string {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if sc, _, _, err := ssh.NewServerConn(c, cfg); err == nil {
					sc.Close()
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// The probe learns the methods while the server's credential callbacks
// are never reached: nothing but "none" was sent.
func TestProbeSendsNoCredential(t *testing.T) {
	var calls atomic.Int32
	addr := serveSSH(t, &ssh.ServerConfig{
		PasswordCallback: func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
			calls.Add(1)
			return nil, errors.New("no")
		},
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
			calls.Add(1)
			return nil, errors.New("no")
		},
		KeyboardInteractiveCallback: func(ssh.ConnMetadata, ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			calls.Add(1)
			return nil, errors.New("no")
		},
	})
	res, err := Probe(context.Background(), addr, []string{"alice", "bob", "alice"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("server credential callbacks ran %d times", n)
	}
	want := []string{"password", "publickey", "keyboard-interactive"} // the server's order
	if !reflect.DeepEqual(res.AuthMethods, map[string][]string{"alice": want, "bob": want}) {
		t.Errorf("AuthMethods = %q", res.AuthMethods)
	}
	if !strings.HasPrefix(res.ServerVersion, "SSH-2.0-Go") {
		t.Errorf("ServerVersion = %q", res.ServerVersion)
	}
	if len(res.KexInit.Kex) == 0 || !slices.Contains(res.KexInit.HostKey, "ssh-ed25519") || res.HostKey.Type != "ssh-ed25519" {
		t.Errorf("KexInit = %+v, HostKey = %v", res.KexInit, res.HostKey)
	}
	if res.StrictKex != res.KexInit.StrictKex() {
		t.Error("StrictKex disagrees with KexInit")
	}
}

func TestProbeNoAuthServer(t *testing.T) {
	addr := serveSSH(t, &ssh.ServerConfig{NoClientAuth: true})
	res, err := Probe(context.Background(), addr, []string{"anyone"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.AuthMethods["anyone"]; !reflect.DeepEqual(got, []string{"none"}) {
		t.Errorf("methods = %q, want [none]", got)
	}
}

func TestProbeFailures(t *testing.T) {
	// Nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	res, err := Probe(context.Background(), closed, []string{"root"}, time.Second)
	if err == nil || len(res.AuthMethods) != 0 {
		t.Errorf("closed port: %+v, %v", res, err)
	}

	// A server that accepts and then says nothing: every step is bounded.
	// It stays silent until the test ends: a probe that returns at all
	// was ended by its own bound. The 30 s checks are 100 times the
	// bounds, so a loaded machine cannot trip them.
	hush := make(chan struct{})
	t.Cleanup(func() { close(hush) })
	silent := listenWith(t, func(c net.Conn) { <-hush })
	start := time.Now()
	_, err = Probe(context.Background(), silent, []string{"root"}, 300*time.Millisecond)
	if err == nil || time.Since(start) > 30*time.Second {
		t.Errorf("silent server: %v after %v", err, time.Since(start))
	}

	// ctx cancellation ends the probe too.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := Probe(ctx, silent, []string{"root"}, time.Minute); err == nil || time.Since(start) > 30*time.Second {
		t.Errorf("canceled: %v after %v", err, time.Since(start))
	}

	// Not SSH at all.
	web := listenWith(t, func(c net.Conn) { c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) })
	if _, err := Probe(context.Background(), web, nil, time.Second); err == nil {
		t.Error("http server: no error")
	}
}

func listenWith(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return ln.Addr().String()
}

// startSSHD runs the system's sshd in the foreground on a loopback port
// with the given config body (ListenAddress, HostKey and PidFile are
// added) and returns its address.
func startSSHD(t *testing.T, body string) string {
	t.Helper()
	requireRoot(t)
	bin := requireSSHD(t)
	if !createRuntimeDir("/run/sshd") {
		t.Fatal("cannot create /run/sshd")
	}
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "hostkey")
	if err := os.WriteFile(key, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "sshd_config")
	full := fmt.Sprintf("ListenAddress %s\nHostKey %s\nPidFile none\n%s", addr, key, body)
	if err := os.WriteFile(cfg, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	cmd := exec.Command(bin, "-D", "-e", "-f", cfg)
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sshd log:\n%s", log.String())
		}
	})
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("sshd exited: %v\n%s", err, log.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr
		}
	}
	t.Fatalf("sshd did not listen on %s", addr)
	return ""
}

func TestProbeRealSSHD(t *testing.T) {
	addr := startSSHD(t, `UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
Match User nobody
	PasswordAuthentication yes
`)
	const ghost = "moat-no-such-user"
	res, err := Probe(context.Background(), addr, []string{"root", "nobody", ghost}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"root":   {"publickey"},
		"nobody": {"publickey", "password"},
		// sshd answers for unknown users as for real ones (so as not to
		// reveal which exist): the probe cannot tell them apart.
		ghost: {"publickey"},
	}
	if !reflect.DeepEqual(res.AuthMethods, want) {
		t.Errorf("AuthMethods = %q, want %q", res.AuthMethods, want)
	}
	v, err := ParseVersion(res.ServerVersion)
	if err != nil || !v.AtLeast(7, 0) {
		t.Errorf("ServerVersion %q: %+v, %v", res.ServerVersion, v, err)
	}
	k := res.KexInit
	for _, want := range []string{"curve25519-sha256", StrictKexServer} {
		if !slices.Contains(k.Kex, want) {
			t.Errorf("kex lacks %s: %q", want, k.Kex)
		}
	}
	if !res.StrictKex || TerrapinExposed(k) {
		t.Errorf("StrictKex = %v, Terrapin exposed = %v", res.StrictKex, TerrapinExposed(k))
	}
	if !reflect.DeepEqual(k.HostKey, []string{"ssh-ed25519"}) || res.HostKey != (HostKey{"ssh-ed25519", 256}) {
		t.Errorf("host key %q / %v", k.HostKey, res.HostKey)
	}
	for _, c := range []string{"chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"} {
		if !slices.Contains(k.CiphersCS, c) || !slices.Contains(k.CiphersSC, c) {
			t.Errorf("ciphers lack %s: %q", c, k.CiphersCS)
		}
	}
	if !slices.Contains(k.MACsCS, "hmac-sha2-256-etm@openssh.com") || !slices.Contains(k.CompressionSC, "none") {
		t.Errorf("macs %q compression %q", k.MACsCS, k.CompressionSC)
	}
	// What the server offers equals what sshd -T says it is configured for.
	if v.AtLeast(9, 0) && !slices.Contains(k.Kex, "sntrup761x25519-sha512@openssh.com") {
		t.Errorf("OpenSSH %s without sntrup761: %q", v, k.Kex)
	}
}
