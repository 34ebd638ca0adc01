package change

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshServer serves SSH on loopback with x/crypto/ssh: publickey offered,
// nobody let in.
func sshServer(t *testing.T) string {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(nil)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		return nil, errors.New("no")
	}}
	cfg.AddHostKey(signer)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				ssh.NewServerConn(c, cfg)
				c.Close()
			}()
		}
	}()
	return l.Addr().String()
}

// blackhole accepts connections and never says a word: the target a
// self-probe waits on longest.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return l.Addr().String()
}

// TestSelfProbeBudgetPerTarget: a dead first target spends its own budget,
// not the later targets'; each is tried and reported for what it is.
func TestSelfProbeBudgetPerTarget(t *testing.T) {
	targets := []Target{{Name: "dead", Addr: blackhole(t)}, {Name: "live", Addr: sshServer(t)}}
	res, err := SelfProbe(context.Background(), nil, targets, "root", 3*time.Second)
	if err == nil || len(res) != 2 {
		t.Fatalf("results %+v, err %v", res, err)
	}
	if res[0].Err == nil {
		t.Errorf("the dead target passed")
	}
	if res[1].Err != nil {
		t.Errorf("the live target, probed after the dead one: %v", res[1].Err)
	}
}
