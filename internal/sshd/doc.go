// Package sshd knows OpenSSH's server: the effective configuration as sshd
// itself computes it (sshd -T -C), the installed version and algorithms, which
// algorithms are weak or post-quantum, and what a running server offers on
// the wire (its KEXINIT lists and, per user, the authentication methods it
// accepts) — learned without ever sending a credential.
//
// The effective configuration always comes from sshd, never from parsing
// sshd_config here: Include order, first-value-wins, Match evaluation and
// compiled-in defaults are sshd's to decide. Under a fixture root the config
// tree is copied to a temporary directory with its Include paths redirected
// into the root, so sshd evaluates the fixture exactly as it would its own
// files; the one thing sshd would look up on the running host, a Match
// Group's members, is rewritten from the fixture's /etc/passwd and
// /etc/group (see Runner). When sshd refuses a -C spec that lacks a field a
// Match line needs (lport for Match LocalPort), the field is filled and the
// Effective's Notes say what could not be verified, so a caller never loses
// the whole configuration to one Match block. UserAllowed applies sshd's
// account rules (AllowUsers, DenyUsers, AllowGroups, DenyGroups) to an
// evaluated configuration.
package sshd
