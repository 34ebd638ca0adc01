package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/sshd"
)

var sshIDs = []string{"SSH-001", "SSH-002", "SSH-003", "SSH-004", "SSH-005", "SSH-006", "SSH-007", "SSH-008", "SSH-009", "SSH-010", "SSH-011", "SSH-012", "SSH-013", "SSH-014", "SSH-015", "SSH-016", "SSH-017", "SSH-018", "SSH-019", "SSH-020", "SSH-021"}

func checkSSH(f *facts, o *out) {
	sf, err := f.sshd()
	if err != nil {
		var none *noSSHDError
		for _, id := range sshIDs {
			if errors.As(err, &none) {
				o.na(id, none.why)
			} else {
				o.unknown(id, err)
			}
		}
		return
	}
	checkSSHAuth(f, sf, o)
	checkSSHCrypto(f, sf, o)
	checkSSHAccess(f, sf, o)
	checkSSHFiles(f, sf, o)
	checkSSHProbe(sf, o)
}

// where describes a context for evidence: "alice from the internet", with
// the port when sshd listens on several ("alice from the internet on port
// 2222").
func (sf *sshdFacts) where(c sshd.Context) string {
	src := "the internet"
	if !fromInternet(c) {
		src = "the VPN"
	}
	s := c.User + " from " + src
	if len(sf.ports) > 1 {
		s += fmt.Sprintf(" on port %d", c.LPort)
	}
	return s
}

func fromInternet(c sshd.Context) bool { return c.Addr == internetV4.String() }

func teeArg(c sshd.Context) string {
	s, _ := c.Spec()
	return "sshd -T -C " + s
}

// perContext evaluates bad() for every context and reports one result:
// the contexts where it holds, or a pass.
func perContext(o *out, id string, sf *sshdFacts, key string, bad func(v string, c sshd.Context) (Severity, bool), hint []string) {
	var ev, subjects []string
	worst, any := Info, false
	for i, c := range sf.contexts {
		v := sf.eff[i].Get(key)
		if sev, isBad := bad(v, c); isBad {
			ev = append(ev, fmt.Sprintf("%s: %s %s", teeArg(c), key, v))
			subjects = append(subjects, sf.where(c))
			if !any || sev > worst {
				worst, any = sev, true
			}
		}
	}
	if !any {
		o.pass(id, "", fmt.Sprintf("%s is as intended for %s", key, plural(len(sf.contexts), "user/source pair", "user/source pairs")))
		return
	}
	subject := joinComma(subjects)
	if len(subjects) == len(sf.contexts) {
		subject = "every user, every source"
		if same(sf, key) {
			ev = []string{fmt.Sprintf("sshd -T -C for %s: %s %s", plural(len(sf.contexts), "user/source pair", "user/source pairs"), key, sf.eff[0].Get(key))}
		}
	}
	if len(ev) > 6 {
		ev = append(ev[:6:6], fmt.Sprintf("… and %d more", len(ev)-6))
	}
	o.failAt(id, worst, subject, append(ev, hint...)...)
}

// same reports whether key has one value in every context.
func same(sf *sshdFacts, key string) bool {
	for _, e := range sf.eff {
		if e.Get(key) != sf.eff[0].Get(key) {
			return false
		}
	}
	return true
}

func checkSSHAuth(f *facts, sf *sshdFacts, o *out) {
	perContext(o, "SSH-001", sf, "passwordauthentication", func(v string, c sshd.Context) (Severity, bool) {
		if v != "yes" {
			return 0, false
		}
		if fromInternet(c) {
			return Critical, true
		}
		return High, true
	}, f.sshdLines("PasswordAuthentication", "yes"))
	perContext(o, "SSH-002", sf, "kbdinteractiveauthentication", func(v string, c sshd.Context) (Severity, bool) {
		return High, v == "yes" && sf.eff[0].Get("usepam") == "yes"
	}, f.sshdLines("KbdInteractiveAuthentication", "yes"))

	// Root login: only the contexts for root matter.
	var rootBad []string
	sev := Info
	for i, c := range sf.contexts {
		if c.User != "root" {
			continue
		}
		switch v := sf.eff[i].Get("permitrootlogin"); v {
		case "yes":
			rootBad, sev = append(rootBad, fmt.Sprintf("%s: permitrootlogin yes", teeArg(c))), Critical
		case "prohibit-password", "without-password":
			rootBad = append(rootBad, fmt.Sprintf("%s: permitrootlogin %s (root may log in with a key)", teeArg(c), v))
			sev = max(sev, Low)
		}
	}
	if len(rootBad) > 0 {
		o.failAt("SSH-003", sev, "root", append(rootBad, f.sshdLines("PermitRootLogin", "yes")...)...)
	} else {
		o.pass("SSH-003", "root", "permitrootlogin no")
	}
	perContext(o, "SSH-004", sf, "permitemptypasswords", func(v string, _ sshd.Context) (Severity, bool) {
		return Critical, v == "yes"
	}, nil)
	perContext(o, "SSH-005", sf, "maxauthtries", func(v string, _ sshd.Context) (Severity, bool) {
		var n int
		fmt.Sscan(v, &n)
		return Low, n > 4
	}, nil)
	perContext(o, "SSH-006", sf, "logingracetime", func(v string, _ sshd.Context) (Severity, bool) {
		var n int
		fmt.Sscan(v, &n)
		return Low, n == 0 || n > 60
	}, nil)
}

func checkSSHCrypto(f *facts, sf *sshdFacts, o *out) {
	b := sf.base
	weak := func(id, key string, isWeak func(string) bool) {
		var bad []string
		for _, a := range b.List(key) {
			if isWeak(a) {
				bad = append(bad, a+" ("+sshd.WhyWeak(a)+")")
			}
		}
		if len(bad) > 0 {
			o.fail(id, "", append([]string{fmt.Sprintf("sshd -T: %s offers:", key)}, bad...)...)
		} else {
			o.pass(id, "", key+" "+strings.Join(b.List(key), ","))
		}
	}
	weak("SSH-007", "kexalgorithms", func(a string) bool { return !sshd.PseudoKex(a) && sshd.WeakKex(a) })
	weak("SSH-008", "ciphers", sshd.WeakCipher)
	weak("SSH-009", "macs", sshd.WeakMAC)
	if r := &o.results[len(o.results)-1]; r.ID == "SSH-009" && r.Status == Pass {
		var mte []string
		for _, a := range b.List("macs") {
			if sshd.MACThenEncrypt(a) {
				mte = append(mte, a)
			}
		}
		if len(mte) > 0 {
			o.results = o.results[:len(o.results)-1]
			o.failAt("SSH-009", Low, "", "sshd -T: macs offers MAC-then-encrypt (non-EtM) "+strings.Join(mte, ", ")+": the -etm@openssh.com variants authenticate the ciphertext instead")
		}
	}

	kex := b.List("kexalgorithms")
	supported := false
	if avail, err := sshd.SupportedKex(f.ctx); err == nil {
		supported = slices.ContainsFunc(avail, sshd.PostQuantumKex)
	} else if v, err := f.sshVersion(); err == nil {
		supported = v.AtLeast(9, 0)
	}
	switch {
	case !supported:
		o.na("SSH-010", "the installed OpenSSH has no post-quantum key exchange (9.0 or newer has)")
	case len(kex) > 0 && sshd.PostQuantumKex(kex[0]):
		o.pass("SSH-010", "", "first kex: "+kex[0])
	default:
		first := "(none)"
		if len(kex) > 0 {
			first = kex[0]
		}
		o.fail("SSH-010", "", "sshd -T: kexalgorithms starts with "+first)
	}

	switch {
	case sf.probe != nil && len(sf.probe.KexInit.Kex) > 0:
		if sshd.TerrapinExposed(sf.probe.KexInit) {
			o.fail("SSH-011", "", "server KEXINIT lacks "+sshd.StrictKexServer+" and offers chacha20-poly1305 or CBC with EtM", "server: "+sf.probe.ServerVersion)
		} else {
			o.pass("SSH-011", "", "server announces strict key exchange or offers no affected cipher")
		}
	default:
		o.na("SSH-011", "needs the live probe of a running sshd")
	}

	// Host keys: type and size from the .pub, mode of the private key.
	var bad, good []string
	for _, p := range b.All("hostkey") {
		if st, err := os.Stat(f.h.Path(p)); err == nil {
			if st.Mode().Perm()&0o077 != 0 {
				bad = append(bad, fmt.Sprintf("%s is mode %04o (want 0600)", p, st.Mode().Perm()))
			}
		}
		pub, err := f.h.ReadFile(p + ".pub")
		if err != nil {
			continue
		}
		k, err := sshd.ParseHostKeyFile(pub)
		if err != nil {
			continue
		}
		if w := k.Weakness(); w != "" {
			bad = append(bad, fmt.Sprintf("%s: %s", p, w))
		} else {
			good = append(good, fmt.Sprintf("%s: %s", p, k))
		}
	}
	if len(bad) > 0 {
		o.fail("SSH-012", "", bad...)
	} else {
		o.pass("SSH-012", "", good...)
	}

	perContext(o, "SSH-013", sf, "x11forwarding", func(v string, _ sshd.Context) (Severity, bool) { return Low, v == "yes" }, nil)
	var fwd []string
	if b.Get("disableforwarding") != "yes" {
		if v := b.Get("allowagentforwarding"); v == "yes" {
			fwd = append(fwd, "allowagentforwarding yes")
		}
		if v := b.Get("allowtcpforwarding"); v != "no" && v != "" {
			fwd = append(fwd, "allowtcpforwarding "+v)
		}
		if v := b.Get("permittunnel"); v != "no" && v != "" {
			fwd = append(fwd, "permittunnel "+v)
		}
	}
	if len(fwd) > 0 {
		o.fail("SSH-014", "", fwd...)
	} else {
		o.pass("SSH-014", "")
	}
	if v := strings.ToUpper(b.Get("loglevel")); v == "VERBOSE" || strings.HasPrefix(v, "DEBUG") {
		o.pass("SSH-018", "", "loglevel "+v)
	} else {
		o.fail("SSH-018", "", "sshd -T: loglevel "+v)
	}
}

func checkSSHAccess(f *facts, sf *sshdFacts, o *out) {
	b := sf.base
	allowU, allowG := b.All("allowusers"), b.All("allowgroups")
	if len(allowU)+len(allowG) == 0 {
		o.fail("SSH-015", "", "sshd -T shows no allowusers or allowgroups: every account with a key or password may log in")
	} else {
		o.pass("SSH-015", "", "allowusers "+strings.Join(allowU, " "), "allowgroups "+strings.Join(allowG, " "))
	}
	admin := f.o.AdminUser
	if admin == "" {
		o.na("SSH-016", "no admin user configured (host.admin.user)")
		return
	}
	for i, c := range sf.contexts {
		if c.User != admin {
			continue
		}
		e := sf.eff[i]
		if ok, why := e.UserAllowed(admin, f.groupsOf(admin), c.Addr); !ok {
			o.fail("SSH-016", admin, fmt.Sprintf("%s: %s", teeArg(c), why))
			return
		}
	}
	o.pass("SSH-016", admin)
}

// groupsOf lists user's groups as getgrouplist gives them to sshd: the
// primary group and every group listing the user, from the audited
// root's /etc/passwd and /etc/group.
func (f *facts) groupsOf(user string) []string {
	groups, err := f.h.Groups()
	if err != nil {
		return nil
	}
	users, _ := f.users()
	var out []string
	for _, u := range users {
		if u.Name != user {
			continue
		}
		for _, g := range groups {
			if g.GID == u.GID {
				out = append(out, g.Name)
				break
			}
		}
		break
	}
	for _, g := range groups {
		if slices.Contains(g.Members, user) && !slices.Contains(out, g.Name) {
			out = append(out, g.Name)
		}
	}
	return out
}

func checkSSHFiles(f *facts, sf *sshdFacts, o *out) {
	users, err := f.users()
	if err != nil && len(users) == 0 {
		o.unknown("SSH-017", err)
	} else {
		bad, worst, n := f.authorizedKeysFindings(sf, users)
		if len(bad) > 0 {
			o.failAt("SSH-017", worst, "", bad...)
		} else {
			o.pass("SSH-017", "", plural(n, "authorized_keys file", "authorized_keys files")+" checked, as AuthorizedKeysFile names them")
		}
	}

	var bad []string
	for _, p := range f.sshdConfigFiles() {
		st, err := os.Stat(f.h.Path(p))
		if err != nil {
			continue
		}
		if st.Mode().Perm()&0o022 != 0 {
			bad = append(bad, fmt.Sprintf("%s is mode %04o", p, st.Mode().Perm()))
		}
		if f.h.Live() {
			if s, ok := st.Sys().(*syscall.Stat_t); ok && s.Uid != 0 {
				bad = append(bad, fmt.Sprintf("%s is owned by uid %d", p, s.Uid))
			}
		}
	}
	if len(bad) > 0 {
		o.fail("SSH-019", "", bad...)
	} else {
		o.pass("SSH-019", "")
	}
}

func checkSSHProbe(sf *sshdFacts, o *out) {
	if sf.probe == nil {
		why := "the live probe needs a running sshd on this host (not run under --root or with --no-probe)"
		if sf.probeErr != nil {
			why = "live probe: " + sf.probeErr.Error()
		}
		o.na("SSH-020", why)
		o.na("SSH-021", why)
		return
	}
	p := sf.probe
	var offered, ev []string
	users := make([]string, 0, len(p.AuthMethods))
	for u := range p.AuthMethods {
		users = append(users, u)
	}
	slices.Sort(users)
	for _, u := range users {
		m := p.AuthMethods[u]
		ev = append(ev, fmt.Sprintf("%s: %s", u, strings.Join(m, ",")))
		if slices.Contains(m, "password") || slices.Contains(m, "none") {
			offered = append(offered, u)
		}
	}
	if len(offered) > 0 {
		o.fail("SSH-020", joinComma(offered), append([]string{"offered on the wire to a client that sent no credential:"}, ev...)...)
	} else {
		o.pass("SSH-020", "", ev...)
	}
	k := p.KexInit
	var weak []string
	for _, list := range [][]string{k.Kex, k.HostKey, k.CiphersCS, k.MACsCS} {
		for _, a := range list {
			if !sshd.PseudoKex(a) && sshd.WhyWeak(a) != "" && !slices.Contains(weak, a) {
				weak = append(weak, a)
			}
		}
	}
	if len(weak) > 0 {
		o.fail("SSH-021", "", "server KEXINIT offers "+strings.Join(weak, ", "), "server: "+p.ServerVersion)
	} else {
		o.pass("SSH-021", "", "server: "+p.ServerVersion)
	}
}

// sshdConfigFiles lists the main config and every file its Includes
// reach, read inside the audited root (relative Includes too).
func (f *facts) sshdConfigFiles() []string {
	files, err := sshd.ConfigFiles(f.o.Root, "")
	if len(files) == 0 {
		if err != nil {
			f.denied(err, "/etc/ssh")
		}
		return []string{sshd.DefaultConfigFile}
	}
	return files
}

// authorizedKeysFindings checks every file sshd's AuthorizedKeysFile
// names for each user (tokens expanded, relative paths under the home):
// writable by others (the file or a directory above it), owned by someone
// else, or holding weak keys. n is how many files were read.
func (f *facts) authorizedKeysFindings(sf *sshdFacts, users []host.User) (bad []string, worst Severity, n int) {
	worst = Medium
	strict := sf.base.Get("strictmodes") != "no"
	spec := func(u string) string {
		for i, c := range sf.contexts {
			if c.User == u && fromInternet(c) {
				return sf.eff[i].Get("authorizedkeysfile")
			}
		}
		return sf.base.Get("authorizedkeysfile")
	}
	seen := map[string]bool{}
	for _, u := range users {
		for _, p := range host.ExpandAuthorizedKeysFile(spec(u.Name), u) {
			if seen[p] {
				continue
			}
			seen[p] = true
			kf, err := f.h.ReadKeyFile(p)
			if err != nil {
				if errors.Is(err, fs.ErrPermission) {
					f.denied(err, p)
				}
				continue
			}
			n++
			if kf.Mode.Perm()&0o022 != 0 {
				why := "others can add keys"
				if strict {
					why += " (StrictModes makes sshd refuse the file, so its keys do not work either)"
				}
				bad = append(bad, fmt.Sprintf("%s is mode %04o: %s", kf.Path, kf.Mode.Perm(), why))
				worst = High
			}
			for _, d := range f.h.WritableDirs(p) {
				bad = append(bad, fmt.Sprintf("%s: others can replace %s, %s's authorized keys", d, kf.Path, u.Name))
				worst = High
			}
			if kf.Owner != u.UID && kf.Owner != 0 && kf.Owner != -1 {
				bad = append(bad, fmt.Sprintf("%s is owned by uid %d, not %s", kf.Path, kf.Owner, u.Name))
				worst = High
			}
			for _, k := range kf.Keys {
				hk := sshd.HostKey{Type: k.Type, Bits: k.Bits}
				if w := hk.Weakness(); w != "" && !(k.Type == "ssh-rsa" && k.Bits >= 2048 && k.Bits < 3072) {
					bad = append(bad, fmt.Sprintf("%s: %s %s: %s", kf.Path, k.Type, k.Comment, w))
				}
			}
		}
	}
	return bad, worst, n
}

// sshdLines finds where a keyword is set to value in the config files, so
// a finding can point at the line to change (cloud-init's drop-in is the
// usual culprit).
func (f *facts) sshdLines(keyword, value string) []string {
	var out []string
	for _, p := range f.sshdConfigFiles() {
		b, err := f.h.ReadFile(p)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				f.denied(err, p)
			}
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for n := 1; sc.Scan(); n++ {
			kw, args, ok := sshd.SplitLine(sc.Text())
			if ok && strings.EqualFold(kw, keyword) && strings.EqualFold(args[0], value) {
				out = append(out, fmt.Sprintf("set in %s:%d: %s", p, n, strings.TrimSpace(sc.Text())))
			}
		}
	}
	return out
}
