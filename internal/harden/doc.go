// Package harden plans and applies host hardening from config, as steps of
// a change transaction (package change):
//
//   - sshd: a drop-in, /etc/ssh/sshd_config.d/00-moat.conf, that sorts
//     before cloud-init's 50-cloud-init.conf and ends with a Match all
//     block, so neither a later drop-in nor a Match block elsewhere can
//     loosen it; the main file is made to include the drop-in directory
//     first, and its Port and ListenAddress lines (which add up rather
//     than override) are commented out. Key exchange puts the
//     post-quantum hybrids first where the installed OpenSSH has them. A
//     port move listens on the old and new ports until confirmed. Before
//     writing, and again after, sshd -T -C must show the intended values
//     for root, the admin and every user who can log in, from every
//     source the config's Match blocks single out.
//   - the admin user: created with useradd (or put in the sudo group with
//     usermod), its keys installed; moat refuses to turn off passwords and
//     root logins unless an allowed user has a key sshd would accept.
//   - unattended-upgrades: installed when missing, 20auto-upgrades and a
//     moat drop-in (security origins, optional reboot time), verified
//     with apt-config dump.
//   - swap: a swapfile (default 2 GiB where RAM ≤ 4 GiB), mode 0600,
//     mkswap, swapon, and an fstab entry on confirm; not applicable in a
//     container.
//   - sysctls: /etc/sysctl.d/60-moat.conf, VPS-aware (forwarding kept for
//     Docker, WireGuard and Tailscale; loose rp_filter with Tailscale;
//     router advertisements kept on a SLAAC WAN), applied live during the
//     window and written on confirm.
//
// Plan reads the host under a root prefix and changes nothing. The steps
// it returns do the changing, inside a transaction.
package harden
