package harden

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/sshd"
)

// Bounds on the sshd -T runs of one check: each costs ~25 ms of CPU.
const (
	maxCheckUsers   = 12
	maxCheckSources = 8
)

// publicSample stands in for an address on the internet (TEST-NET-3).
var publicSample = netip.MustParseAddr("203.0.113.77")

// verifier checks sshd's effective configuration against what moat
// intends, for root, the admin, every user who can log in and every
// source the config singles out.
type verifier struct {
	f        *facts
	want     SSHDParams
	admin    *adminPlan
	users    []string
	contexts []sshd.Context
}

func newVerifier(f *facts, in Input, admin *adminPlan, want SSHDParams, sp SSHPlan) *verifier {
	v := &verifier{f: f, want: want, admin: admin}
	add := func(u string) {
		if u != "" && !slices.Contains(v.users, u) && len(v.users) < maxCheckUsers {
			v.users = append(v.users, u)
		}
	}
	add("root")
	add(admin.user)
	for _, u := range in.SSH.AllowUsers {
		if !strings.ContainsAny(u, "*?@") {
			add(u)
		}
	}
	for _, name := range f.order {
		u := f.users[name]
		if u.LoginShell && (len(u.AuthorizedKeys) > 0 || usablePassword(u.Password)) {
			add(name)
		}
	}

	var sources []netip.Addr
	addSrc := func(a netip.Addr) {
		if a.IsValid() && !slices.Contains(sources, a.Unmap()) && len(sources) < maxCheckSources {
			sources = append(sources, a.Unmap())
		}
	}
	if f.hasSess {
		addSrc(f.session.Client.Addr())
	}
	for _, s := range in.Host.Admin.Sources {
		addSrc(s.Addr())
	}
	for _, r := range in.VPN.Ranges {
		addSrc(firstHost(r.Prefix))
	}
	for _, a := range matchAddresses(f.root) {
		addSrc(a)
	}
	addSrc(publicSample)

	lport := int(sp.Port)
	primary := sources[0]
	for _, u := range v.users {
		v.contexts = append(v.contexts, sshd.Context{User: u, Addr: primary.String(), LPort: lport})
	}
	for _, s := range sources[1:] {
		for _, u := range []string{"root", admin.user} {
			if u != "" {
				v.contexts = append(v.contexts, sshd.Context{User: u, Addr: s.String(), LPort: lport})
			}
		}
	}
	return v
}

func firstHost(p netip.Prefix) netip.Addr {
	p = p.Masked()
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr()
	}
	return p.Addr().Next()
}

// matchAddresses finds an address inside each range a Match Address
// block of the current configuration names, so that the check covers
// connections from there.
func matchAddresses(root string) []netip.Addr {
	main, err := os.ReadFile(change.HostPath(root, MainConfig))
	if err != nil {
		return nil
	}
	files := []string{MainConfig}
	inc, _ := includedFiles(root, main)
	files = append(files, inc...)
	var out []netip.Addr
	for _, name := range files {
		data, err := os.ReadFile(change.HostPath(root, name))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			kw, args := splitDirective(l)
			if !strings.EqualFold(kw, "match") {
				continue
			}
			f := strings.Fields(args)
			for i := 0; i+1 < len(f); i++ {
				if !strings.EqualFold(f[i], "address") {
					continue
				}
				for _, pat := range strings.Split(f[i+1], ",") {
					if a, ok := patternSample(pat); ok {
						out = append(out, a)
					}
				}
			}
		}
	}
	return out
}

// patternSample picks an address matching an sshd address pattern: a
// CIDR, an address, or a wildcard pattern. Negations match everything
// else and are skipped.
func patternSample(pat string) (netip.Addr, bool) {
	if pat == "" || strings.HasPrefix(pat, "!") {
		return netip.Addr{}, false
	}
	if p, err := netip.ParsePrefix(pat); err == nil {
		return firstHost(p), true
	}
	s := strings.NewReplacer("*", "1", "?", "1").Replace(pat)
	a, err := netip.ParseAddr(s)
	return a, err == nil
}

// check runs sshd -T on ev for every context and returns what differs
// from the intent, plus whether no allowed user could log in with a key.
// An sshd that rejects the configuration is a problem too.
func (v *verifier) check(ctx context.Context, ev evaluator) ([]string, error) {
	cs := append([]sshd.Context{{}}, v.contexts...)
	effs, err := ev.effective(ctx, cs)
	if err != nil {
		return []string{"sshd rejects the configuration: " + err.Error()}, nil
	}
	var probs []string
	probs = append(probs, v.checkGlobal(effs[0])...)
	for i, c := range v.contexts {
		for _, p := range v.checkRules(effs[i+1]) {
			probs = append(probs, fmt.Sprintf("sshd -T -C %s: %s", c, p))
		}
	}
	if p := v.keyLogin(cs[1:], effs[1:]); p != "" {
		probs = append(probs, p)
	}
	return probs, nil
}

func (v *verifier) checkGlobal(e sshd.Effective) []string {
	var probs []string
	for _, p := range v.checkRules(e) {
		probs = append(probs, "sshd -T: "+p)
	}
	var ports []uint16
	for _, s := range e.All("port") {
		n, _ := strconv.Atoi(s)
		ports = append(ports, uint16(n))
	}
	slices.Sort(ports)
	if want := slices.Sorted(slices.Values(v.want.Ports)); !slices.Equal(slices.Compact(ports), want) {
		probs = append(probs, fmt.Sprintf("sshd -T: listens on port %s, want %s (a Port line elsewhere adds up with moat's)", portList(ports), portList(want)))
	}
	eq := func(key, want string) {
		if got := e.Get(key); !strings.EqualFold(got, want) {
			probs = append(probs, fmt.Sprintf("sshd -T: %s is %q, want %q", key, got, want))
		}
	}
	eq("logingracetime", strconv.Itoa(int(v.want.LoginGraceTime.Seconds())))
	eq("loglevel", "VERBOSE")
	eq("pubkeyauthentication", "yes")
	if len(v.want.Kex) > 0 {
		eq("kexalgorithms", strings.Join(v.want.Kex, ","))
	}
	if len(v.want.Ciphers) > 0 {
		eq("ciphers", strings.Join(v.want.Ciphers, ","))
	}
	if len(v.want.MACs) > 0 {
		eq("macs", strings.Join(v.want.MACs, ","))
	}
	if len(v.want.Listen) > 0 {
		var got []string
		for _, la := range e.All("listenaddress") {
			if ap, err := netip.ParseAddrPort(la); err == nil {
				got = append(got, ap.Addr().String())
			}
		}
		want := make([]string, len(v.want.Listen))
		for i, a := range v.want.Listen {
			want[i] = a.String()
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(slices.Compact(got), slices.Compact(want)) {
			probs = append(probs, fmt.Sprintf("sshd -T: listens on %v, want %v only", got, want))
		}
	}
	return probs
}

// checkRules compares the login rules, which Match blocks can change.
func (v *verifier) checkRules(e sshd.Effective) []string {
	var probs []string
	for _, kv := range loginRules(v.want) {
		key := strings.ToLower(kv[0])
		want := strings.ToLower(kv[1])
		var got string
		switch key {
		case "allowusers", "allowgroups":
			got = strings.Join(e.All(key), " ")
			if setOf(got) != setOf(want) {
				probs = append(probs, fmt.Sprintf("%s is %q, want %q (a Match block adds to moat's list)", key, got, want))
			}
			continue
		case "permitrootlogin":
			got = e.Get(key)
			if want == "prohibit-password" {
				want = "without-password" // how sshd prints it
			}
		default:
			got = e.Get(key)
		}
		if got != want {
			probs = append(probs, fmt.Sprintf("%s is %q, want %q (a Match block or an earlier file overrides moat's)", key, got, want))
		}
	}
	return probs
}

func setOf(s string) string {
	f := strings.Fields(s)
	slices.Sort(f)
	return strings.Join(slices.Compact(f), " ")
}

// keyLogin finds a user sshd would let in with a key after the change;
// "" when there is one, otherwise why none qualified.
func (v *verifier) keyLogin(cs []sshd.Context, effs []sshd.Effective) string {
	var why []string
	for i, c := range cs {
		if i >= len(v.users) { // the per-user contexts come first, at the primary source
			break
		}
		reason := v.canKeyLogin(c.User, effs[i])
		if reason == "" {
			return ""
		}
		why = append(why, c.User+": "+reason)
	}
	hint := "add your public key to host.admin.keys"
	if v.admin.user == "" {
		hint = "set host.admin.user and host.admin.keys"
	}
	return fmt.Sprintf("after this change nobody could log in with a key, and passwords and root logins would be off (%s): %s", strings.Join(why, "; "), hint)
}

func (v *verifier) canKeyLogin(user string, e sshd.Effective) string {
	u, ok := v.f.users[user]
	if !ok && user != v.admin.user {
		return "no such user"
	}
	if user == "root" {
		if r := e.Get("permitrootlogin"); r == "no" || r == "forced-commands-only" {
			return "PermitRootLogin " + r
		}
	}
	if ok && !u.LoginShell {
		return "no login shell (" + u.Shell + ")"
	}
	if e.Get("pubkeyauthentication") != "yes" {
		return "PubkeyAuthentication no"
	}
	if !methodsAllowKey(e.Get("authenticationmethods")) {
		return "AuthenticationMethods " + e.Get("authenticationmethods") + " needs more than a key"
	}
	if why := v.allowed(user, e); why != "" {
		return why
	}
	home, uid := u.Home, u.UID
	if !ok {
		home = v.admin.home
	}
	for _, tmpl := range strings.Fields(e.Get("authorizedkeysfile")) {
		p := expandKeysPath(tmpl, user, home, uid)
		if user == v.admin.user && p == path.Join(v.admin.home, ".ssh", "authorized_keys") {
			if len(v.admin.keys) > 0 {
				return ""
			}
			continue
		}
		if data, err := os.ReadFile(change.HostPath(v.f.root, p)); err == nil && len(host.ParseAuthorizedKeys(data)) > 0 {
			return ""
		}
	}
	return "no key in " + e.Get("authorizedkeysfile")
}

// methodsAllowKey reports whether AuthenticationMethods lets a key alone
// in: "any", or an alternative that is just publickey.
func methodsAllowKey(m string) bool {
	if m == "" || m == "any" {
		return true
	}
	for _, alt := range strings.Fields(m) {
		if alt == "publickey" {
			return true
		}
	}
	return false
}

// allowed applies sshd's Deny/Allow Users/Groups, in sshd's order, to a
// user (host parts of user@host patterns are not judged).
func (v *verifier) allowed(user string, e sshd.Effective) string {
	groups := v.f.groupsOf(user)
	if user == v.admin.user && !v.admin.exists {
		if sg, ok := v.f.sudoGroup(); ok {
			groups = append(groups, user, sg)
		}
	}
	matchUser := func(pats []string) bool {
		for _, p := range pats {
			p, _, _ = strings.Cut(p, "@")
			if ok, _ := path.Match(p, user); ok {
				return true
			}
		}
		return false
	}
	matchGroup := func(pats []string) bool {
		for _, p := range pats {
			for _, g := range groups {
				if ok, _ := path.Match(p, g); ok {
					return true
				}
			}
		}
		return false
	}
	if d := e.All("denyusers"); matchUser(d) {
		return "in DenyUsers"
	}
	if a := e.All("allowusers"); len(a) > 0 && !matchUser(a) {
		return "not in AllowUsers " + strings.Join(a, " ")
	}
	if d := e.All("denygroups"); matchGroup(d) {
		return "in a DenyGroups group"
	}
	if a := e.All("allowgroups"); len(a) > 0 && !matchGroup(a) {
		return "in none of AllowGroups " + strings.Join(a, " ")
	}
	return ""
}

// expandKeysPath expands sshd's AuthorizedKeysFile tokens.
func expandKeysPath(t, user, home string, uid int) string {
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		if t[i] != '%' || i+1 == len(t) {
			b.WriteByte(t[i])
			continue
		}
		i++
		switch t[i] {
		case '%':
			b.WriteByte('%')
		case 'h':
			b.WriteString(home)
		case 'u':
			b.WriteString(user)
		case 'U':
			b.WriteString(strconv.Itoa(uid))
		default:
			b.WriteByte('%')
			b.WriteByte(t[i])
		}
	}
	p := b.String()
	if !strings.HasPrefix(p, "/") {
		p = path.Join(home, p)
	}
	return p
}
