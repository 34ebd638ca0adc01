// Package examples holds the files moat ships as they are: the annotated
// moat.yaml and the systemd units. The binary embeds them, so `moat
// install` writes the same units the .deb carries and `moat man` quotes
// the same example config.
package examples

import _ "embed"

// Config is examples/moat.yaml: every key with a comment.
//
//go:embed moat.yaml
var Config string

// Service is examples/moat.service, for a binary at /usr/bin/moat.
//
//go:embed moat.service
var Service string

// FirewallService is examples/moat-firewall.service, for a binary at
// /usr/bin/moat.
//
//go:embed moat-firewall.service
var FirewallService string

// VPNService is examples/moat-vpn.service, for a binary at /usr/bin/moat:
// the WireGuard interface of vpn.wireguard, up at boot.
//
//go:embed moat-vpn.service
var VPNService string

// Binary is the path the units name; an install elsewhere rewrites it.
const Binary = "/usr/bin/moat"
