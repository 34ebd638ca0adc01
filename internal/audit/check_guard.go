package audit

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func checkGuard(f *facts, o *out) {
	run := f.running("fail2ban-server", "crowdsec", "sshguard")
	run["moat"] = f.moatGuardRunning()
	var active []string
	for _, n := range []string{"moat", "fail2ban-server", "crowdsec", "sshguard"} {
		if run[n] {
			active = append(active, n)
		}
	}
	if len(active) > 0 {
		o.pass("GRD-001", "", "running: "+joinComma(active))
	} else {
		sev, why := f.guardNeed()
		o.failAt("GRD-001", sev, "", "none of moat run, fail2ban, CrowdSec or sshguard is running", why)
	}

	pk, _ := f.packages()
	if !run["fail2ban-server"] && !installed(pk, "fail2ban") {
		o.na("GRD-002", "fail2ban is not in use")
		return
	}
	j := f.fail2banSSHD()
	if !j.enabled {
		o.na("GRD-002", "fail2ban's sshd jail is not enabled")
		return
	}
	if strings.Contains(j.backend, "systemd") {
		journal, _ := f.h.JournaldRunning()
		o.check("GRD-002", journal || !f.h.Live(), "", "[sshd] backend = "+j.backend+" (reads journald)")
		return
	}
	missing := []string{}
	for _, p := range j.logpaths {
		if !f.f2bLogExists(p) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		o.fail("GRD-002", "", "[sshd] backend = "+j.backend+", logpath "+strings.Join(missing, ", ")+" does not exist: sshd logs to journald only, and the jail sees nothing")
		return
	}
	o.pass("GRD-002", "", "[sshd] logpath "+strings.Join(j.logpaths, ", "))
}

// moatGuardRunning finds a `moat run` daemon other than this process.
func (f *facts) moatGuardRunning() bool {
	ps, err := f.processes()
	if err != nil {
		return false
	}
	for _, p := range ps {
		if p.Is("moat") && p.PID != os.Getpid() && slices.Contains(p.Args, "run") {
			return true
		}
	}
	return false
}

// f2bJail is what the audit needs of one fail2ban jail.
type f2bJail struct {
	enabled  bool
	backend  string
	logpaths []string
}

// guardNeed rates how much a missing guard matters from what sshd
// actually offers: passwords (or PAM keyboard-interactive) for any user
// from the internet, in any Match block, make guessing worthwhile (high);
// keys only is medium; no sshd at all leaves little to guard (low).
func (f *facts) guardNeed() (Severity, string) {
	sf, err := f.sshd()
	var none *noSSHDError
	switch {
	case errors.As(err, &none):
		return Low, none.why + ": no SSH logins to guess"
	case err != nil:
		return Medium, "sshd's configuration is unknown"
	}
	if f.sshdExposure(sf) == "private" {
		return Low, "sshd listens on loopback or VPN addresses only: nothing from the internet reaches it to guess"
	}
	for i, c := range sf.contexts {
		if !fromInternet(c) {
			continue
		}
		e := sf.eff[i]
		if e.Get("passwordauthentication") == "yes" {
			return High, "sshd offers passwords to " + sf.where(c) + ": guessable passwords with nothing to stop the guessing"
		}
		if e.Get("kbdinteractiveauthentication") == "yes" && e.Get("usepam") == "yes" {
			return High, "sshd offers keyboard-interactive (PAM passwords) to " + sf.where(c) + ": guessable passwords with nothing to stop the guessing"
		}
	}
	return Medium, "sshd takes keys only: failed logins are noise, but nothing slows a flood"
}

// f2bLogExists reports whether a logpath (maybe a glob) names a file.
func (f *facts) f2bLogExists(p string) bool {
	if strings.ContainsAny(p, "*?[") {
		m, _ := filepath.Glob(f.h.Path(p))
		return len(m) > 0
	}
	_, err := f.h.ReadFile(p)
	return !errors.Is(err, fs.ErrNotExist)
}
