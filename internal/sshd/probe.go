package sshd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// ProbeIdent is the identification string the probe sends; it shows in
// the server's logs.
const ProbeIdent = "SSH-2.0-moat_probe"

const (
	defaultProbeTimeout = 5 * time.Second
	// probeParallel bounds concurrent connections to one server, well under
	// OpenSSH's MaxStartups default (10 unauthenticated connections).
	probeParallel = 4
)

// ProbeResult is what a server offers a client that has not authenticated.
type ProbeResult struct {
	// ServerVersion is the server's identification line, without CRLF
	// ("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"); ParseVersion reads it.
	ServerVersion string
	// KexInit is the server's first KEXINIT, as sent on the wire.
	KexInit KexInit
	// StrictKex is whether KexInit announces strict key exchange.
	StrictKex bool
	// HostKey is the host key negotiated by the per-user connections (the
	// type golang.org/x/crypto/ssh prefers among those offered); zero when
	// no user was probed or none got that far.
	HostKey HostKey
	// AuthMethods maps each probed user to the methods the server lists
	// after the "none" request ("publickey", "password",
	// "keyboard-interactive", ...), in the server's order. ["none"] means
	// the server let the user in without any authentication. Users whose
	// probe failed are absent (the error says why).
	AuthMethods map[string][]string
}

// errProbed stops authentication once the server's method list is known.
var errProbed = errors.New("auth methods recorded")

// Probe connects to addr ("host:port") and learns, without sending any
// credential, what the server offers: its version line and KEXINIT (read
// and parsed from the wire here, so algorithms golang.org/x/crypto/ssh does
// not implement are seen too), and per user the authentication methods it
// lists in reply to an RFC 4252 "none" request. Each user costs one
// connection; the server logs each as a connection closed during
// authentication. timeout bounds every connection (default 5s), ctx the
// whole probe.
//
// On error the result holds what was learned; the error joins every
// failure.
func Probe(ctx context.Context, addr string, users []string, timeout time.Duration) (ProbeResult, error) {
	return ProbeVia(ctx, (&net.Dialer{}).DialContext, addr, users, timeout)
}

// DialFunc opens a connection, like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// ProbeVia is Probe over connections that dial opens, e.g. from inside a
// network namespace.
func ProbeVia(ctx context.Context, dial DialFunc, addr string, users []string, timeout time.Duration) (ProbeResult, error) {
	if timeout <= 0 {
		timeout = defaultProbeTimeout
	}
	res := ProbeResult{AuthMethods: make(map[string][]string)}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, probeParallel)
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	wg.Go(func() {
		sem <- struct{}{}
		defer func() { <-sem }()
		version, kex, err := probeKexInit(ctx, dial, addr, timeout)
		mu.Lock()
		res.ServerVersion, res.KexInit, res.StrictKex = version, kex, kex.StrictKex()
		mu.Unlock()
		if err != nil {
			fail(fmt.Errorf("probe %s kexinit: %w", addr, err))
		}
	})
	for _, u := range slices.Compact(slices.Sorted(slices.Values(users))) {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			methods, hk, err := probeAuth(ctx, dial, addr, u, timeout)
			if err != nil {
				fail(fmt.Errorf("probe %s auth methods for %q: %w", addr, u, err))
				return
			}
			mu.Lock()
			res.AuthMethods[u] = methods
			if res.HostKey.Type == "" {
				res.HostKey = hk
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return res, errors.Join(errs...)
}

// dial opens a TCP connection whose every read and write ends by the
// deadline, or as soon as ctx is done.
func dialTimeout(ctx context.Context, dial DialFunc, addr string, timeout time.Duration) (net.Conn, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return conn, func() { stop(); cancel(); conn.Close() }, nil
}

// probeKexInit sends our identification, reads the server's and its
// KEXINIT, and hangs up; no key exchange happens.
func probeKexInit(ctx context.Context, dial DialFunc, addr string, timeout time.Duration) (string, KexInit, error) {
	conn, done, err := dialTimeout(ctx, dial, addr, timeout)
	if err != nil {
		return "", KexInit{}, err
	}
	defer done()
	if _, err := conn.Write([]byte(ProbeIdent + "\r\n")); err != nil {
		return "", KexInit{}, fmt.Errorf("send version: %w", err)
	}
	br := bufio.NewReader(conn)
	version, err := readVersion(br)
	if err != nil {
		return version, KexInit{}, err
	}
	payload, err := readKexInitPacket(br)
	if err != nil {
		return version, KexInit{}, err
	}
	k, err := ParseKexInit(payload)
	return version, k, err
}

// probeAuth runs the SSH handshake as user up to the first authentication
// reply. golang.org/x/crypto/ssh always sends "none" first (RFC 4252
// section 5.2) and then calls AuthCallback with the methods the server
// listed; the callback records them and aborts, so no other
// authentication request — and no secret — is ever sent.
func probeAuth(ctx context.Context, dial DialFunc, addr, user string, timeout time.Duration) ([]string, HostKey, error) {
	conn, done, err := dialTimeout(ctx, dial, addr, timeout)
	if err != nil {
		return nil, HostKey{}, err
	}
	defer done()
	var (
		methods []string
		hk      HostKey
	)
	supported, insecure := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
	cfg := &ssh.ClientConfig{
		Config: ssh.Config{
			// Offer everything the library implements: the aim is to
			// reach authentication on weak servers too.
			KeyExchanges: append(supported.KeyExchanges, insecure.KeyExchanges...),
			Ciphers:      append(supported.Ciphers, insecure.Ciphers...),
			MACs:         append(supported.MACs, insecure.MACs...),
		},
		User:              user,
		ClientVersion:     ProbeIdent,
		HostKeyAlgorithms: append(supported.HostKeys, insecure.HostKeys...),
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			// Nothing secret follows, so the key need not be trusted.
			hk = HostKeyOf(key)
			return nil
		},
		AuthCallback: func(ac *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
			methods = append([]string{}, ac.AllowedMethods...)
			return nil, errProbed
		},
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err == nil {
		// "none" succeeded: the server needs no authentication at all.
		ssh.NewClient(c, chans, reqs).Close()
		return []string{"none"}, hk, nil
	}
	if errors.Is(err, errProbed) {
		return methods, hk, nil
	}
	return nil, hk, err
}
