package probe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"slices"
	"time"

	"github.com/moat-sh/moat/internal/sshd"
)

// SSHInfo is what an SSH server offers a client that sends no credential.
type SSHInfo struct {
	Version      string              `json:"version"`
	Kex          []string            `json:"kex"`
	HostKeyTypes []string            `json:"host_key_types"`
	HostKey      string              `json:"host_key,omitempty"`
	StrictKex    bool                `json:"strict_kex"`
	Terrapin     bool                `json:"terrapin"`
	WeakKex      []string            `json:"weak_kex,omitempty"`
	PQKex        []string            `json:"post_quantum_kex,omitempty"`
	AuthMethods  map[string][]string `json:"auth_methods"`
	// RandomUser is the made-up name probed beside root and the admin: a
	// server that answers it as it answers real users tells nothing about
	// which accounts exist.
	RandomUser string `json:"random_user"`
	Error      string `json:"error,omitempty"`
}

// SSHUsers are the accounts probed: root, the admin when known, and a
// random name.
func SSHUsers(admin string) (users []string, random string) {
	var b [4]byte
	rand.Read(b[:])
	random = "moat-" + hex.EncodeToString(b[:])
	users = []string{"root", random}
	if admin != "" && admin != "root" {
		users = append(users, admin)
	}
	return users, random
}

// ProbeSSH learns what an SSH server offers without a credential: its
// version, KEXINIT and, per user, the authentication methods listed after
// a "none" request (internal/sshd's live probe, shared with moat audit and
// moat apply's self-probe).
func ProbeSSH(ctx context.Context, dial DialFunc, ap netip.AddrPort, users []string, random string, timeout time.Duration) *SSHInfo {
	res, err := sshd.ProbeVia(ctx, sshd.DialFunc(dial), ap.String(), users, timeout)
	info := &SSHInfo{
		Version:      Clean([]byte(res.ServerVersion), 200),
		Kex:          res.KexInit.Kex,
		HostKeyTypes: res.KexInit.HostKey,
		StrictKex:    res.StrictKex,
		AuthMethods:  res.AuthMethods,
		RandomUser:   random,
	}
	if res.HostKey.Type != "" {
		info.HostKey = res.HostKey.String()
	}
	if len(res.KexInit.Kex) > 0 {
		info.Terrapin = sshd.TerrapinExposed(res.KexInit)
	}
	for _, k := range res.KexInit.Kex {
		if sshd.PseudoKex(k) {
			continue
		}
		if sshd.WeakKex(k) {
			info.WeakKex = append(info.WeakKex, k)
		}
		if sshd.PostQuantumKex(k) {
			info.PQKex = append(info.PQKex, k)
		}
	}
	if err != nil {
		info.Error = err.Error()
	}
	return info
}

func (p *Prober) probeSSH(ctx context.Context, ap netip.AddrPort) *SSHInfo {
	users, random := SSHUsers(p.Admin)
	return ProbeSSH(ctx, p.dial(), ap, users, random, 2*p.ioTimeout())
}

// PasswordOffered reports whether any probed user is offered a password
// (or keyboard-interactive, which PAM turns into one), or no
// authentication at all.
func (s *SSHInfo) PasswordOffered() (users []string) {
	for u, ms := range s.AuthMethods {
		if slices.Contains(ms, "password") || slices.Contains(ms, "keyboard-interactive") || slices.Contains(ms, "none") {
			users = append(users, u)
		}
	}
	slices.Sort(users)
	return users
}
