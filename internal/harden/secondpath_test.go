package harden

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/schema"
)

// TestSecondPathGate: stage 3 needs, besides a login over the VPN, a
// second working path when a VPN offers a check for one. One passing
// check is enough; none passing refuses, naming every reason; --force
// goes ahead, marked Forced so apply prints the break-glass recipe; and
// the gate holds at every apply while SSH is VPN-only, not only at the
// move.
func TestSecondPathGate(t *testing.T) {
	lab.RequireTool(t, "sshd")
	root := fixtureRoot(t, "")
	in := input()
	in.SSH.Exposure = schema.ExposureVPN
	overVPN := "10.8.0.2 40000 10.8.0.1 22" // the VPN login is seen: this session
	fail := func(msg string) PathCheck {
		return func(context.Context) (string, error) { return "", errors.New(msg) }
	}
	pass := func(context.Context) (string, error) { return "admin peer laptop: handshake 1m ago", nil }

	p := plan(t, root, in, Options{Session: overVPN, SecondPaths: []PathCheck{fail("no admin handshake"), fail("tailscale key expires in 3 days")}})
	if len(p.Refusals) != 1 || !strings.Contains(p.Refusals[0], "second working path") ||
		!strings.Contains(p.Refusals[0], "no admin handshake") || !strings.Contains(p.Refusals[0], "expires in 3 days") {
		t.Fatalf("refusals: %q", p.Refusals)
	}
	p = plan(t, root, in, Options{Session: overVPN, SecondPaths: []PathCheck{fail("no admin handshake"), pass}})
	if len(p.Refusals) > 0 || !strings.Contains(p.SSH.SecondPath, "laptop") || p.SSH.Forced {
		t.Fatalf("one path works: %q %q forced=%v", p.Refusals, p.SSH.SecondPath, p.SSH.Forced)
	}
	p = plan(t, root, in, Options{Session: overVPN, Force: true, SecondPaths: []PathCheck{fail("no admin handshake")}})
	if len(p.Refusals) > 0 || !p.SSH.Forced {
		t.Fatalf("--force: %q forced=%v", p.Refusals, p.SSH.Forced)
	}
	// Not at stage vpn+public: the public path is the way back.
	in.SSH.Exposure = schema.ExposureVPNPublic
	if p := plan(t, root, in, Options{SecondPaths: []PathCheck{fail("no admin handshake")}}); len(p.Refusals) > 0 {
		t.Fatalf("vpn+public refused: %q", p.Refusals)
	}
}
