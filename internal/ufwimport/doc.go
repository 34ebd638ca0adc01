// Package ufwimport reads ufw's rules — the "### tuple ###" lines ufw
// writes to user.rules and user6.rules, or the output of `ufw status
// verbose` — and writes the equivalent moat.yaml firewall section:
// public ports, ports open to listed sources (allow) and ports open on
// the VPN interfaces (vpn). What moat does otherwise (limit, deny,
// outbound and routed rules, default policies) is said in comments.
package ufwimport
