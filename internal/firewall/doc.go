// Package firewall renders moat's one nftables table, table inet moat, from
// a Spec, applies it atomically without touching any other table, checks
// before every apply that the operator keeps a way into sshd, and edits its
// ban and geo sets over netlink.
//
// # The table
//
// The input chain (hook input, policy drop) accepts loopback and
// established and related traffic, drops invalid packets, then checks new
// connections against the bans first (sets ban4 and ban6, flags interval
// and timeout, so single addresses and CIDRs expire in the kernel), lets
// essential ICMP and ICMPv6 through, applies geo rules, and opens: sshd's
// port according to ssh.exposure (public, vpn+public, vpn; the admin's own
// sources always, without the per-source rate limit), public ports, VPN-only
// ports (from the VPN interfaces, and each VPN range only on the
// interfaces it is pinned to: vpn.wireguard's ranges on its interface,
// Tailscale's on tailscale0, other vpn.ranges on the interface that carries
// them, see vpn.Config.Pins) and allowlisted ports. Everything else is
// counted and dropped: a VPN source arriving on another interface (the
// public one, a container bridge, a second NIC) is a forgery, not the VPN.
// VPN interfaces, pinned VPN ranges and admin sources are exempt from bans
// and geo rules.
//
// The forward chain (hook forward, policy accept) leaves routed traffic
// alone except for connections whose destination was rewritten by DNAT (ct
// status dnat): Docker's published ports and the like. Those pass only to
// ports declared public, VPN-only (from the VPN) or allowlisted, matched on
// the port the client asked for (ct original proto-dst), not the one the
// container listens on. netfilter runs every table's base chains and a drop
// in any of them is final, so moat's drop holds whatever Docker's own
// chains accept; moat's chains run at priority filter - 10, before them.
// Containers are sources like any other: one reaching a published port
// through the host's address, or a service of the host itself, needs an
// allow rule for its bridge range (172.16.0.0/12 for Docker's defaults).
//
// Each drop reason has a named counter (ban, geo, invalid, ssh_rate,
// closed, dnat); with log_drops the final drops and geo drops are logged,
// rate-limited, with the prefix "moat drop REASON: ".
//
// The ban sets are `type ipv4_addr; flags interval,timeout` (ipv6_addr for
// ban6): nft 1.0.6 and Linux 6.x accept per-element timeouts on interval
// sets, with or without auto-merge, and expire single addresses and CIDRs
// alike. moat declares no set with auto-merge: with it, nft 1.0.6 reads
// every element of every set before running any script that declares a
// set, which with 100,000 bans turns a 20 ms apply into seconds. moat's
// own writes never overlap and the geo ranges arrive merged, so nothing is
// lost. For the same reason moat lists the live table with `nft -t list
// ruleset`: nft 1.0.6 reads all elements even for `list table -t`.
//
// # Applying
//
// Apply checks the candidate with `nft -c`, runs the lockout check (see
// CheckLockout), then replaces table inet moat in one nft transaction. The
// ban sets are kept across the replacement, elements and timeouts
// included: the transaction flushes and deletes every chain and every
// other set, deletes counters the new table no longer has, and then
// declares the table, where ban4, ban6 and the kept counters are
// re-declared unchanged, a no-op for the kernel. A config reload never
// empties the ban sets. Only when the live ban sets differ in definition
// (or the table holds objects moat does not render) does moat replace the
// whole table, re-adding the bans it held with the time each had left.
//
// The rendered table is persisted to /etc/moat/moat.nft and loaded at boot
// by moat-firewall.service, ordered after nftables.service (whose
// /etc/nftables.conf usually starts with `flush ruleset`); moat does not
// edit /etc/nftables.conf. Restarting nftables.service by hand flushes
// moat's table until moat-firewall.service is restarted; the audit's
// FW-005 notices. Bans are not in the boot file: the ban engine restores
// them from its store when it starts.
//
// # Sets
//
// Sets adds, deletes and lists elements of the ban and geo sets over
// netlink in batches, without running a process per ban: 100,000 bans in
// about 0.3 s. Bans are looked up for new connections only (one lookup
// per connection rather than per packet); Sets.Cut deletes the conntrack
// entries of banned sources so their established connections end too.
package firewall
