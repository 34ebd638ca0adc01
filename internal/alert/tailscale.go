package alert

import (
	"fmt"
	"strconv"
	"time"
)

// KindTailscale is an event about tailscaled's state: the node key near
// its expiry, a Funnel on.
const KindTailscale = "tailscale"

func init() { Events = append(Events, KindTailscale) }

// TailscaleExpiry is the node key of this host nearing its expiry.
type TailscaleExpiry struct {
	Node   string // the MagicDNS name
	Expiry time.Time
	// VPNOnlySSH: ssh.exposure is vpn, so the tailnet is the way in.
	VPNOnlySSH bool
	Time       time.Time
}

// Event is the alert: critical when SSH is VPN-only or under 3 days are
// left, a warning otherwise.
func (e TailscaleExpiry) Event() Event {
	now := e.Time
	if now.IsZero() {
		now = time.Now()
	}
	left := e.Expiry.Sub(now)
	days := int(left.Hours() / 24)
	sev := Warning
	if e.VPNOnlySSH || left < 3*24*time.Hour {
		sev = Critical
	}
	title := fmt.Sprintf("Tailscale node key of %s expires in %d days", e.Node, days)
	if left <= 0 {
		title = fmt.Sprintf("Tailscale node key of %s has expired", e.Node)
	}
	text := fmt.Sprintf("The node key of %s expires on %s. When it does, the tailnet drops the node", e.Node, e.Expiry.UTC().Format(time.RFC3339))
	if e.VPNOnlySSH {
		text += ", and with it SSH: ssh.exposure is vpn."
	} else {
		text += "."
	}
	text += "\nDisable key expiry for this machine in the Tailscale admin console, or run tailscale up --force-reauth while you still have a way in."
	return Event{Kind: KindTailscale, Severity: sev, Time: e.Time, Title: title, Text: text,
		Fields: fields("node", e.Node, "key_expiry", e.Expiry.UTC().Format(time.RFC3339), "days_left", strconv.Itoa(days),
			"ssh_vpn_only", strconv.FormatBool(e.VPNOnlySSH))}
}

// TailscaleFunnel is a Funnel publishing something of this host to the
// internet.
type TailscaleFunnel struct {
	URL    string // https://node.tailnet.ts.net:443/
	Target string // what answers: a proxied URL, a forwarded address, a path
	// Declared: the local port is under firewall.public.
	Declared bool
	Time     time.Time
}

// Event is the alert: critical when the port is not declared public.
func (e TailscaleFunnel) Event() Event {
	sev := Warning
	title := "Tailscale Funnel publishes " + e.Target + " at " + e.URL
	text := "Tailscale Funnel makes " + e.Target + " reachable from the whole internet at " + e.URL + ", through Tailscale's relays: moat's firewall does not see this path."
	if !e.Declared {
		sev = Critical
		text += "\nIts port is not declared in firewall.public. Turn it off with tailscale funnel reset (or tailscale funnel --https=PORT off) unless it is meant to be public."
	}
	return Event{Kind: KindTailscale, Severity: sev, Time: e.Time, Title: title, Text: text,
		Fields: fields("url", e.URL, "target", e.Target, "declared", strconv.FormatBool(e.Declared))}
}
