package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/harden"
	"github.com/moat-sh/moat/internal/tailscale"
)

// The Tailscale second path: before SSH moves behind the VPN, tailscaled
// must be running with this node's key expiry disabled or more than 30
// days away — the classic lockout is a headless node whose key expires.
func init() {
	vpnSecondPaths = append(vpnSecondPaths, tailscaleSecondPath)
}

// tailscaleSecondPath applies when the config names a Tailscale interface
// or tailscaled's socket is on the host.
func tailscaleSecondPath(c *config.Config, root string) harden.PathCheck {
	named := slices.ContainsFunc(c.VPN.Interfaces, func(n string) bool { return strings.HasPrefix(n, "tailscale") })
	sock := tailscale.DefaultSocket
	if root != "" && root != "/" {
		sock = filepath.Join(root, sock)
	}
	if _, err := os.Stat(sock); err != nil && !named {
		return nil
	}
	return func(ctx context.Context) (string, error) {
		cl := &tailscale.Client{Socket: sock}
		if root != "" && root != "/" {
			cl.CLI = "-" // a fixture tree: never ask the live host's tailscale
		}
		st, err := cl.Read(ctx)
		if err != nil {
			st = nil
		}
		if err := tailscale.SecondPath(st, time.Now()); err != nil {
			return "", err
		}
		ev := "tailscale: node " + st.DNSName()
		if t, disabled, ok := st.KeyExpiry(); disabled {
			ev += ", key expiry disabled"
		} else if ok {
			ev += ", key expires " + t.UTC().Format(time.DateOnly)
		}
		return ev, nil
	}
}
