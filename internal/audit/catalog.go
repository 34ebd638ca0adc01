package audit

// def describes a check: what it looks at, how bad a failure is by default,
// and the fix. IDs are stable: a check may be retired, never renumbered.
type def struct {
	Layer    string
	Title    string
	Severity Severity
	Fix      string
	Anchors  Anchors
}

// catalog is every check moat audit runs, by ID. CIS items are those of the
// CIS Debian Linux 12 Benchmark v1.1.0; Lynis IDs are Lynis 3.x test IDs.
// docs/checks.md is generated from it (TestChecksDoc keeps them in step).
var catalog = map[string]def{
	// SSH: sshd's effective config per user and source, and the live wire.
	"SSH-001": {LayerSSH, "Password authentication is offered", Critical,
		"ssh.password_authentication: false, then moat apply (it writes /etc/ssh/sshd_config.d/00-moat.conf, which wins over cloud-init's 50-cloud-init.conf)", Anchors{}},
	"SSH-002": {LayerSSH, "Keyboard-interactive authentication is offered (passwords through PAM)", High,
		"moat apply writes KbdInteractiveAuthentication no; or set it in a drop-in that sorts before the others", Anchors{}},
	"SSH-003": {LayerSSH, "Root may log in", Critical,
		"ssh.permit_root_login: \"no\", then moat apply; log in as the admin user and use sudo", Anchors{CIS: "5.1.20", Lynis: "SSH-7408"}},
	"SSH-004": {LayerSSH, "Empty passwords are permitted", Critical,
		"PermitEmptyPasswords no (moat apply writes it)", Anchors{CIS: "5.1.19", Lynis: "SSH-7408"}},
	"SSH-005": {LayerSSH, "MaxAuthTries above 4", Low,
		"ssh.max_auth_tries: 3, then moat apply", Anchors{CIS: "5.1.16", Lynis: "SSH-7408"}},
	"SSH-006": {LayerSSH, "LoginGraceTime above 60 seconds", Low,
		"ssh.login_grace_time: 30s, then moat apply", Anchors{CIS: "5.1.13", Lynis: "SSH-7408"}},
	"SSH-007": {LayerSSH, "Weak key exchange algorithms offered", Medium,
		"moat apply writes KexAlgorithms with post-quantum hybrids first and no NIST-curve or SHA-1 exchanges", Anchors{CIS: "5.1.12"}},
	"SSH-008": {LayerSSH, "Weak ciphers offered", Medium,
		"moat apply writes Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes128-ctr", Anchors{CIS: "5.1.6"}},
	"SSH-009": {LayerSSH, "Weak MACs offered", Medium,
		"moat apply writes MACs with only the -etm SHA-2 MACs", Anchors{CIS: "5.1.15"}},
	"SSH-010": {LayerSSH, "Post-quantum hybrid key exchange is not preferred", Low,
		"moat apply puts mlkem768x25519-sha256 (OpenSSH 9.9+) or sntrup761x25519-sha512 (9.0+) first in KexAlgorithms", Anchors{}},
	"SSH-011": {LayerSSH, "Vulnerable to Terrapin (no strict key exchange)", Medium,
		"upgrade OpenSSH to 9.6 or a patched Debian build (apt-get install --only-upgrade openssh-server)", Anchors{}},
	"SSH-012": {LayerSSH, "Weak or exposed host key", Medium,
		"remove DSA/ECDSA/short RSA host keys (HostKey lines) and keep ssh_host_ed25519_key; private host keys must be 0600 root", Anchors{CIS: "5.1.2"}},
	"SSH-013": {LayerSSH, "X11 forwarding enabled", Low,
		"X11Forwarding no (moat apply writes it)", Anchors{CIS: "5.1.8", Lynis: "SSH-7408"}},
	"SSH-014": {LayerSSH, "Agent, TCP or tunnel forwarding enabled", Low,
		"AllowAgentForwarding no, AllowTcpForwarding no, PermitTunnel no, unless you use them", Anchors{CIS: "5.1.8", Lynis: "SSH-7408"}},
	"SSH-015": {LayerSSH, "Logins are not limited with AllowUsers or AllowGroups", Low,
		"ssh.allow_users: [ADMIN], then moat apply (the admin user is always included)", Anchors{CIS: "5.1.4", Lynis: "SSH-7440"}},
	"SSH-016": {LayerSSH, "AllowUsers/AllowGroups shut out the admin user", High,
		"add the admin user to ssh.allow_users; moat apply refuses changes that lock out the admin", Anchors{CIS: "5.1.4", Lynis: "SSH-7440"}},
	"SSH-017": {LayerSSH, "authorized_keys file is writable by others or holds weak keys", High,
		"chmod 600 ~/.ssh/authorized_keys, chown it to the user, and replace DSA or RSA < 3072 keys with ed25519 (ssh-keygen -t ed25519)", Anchors{}},
	"SSH-018": {LayerSSH, "LogLevel is not VERBOSE (key fingerprints are not logged)", Low,
		"LogLevel VERBOSE (moat apply writes it)", Anchors{CIS: "5.1.14", Lynis: "SSH-7408"}},
	"SSH-019": {LayerSSH, "sshd_config is writable by others", Medium,
		"chown root:root /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*; chmod 600 them", Anchors{CIS: "5.1.1"}},
	"SSH-020": {LayerSSH, "The server offers passwords on the wire", Critical,
		"ssh.password_authentication: false, then moat apply; check Match blocks and drop-ins (sshd -T -C user=U,addr=A)", Anchors{}},
	"SSH-021": {LayerSSH, "Weak algorithms announced on the wire", Medium,
		"moat apply writes KexAlgorithms, Ciphers, MACs and HostKeyAlgorithms without them", Anchors{}},

	// Users.
	"USR-001": {LayerUsers, "An account other than root has UID 0", Critical,
		"give the account a unique UID (usermod -u) or delete it (userdel); only root may be UID 0", Anchors{CIS: "5.4.2.1", Lynis: "AUTH-9204"}},
	"USR-002": {LayerUsers, "An account has an empty password", Critical,
		"passwd -l USER (lock) or set a password; an empty field lets anyone in on the console and over PAM", Anchors{CIS: "7.2.2", Lynis: "AUTH-9283"}},
	"USR-003": {LayerUsers, "A password uses a weak hash", High,
		"passwd USER re-hashes with yescrypt (Debian's default); check ENCRYPT_METHOD in /etc/login.defs", Anchors{CIS: "5.3.3.4.3"}},
	"USR-004": {LayerUsers, "A login account has a usable password", Low,
		"passwd -l USER if the account logs in with keys only (harmless once SSH is keys-only, but a fallback an attacker can guess)", Anchors{}},
	"USR-005": {LayerUsers, "sudo without a password (NOPASSWD)", Medium,
		"remove NOPASSWD from the rule, or limit it to specific commands", Anchors{CIS: "5.2.4"}},
	"USR-006": {LayerUsers, "sudoers has a syntax error", High,
		"visudo -c shows where; fix it with visudo -f FILE (a broken sudoers can lock you out of root)", Anchors{}},
	"USR-007": {LayerUsers, "Members of root-equivalent groups", Medium,
		"gpasswd -d USER GROUP for docker, lxd, disk and other groups that amount to root, unless that user is the admin", Anchors{}},

	// Exposure: what listens, on which addresses, and whether it is reachable.
	"EXP-001": {LayerExposure, "A datastore or admin port is reachable from the internet", Critical,
		"bind it to 127.0.0.1 (or the VPN address) in its own config, and keep it out of firewall.public (list it under firewall.vpn if remote access is needed)", Anchors{}},
	"EXP-002": {LayerExposure, "A datastore or admin port listens on every address, kept private only by the firewall", Low,
		"bind it to 127.0.0.1 or the VPN address: one layer of defence is one mistake from exposure", Anchors{}},
	"EXP-003": {LayerExposure, "A service is reachable from the internet but not declared public", Medium,
		"declare it under firewall.public if it is meant to be public; otherwise bind it to 127.0.0.1 or list it under firewall.vpn", Anchors{Lynis: "NETW-3012"}},
	"EXP-004": {LayerExposure, "A Docker-published port is reachable from the internet", High,
		"publish on 127.0.0.1 (ports: \"127.0.0.1:5432:5432\") or let moat's forward chain cover it (firewall.public for ports meant public); Docker's NAT bypasses INPUT rules and ufw", Anchors{}},
	"EXP-005": {LayerExposure, "Listening sockets", Info,
		"", Anchors{Lynis: "NETW-3012"}},

	// Firewall.
	"FW-001": {LayerFirewall, "No firewall is active", High,
		"moat apply firewall (renders table inet moat: default drop, only declared ports)", Anchors{CIS: "4.3.4", Lynis: "FIRE-4512"}},
	"FW-002": {LayerFirewall, "IPv4 input is not default-deny", High,
		"moat apply firewall; or give your input chain policy drop", Anchors{CIS: "4.3.8"}},
	"FW-003": {LayerFirewall, "IPv6 input is not default-deny", High,
		"moat apply firewall (table inet covers IPv4 and IPv6 in one table)", Anchors{CIS: "4.3.8"}},
	"FW-004": {LayerFirewall, "Loopback, established or invalid traffic mishandled", Low,
		"accept iif lo and ct state established,related; drop ct state invalid (moat's table does)", Anchors{CIS: "4.3.6"}},
	"FW-005": {LayerFirewall, "moat's table is not loaded", Info,
		"moat apply firewall", Anchors{}},
	"FW-006": {LayerFirewall, "Legacy iptables rules beside nftables", Medium,
		"migrate the rules (iptables-legacy-save | iptables-restore-translate) and flush the legacy tables: two firewalls are hard to reason about", Anchors{CIS: "4.3.3"}},

	// Updates.
	"UPD-001": {LayerUpdates, "unattended-upgrades is not installed", High,
		"host.updates.unattended: true, then moat apply (apt-get install unattended-upgrades)", Anchors{CIS: "1.2.2.1", Lynis: "PKGS-7420"}},
	"UPD-002": {LayerUpdates, "unattended-upgrades is installed but not enabled", High,
		"moat apply writes /etc/apt/apt.conf.d/20auto-upgrades (Update-Package-Lists \"1\", Unattended-Upgrade \"1\")", Anchors{Lynis: "PKGS-7420"}},
	"UPD-003": {LayerUpdates, "unattended-upgrades does not take the security origin", High,
		"moat apply adds the security origin to Unattended-Upgrade::Origins-Pattern", Anchors{}},
	"UPD-004": {LayerUpdates, "unattended-upgrades has not run recently", Medium,
		"check the apt-daily-upgrade.timer (systemctl status) and /var/log/unattended-upgrades/", Anchors{}},
	"UPD-005": {LayerUpdates, "Security updates are pending", High,
		"apt-get update && apt-get upgrade", Anchors{CIS: "1.2.2.1", Lynis: "PKGS-7392"}},
	"UPD-006": {LayerUpdates, "A reboot is required", Medium,
		"reboot at a quiet hour, or set host.updates.reboot_time", Anchors{Lynis: "KRNL-5830"}},

	// Brute-force protection.
	"GRD-001": {LayerGuard, "No brute-force protection is running", High,
		"moat run (the guard) bans addresses after failed logins, from journald or files", Anchors{Lynis: "TOOL-5190"}},
	"GRD-002": {LayerGuard, "The sshd jail reads a log sshd does not write", High,
		"fail2ban: set backend = systemd in the [sshd] jail (Debian 12 has no /var/log/auth.log by default); moat's guard picks journald by itself", Anchors{}},

	// Kernel network settings.
	"KRN-001": {LayerKernel, "Network sysctl differs from the hardened value", Medium,
		"moat apply writes /etc/sysctl.d/60-moat.conf with the VPS-aware set", Anchors{CIS: "3.3", Lynis: "KRNL-6000"}},

	// Stability.
	"STB-001": {LayerStability, "No swap on a small host", Medium,
		"host.swap.size: 2GiB, then moat apply (an OOM kill of sshd or the database is an outage)", Anchors{}},
	"STB-002": {LayerStability, "Swap file readable by others", High,
		"chmod 600 on the swap file: it holds memory pages, keys included", Anchors{}},
	"STB-003": {LayerStability, "A filesystem is nearly full", High,
		"free space (journalctl --vacuum-size=200M, docker system prune, apt-get clean) or grow the disk", Anchors{}},
	"STB-004": {LayerStability, "A filesystem is nearly out of inodes", High,
		"find the directory with many small files (du --inodes) and clean it", Anchors{}},
	"STB-005": {LayerStability, "The clock is not synchronised", Medium,
		"apt-get install systemd-timesyncd (or chrony); certificates, logs and TOTP need a correct clock", Anchors{CIS: "2.3.1.1", Lynis: "TIME-3104"}},

	// TLS.
	"TLS-001": {LayerTLS, "Certificate expires soon or has expired", High,
		"let moat's gateway manage certificates (ACME with renewal), or renew now (certbot renew)", Anchors{}},
	"TLS-002": {LayerTLS, "TLS below 1.2 is accepted", Medium,
		"set the minimum protocol to TLS 1.2 (moat's gateway never offers less)", Anchors{}},

	// Backups: read from the tools' own configuration and state files.
	"BKP-001": {LayerBackups, "No backup runs on this host", Medium,
		"set up a backup that leaves the host: restic (restic -r sftp:user@host:/srv/restic init, then a systemd timer running restic backup) or borgmatic (borgmatic config generate; borgmatic init --encryption repokey-blake2; systemctl enable --now borgmatic.timer)", Anchors{}},
	"BKP-002": {LayerBackups, "The last backup is not recent", Medium,
		"run the backup by hand and read its error (restic backup …, borgmatic create --verbosity 1)", Anchors{}},
	"BKP-003": {LayerBackups, "The backup repository is on the same disk as the data", Medium,
		"keep a copy off this disk: a repository on another host or object storage", Anchors{}},
	"BKP-004": {LayerBackups, "Backup credentials are readable by other users", High,
		"chmod 600 the file holding the repository password or key", Anchors{}},
}
