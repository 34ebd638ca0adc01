// Package firewall renders moat's one nftables table, table inet moat, from
// a Spec, applies it atomically without touching any other table, checks
// before every apply that the operator keeps a way into sshd, and edits its
// ban and geo sets over netlink.
//
// # The table
//
// The input chain (hook input, policy drop) accepts loopback, drops banned
// sources first (sets ban4 and ban6, flags interval and timeout, so single
// addresses and CIDRs expire in the kernel), then accepts established and
// related traffic, drops invalid packets, lets essential ICMP and ICMPv6
// through, applies geo rules to new connections, and opens: sshd's port
// according to ssh.exposure (public, vpn+public, vpn; the admin's own
// sources always, without the per-source rate limit), public ports, VPN-only
// ports (from the VPN interfaces and, when not arriving on the public
// interface, the VPN ranges) and allowlisted ports. Everything else is
// counted and dropped. VPN interfaces, VPN ranges and admin sources are
// exempt from bans and geo rules.
//
// The forward chain (hook forward, policy accept) leaves routed traffic
// alone except for connections whose destination was rewritten by DNAT (ct
// status dnat): Docker's published ports and the like. Those pass only to
// ports declared public, VPN-only (from the VPN) or allowlisted, matched on
// the port the client asked for (ct original proto-dst), not the one the
// container listens on. netfilter runs every table's base chains and a drop
// in any of them is final, so moat's drop holds whatever Docker's own
// chains accept; moat's chains run at priority filter - 10, before them.
//
// Each drop reason has a named counter (ban, geo, invalid, ssh_rate,
// closed, dnat); with log_drops the final drops and geo drops are logged,
// rate-limited, with the prefix "moat drop REASON: ".
//
// # Applying
//
// Apply checks the candidate with `nft -c`, runs the lockout check (see
// CheckLockout), then replaces table inet moat in one nft transaction. The
// ban sets are kept across the replacement, elements and timeouts
// included: the transaction deletes and recreates every other object of
// the table but re-declares ban4 and ban6 unchanged, which the kernel
// treats as a no-op. Only when the live ban sets differ in definition does
// moat replace the whole table, re-adding the elements it held. The
// rendered table is persisted to /etc/moat/moat.nft and loaded at boot by
// moat-firewall.service (see Persist).
//
// # Sets
//
// Sets adds, deletes and lists elements of the ban and geo sets over
// netlink in batches, without running a process per ban.
package firewall
