package change

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/probe"
	"github.com/moat-sh/moat/internal/sshd"
)

// Target is an address sshd must answer on after a change.
type Target struct {
	Name string // "public", "vpn", …
	Addr string // host:port
}

func (t Target) String() string { return t.Name + " " + t.Addr }

// ProbeResult is what the self-probe found on one target.
type ProbeResult struct {
	Target  Target
	Methods []string // authentication methods offered to the user
	Took    time.Duration
	Err     error
}

// SelfProbe checks each target with fresh connections, the way a new
// login would find sshd: a TCP connect, the server's KEXINIT, and the
// authentication methods it offers user, which must include publickey.
// No credential is sent. Each target is retried until its own budget
// (perTarget) runs out: sshd re-executes itself on reload, and is not
// listening for a moment; a dead target does not eat the others' time.
func SelfProbe(ctx context.Context, dial sshd.DialFunc, targets []Target, user string, perTarget time.Duration) ([]ProbeResult, error) {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	if perTarget <= 0 {
		perTarget = 5 * time.Second
	}
	out := make([]ProbeResult, len(targets))
	var errs []error
	for i, t := range targets {
		start := time.Now()
		r := ProbeResult{Target: t}
		tctx, cancel := context.WithTimeout(ctx, perTarget)
		for attempt := 0; ; attempt++ {
			r.Methods, r.Err = probeOnce(tctx, dial, t.Addr, user)
			if r.Err == nil || tctx.Err() != nil {
				break
			}
			select {
			case <-tctx.Done():
			case <-time.After(time.Duration(min(attempt+1, 10)) * 20 * time.Millisecond):
			}
		}
		cancel()
		r.Took = time.Since(start)
		out[i] = r
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t, r.Err))
		}
	}
	return out, errors.Join(errs...)
}

// probeOnce asks what moat probe asks from outside (internal/probe), of an
// address the host can reach: the port's state, then what sshd offers.
func probeOnce(ctx context.Context, dial sshd.DialFunc, addr, user string) ([]string, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		if st := probe.Connect(ctx, probe.DialFunc(dial), ap, 2*time.Second); st != probe.Open {
			return nil, fmt.Errorf("connect: port %d is %s from here", ap.Port(), st)
		}
	} else {
		c, err := dial(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		c.Close()
	}
	var users []string
	if user != "" {
		users = []string{user}
	}
	res, err := sshd.ProbeVia(ctx, dial, addr, users, 2*time.Second)
	if err != nil {
		return nil, err
	}
	if len(res.KexInit.Kex) == 0 {
		return nil, errors.New("no key exchange offered")
	}
	if user == "" {
		return nil, nil
	}
	m := res.AuthMethods[user]
	if !slices.Contains(m, "publickey") {
		return m, fmt.Errorf("sshd offers %s no publickey authentication (offers: %s)", user, strings.Join(m, ", "))
	}
	return m, nil
}
