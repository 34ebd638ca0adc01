package audit

// notApplicable says, per check, where it reports n/a instead of pass or
// fail: the hosts it does not fit, and what it needs that a run may lack.
// docs/checks.md shows it next to each check (TestChecksDoc keeps them in
// step; every key must be in the catalog).
var notApplicable = map[string]string{
	"SSH-001": sshNA, "SSH-002": sshNA, "SSH-003": sshNA, "SSH-004": sshNA, "SSH-005": sshNA,
	"SSH-006": sshNA, "SSH-007": sshNA, "SSH-008": sshNA, "SSH-009": sshNA, "SSH-012": sshNA,
	"SSH-013": sshNA, "SSH-014": sshNA, "SSH-015": sshNA, "SSH-017": sshNA, "SSH-018": sshNA,
	"SSH-019": sshNA,
	"SSH-010": sshNA + "; the installed OpenSSH has no post-quantum key exchange (before 9.0)",
	"SSH-011": sshNA + "; no live probe (under --root, with --no-probe, or sshd not reachable on its port)",
	"SSH-016": sshNA + "; no admin user configured (host.admin.user)",
	"SSH-020": sshNA + "; no live probe (under --root, with --no-probe, or sshd not reachable on its port)",
	"SSH-021": sshNA + "; no live probe (under --root, with --no-probe, or sshd not reachable on its port)",
	"USR-006": "under --root, or sudo not installed (visudo -c runs on the live host only)",
	"EXP-004": "Docker is not present",
	"FW-004":  "no default-deny input chain to judge",
	"UPD-002": "unattended-upgrades is not installed; under --root without a captured apt-config dump",
	"UPD-003": "unattended-upgrades is not installed; under --root without a captured apt-config dump",
	"UPD-004": "unattended-upgrades is not installed",
	"UPD-005": "--skip-apt; under --root without a captured apt simulation",
	"GRD-002": "fail2ban is neither installed nor running, or its sshd jail is not enabled",
	"KRN-001": "inside a container (Docker, Podman, LXC, systemd-nspawn, OpenVZ, Kubernetes, or any PID namespace systemd-detect-virt would call one): the host's kernel settings apply and the container cannot change them",
	"STB-001": "inside a container: swap is the host's",
	"STB-002": "no swap file",
	"STB-003": "no filesystem usage available (under --root without a captured df)",
	"STB-004": "no filesystem usage available (under --root without a captured df)",
	"STB-005": "inside a container: the host keeps the clock (timesyncd may be installed but cannot run); under --root without the timesyncd flag file",
	"TLS-001": "under --root; nothing listens on port 443",
	"TLS-002": "under --root; nothing listens on port 443",
	"BKP-002": "no backup tool is configured; no log, cache or local repository of the tool is readable (a remote repository's snapshots are listed only by the tool itself)",
	"BKP-003": "no backup tool is configured; the repository is a device named by UUID (timeshift); no filesystem usage available (under --root without a captured df)",
	"BKP-004": "no backup tool is configured, or its configuration names no credential file",
}

// sshNA is where every SSH check is n/a.
const sshNA = "no sshd: not installed, or installed but neither running nor listening on port 22 (a container image that ships openssh-server without starting it)"
