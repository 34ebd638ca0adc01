package audit

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
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
		sev := Medium
		if sf, err := f.sshd(); err == nil && sf.base.Get("passwordauthentication") == "yes" {
			sev = High // guessable passwords with nothing to stop the guessing
		}
		o.failAt("GRD-001", sev, "", "none of moat run, fail2ban, CrowdSec or sshguard is running")
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
		if _, err := f.h.ReadFile(p); errors.Is(err, fs.ErrNotExist) {
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

type f2bJail struct {
	enabled  bool
	backend  string
	logpaths []string
}

// fail2banSSHD reads fail2ban's sshd jail the way fail2ban layers its
// files: jail.conf, jail.d/*.conf, jail.local, jail.d/*.local, later wins;
// [sshd] over [DEFAULT]. Interpolation is resolved only for the Debian
// defaults that matter here (%(sshd_log)s, %(sshd_backend)s).
func (f *facts) fail2banSSHD() f2bJail {
	files := []string{"/etc/fail2ban/jail.conf"}
	for _, pat := range []string{"/etc/fail2ban/jail.d/*.conf", "/etc/fail2ban/jail.local", "/etc/fail2ban/jail.d/*.local"} {
		m, _ := filepath.Glob(f.h.Path(pat))
		sort.Strings(m)
		for _, p := range m {
			rel, _ := filepath.Rel(f.h.Path("/"), p)
			files = append(files, "/"+rel)
		}
	}
	vals := map[string]map[string]string{"DEFAULT": {}, "sshd": {}}
	for _, p := range files {
		b, err := f.h.ReadFile(p)
		if err != nil {
			continue
		}
		section := ""
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || line[0] == '#' || line[0] == ';' {
				continue
			}
			if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
				section = strings.TrimSpace(line[1 : len(line)-1])
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if m, isKnown := vals[section]; ok && isKnown {
				m[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	get := func(k, def string) string {
		if v, ok := vals["sshd"][k]; ok {
			return v
		}
		if v, ok := vals["DEFAULT"][k]; ok {
			return v
		}
		return def
	}
	j := f2bJail{enabled: get("enabled", "false") == "true", backend: get("backend", "auto")}
	if j.backend == "%(sshd_backend)s" || j.backend == "%(default_backend)s" {
		j.backend = "auto"
	}
	lp := get("logpath", "%(sshd_log)s")
	for _, p := range strings.Fields(lp) {
		if strings.Contains(p, "%(") {
			p = "/var/log/auth.log" // Debian's paths-debian.conf value for sshd_log and syslog_authpriv
		}
		j.logpaths = append(j.logpaths, p)
	}
	return j
}
