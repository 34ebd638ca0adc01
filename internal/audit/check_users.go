package audit

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/moat-sh/moat/internal/host"
)

// rootEquivalent are groups whose members can become root without sudo's
// password: docker and lxd mount the host, disk reads raw devices.
var rootEquivalent = []string{"docker", "lxd", "disk", "sudo", "wheel", "admin"}

func checkUsers(f *facts, o *out) {
	users, err := f.users()
	if err != nil && len(users) > 0 {
		// passwd was read; shadow or a key file was not: judge what we have.
		f.denied(err, "/etc/shadow")
		err = nil
	}
	if err != nil {
		f.denied(err, "/etc/passwd")
		for _, id := range []string{"USR-001", "USR-002", "USR-003", "USR-004"} {
			o.unknown(id, err)
		}
	} else {
		var uid0, empty, weak, usable []string
		shadowUnknown := false
		for _, u := range users {
			if u.UID == 0 && u.Name != "root" {
				uid0 = append(uid0, fmt.Sprintf("%s has UID 0 (shell %s)", u.Name, u.Shell))
			}
			switch u.Password.Kind {
			case host.PasswordEmpty:
				empty = append(empty, u.Name+" has an empty password field in /etc/shadow")
			case host.PasswordHash:
				switch u.Password.Scheme {
				case "md5", "des", "bsdi", "sha256", "unknown":
					weak = append(weak, fmt.Sprintf("%s: %s hash", u.Name, u.Password.Scheme))
				}
				if u.LoginShell {
					usable = append(usable, u.Name)
				}
			case host.PasswordUnknown:
				shadowUnknown = true
			}
		}
		o.check("USR-001", len(uid0) == 0, "", uid0...)
		if shadowUnknown {
			for _, id := range []string{"USR-002", "USR-003", "USR-004"} {
				o.unknown(id, errors.New("/etc/shadow is not readable (run as root)"))
			}
		} else {
			o.check("USR-002", len(empty) == 0, "", empty...)
			o.check("USR-003", len(weak) == 0, "", weak...)
			sev := Low
			if sf, err := f.sshd(); err == nil && sf.base.Get("passwordauthentication") == "yes" {
				sev = Medium // and SSH takes passwords: these are guessable from the internet
			}
			if len(usable) > 0 {
				o.failAt("USR-004", sev, joinComma(usable), "login accounts with a password that works: "+joinComma(usable))
			} else {
				o.pass("USR-004", "")
			}
		}
	}

	rules, err := f.h.SudoRules()
	if err != nil {
		f.denied(err, "/etc/sudoers")
		o.unknown("USR-005", err)
	} else {
		var ev []string
		for _, r := range host.NoPasswdRules(rules) {
			ev = append(ev, fmt.Sprintf("%s:%d: %s", r.File, r.Line, r.Text))
		}
		o.check("USR-005", len(ev) == 0, "", ev...)
	}
	if f.h.Live() && os.Geteuid() != 0 {
		o.unknown("USR-006", errors.New("visudo -c reads /etc/sudoers, which only root can (run as root)"))
	} else if err := f.h.VisudoCheck(f.ctx); errors.Is(err, host.ErrUnavailable) {
		o.na("USR-006", "visudo -c runs only on the live host, with sudo installed")
	} else if err != nil {
		o.fail("USR-006", "", err.Error())
	} else {
		o.pass("USR-006", "", "visudo -c: parsed OK")
	}

	groups, err := f.h.Groups()
	if err != nil {
		o.unknown("USR-007", err)
		return
	}
	var ev []string
	for _, g := range rootEquivalent {
		gr, ok := groups[g]
		if !ok {
			continue
		}
		for _, m := range gr.Members {
			// sudo membership is how the admin is meant to work; the others
			// are root without a password prompt.
			if (g == "sudo" || g == "wheel" || g == "admin") && (m == f.o.AdminUser || f.o.AdminUser == "") {
				continue
			}
			if g != "sudo" && g != "wheel" && g != "admin" && m == f.o.AdminUser {
				continue
			}
			ev = append(ev, fmt.Sprintf("%s is in %s", m, g))
		}
	}
	slices.Sort(ev)
	o.check("USR-007", len(ev) == 0, "", ev...)
}
