package lab

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// GenerateKey returns a new ed25519 signer and its authorized_keys line.
func GenerateKey() (ssh.Signer, string) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		panic(err)
	}
	return s, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

// SSHLogin logs in to the sshd at addr as user, dialing from h, and runs
// `true` in a session, within ctx (30 seconds if ctx has no deadline).
// Any host key is accepted: the server is the test's
// own (compare SSHD.HostKey where that matters).
func SSHLogin(ctx context.Context, h *Host, addr, user string, auth ...ssh.AuthMethod) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	conn, err := h.Dial(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("ssh %s@%s: %w", user, addr, err)
	}
	defer conn.Close()
	// The ssh package takes no context: closing the connection is how ctx
	// interrupts it.
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	cfg := &ssh.ClientConfig{User: user, Auth: auth, HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		return fmt.Errorf("ssh %s@%s: %w", user, addr, errors.Join(err, ctx.Err()))
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("ssh %s@%s: session: %w", user, addr, errors.Join(err, ctx.Err()))
	}
	defer sess.Close()
	if out, err := sess.CombinedOutput("true"); err != nil {
		return fmt.Errorf("ssh %s@%s: run true: %w: %s", user, addr, errors.Join(err, ctx.Err()), strings.TrimSpace(string(out)))
	}
	return nil
}
