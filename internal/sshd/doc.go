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
// files (see Runner).
package sshd
