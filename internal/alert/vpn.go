package alert

import "time"

// KindVPN is the event kind of the VPN layer: the WireGuard interface
// down or up again, a peer from a new endpoint, admin peers silent.
const KindVPN = "vpn"

// VPN is one VPN event.
type VPN struct {
	// What is the watcher's notice kind: down, up, new-endpoint,
	// admin-silence.
	What      string
	Interface string
	Peer      string
	Endpoint  string
	Text      string
	Critical  bool
	Time      time.Time
}

// Event implements the vpn event: critical when the interface is down
// (SSH may depend on it), warning for a new endpoint or a long silence,
// info when it is back up.
func (v VPN) Event() Event {
	sev := Warning
	switch {
	case v.Critical:
		sev = Critical
	case v.What == "up":
		sev = Info
	}
	title := "VPN " + v.Interface + ": " + v.What
	if v.Peer != "" {
		title += " (peer " + v.Peer + ")"
	}
	return Event{Kind: KindVPN, Severity: sev, Time: v.Time, Title: title, Text: v.Text,
		Fields: fields("what", v.What, "interface", v.Interface, "peer", v.Peer, "endpoint", v.Endpoint)}
}
