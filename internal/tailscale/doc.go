// Package tailscale reads tailscaled's state, read-only, from its local
// API (HTTP over the Unix socket /var/run/tailscale/tailscaled.sock), or
// from `tailscale status --json` and `tailscale serve status --json` when
// the socket cannot be used: the node's addresses and MagicDNS name, its
// node key's expiry (or that expiry is disabled), the subnet and exit
// routes it advertises, and what Serve and Funnel publish. moat
// understands Tailscale; it does not reimplement or configure it.
//
// The JSON shapes are those of tailscale.com's ipnstate.Status,
// ipn.ServeConfig and ipn.Prefs, decoded into moat's own subset of their
// fields so moat does not depend on tailscale.com.
package tailscale
