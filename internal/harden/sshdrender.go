package harden

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DropIn is moat's sshd drop-in. 00- sorts before every other drop-in,
// cloud-init's 50-cloud-init.conf included, and sshd keeps a keyword's
// first value.
const (
	DropInDir  = "/etc/ssh/sshd_config.d"
	DropIn     = DropInDir + "/00-moat.conf"
	MainConfig = "/etc/ssh/sshd_config"
)

// SSHDParams is everything the drop-in says.
type SSHDParams struct {
	Source string
	// Ports sshd listens on (old and new during a move).
	Ports []uint16
	// Listen limits sshd to these addresses (exposure vpn); empty: all.
	Listen          []netip.Addr
	Password        bool
	PermitRootLogin string // "no" or "prohibit-password"
	MaxAuthTries    int
	LoginGraceTime  time.Duration
	AllowUsers      []string
	AllowGroups     []string
	Kex             []string
	Ciphers         []string
	MACs            []string
	// Moving is set while the old port is kept: the file says so.
	Moving bool
}

// Preferred algorithms, strongest first. Only those the installed OpenSSH
// implements are written (sshd refuses to start on an unknown name).
var (
	preferredKex = []string{
		"mlkem768x25519-sha256",
		"sntrup761x25519-sha512",
		"sntrup761x25519-sha512@openssh.com",
		"curve25519-sha256",
		"curve25519-sha256@libssh.org",
		"diffie-hellman-group16-sha512",
		"diffie-hellman-group18-sha512",
		"diffie-hellman-group-exchange-sha256",
	}
	preferredCiphers = []string{
		"chacha20-poly1305@openssh.com",
		"aes256-gcm@openssh.com",
		"aes128-gcm@openssh.com",
		"aes256-ctr",
		"aes192-ctr",
		"aes128-ctr",
	}
	preferredMACs = []string{
		"hmac-sha2-512-etm@openssh.com",
		"hmac-sha2-256-etm@openssh.com",
		"umac-128-etm@openssh.com",
		"hmac-sha2-512",
		"hmac-sha2-256",
		"umac-128@openssh.com",
	}
)

// Algorithms picks, from what the installed OpenSSH supports (ssh -Q),
// the preferred algorithms in order: post-quantum hybrid key exchange
// first where available. A nil list means "unknown": that keyword is left
// to sshd's defaults.
func Algorithms(kex, ciphers, macs []string) (k, c, m []string) {
	pick := func(pref, have []string) []string {
		if have == nil {
			return nil
		}
		var out []string
		for _, p := range pref {
			if slices.Contains(have, p) {
				out = append(out, p)
			}
		}
		return out
	}
	return pick(preferredKex, kex), pick(preferredCiphers, ciphers), pick(preferredMACs, macs)
}

// RenderSSHD returns the drop-in's text.
func RenderSSHD(p SSHDParams) string {
	var b strings.Builder
	b.WriteString(header(p.Source,
		"sshd reads this file first: 00- sorts before every other drop-in (cloud-init's",
		"50-cloud-init.conf too) and sshd keeps the first value of each keyword. The",
		"Match all block at the end re-asserts the login rules, so that a Match block",
		"elsewhere cannot loosen them for some users or addresses."))
	b.WriteString("\n")
	if p.Moving {
		b.WriteString("# Moving sshd's port: the old port stays open until moat confirm.\n")
	}
	for _, port := range p.Ports {
		fmt.Fprintf(&b, "Port %d\n", port)
	}
	if len(p.Listen) > 0 {
		b.WriteString("# ssh.exposure is vpn: listen on the VPN addresses only.\n")
		for _, a := range p.Listen {
			fmt.Fprintf(&b, "ListenAddress %s\n", listenAddr(a))
		}
	}
	b.WriteString("\n")
	rules := loginRules(p)
	for _, kv := range rules {
		fmt.Fprintf(&b, "%s %s\n", kv[0], kv[1])
	}
	b.WriteString("PubkeyAuthentication yes\n")
	fmt.Fprintf(&b, "LoginGraceTime %d\n", int(p.LoginGraceTime/time.Second))
	b.WriteString("LogLevel VERBOSE\n")
	if len(p.Kex) > 0 {
		b.WriteString("\n# Post-quantum hybrid key exchange first where this OpenSSH has it.\n")
		fmt.Fprintf(&b, "KexAlgorithms %s\n", strings.Join(p.Kex, ","))
	}
	if len(p.Ciphers) > 0 {
		if len(p.Kex) == 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Ciphers %s\n", strings.Join(p.Ciphers, ","))
	}
	if len(p.MACs) > 0 {
		fmt.Fprintf(&b, "MACs %s\n", strings.Join(p.MACs, ","))
	}
	b.WriteString("\nMatch all\n")
	for _, kv := range rules {
		fmt.Fprintf(&b, "\t%s %s\n", kv[0], kv[1])
	}
	return b.String()
}

// loginRules are the keywords repeated in the Match all block.
func loginRules(p SSHDParams) [][2]string {
	yesno := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	root := p.PermitRootLogin
	if root == "" {
		root = "no"
	}
	r := [][2]string{
		{"PasswordAuthentication", yesno(p.Password)},
		{"KbdInteractiveAuthentication", "no"},
		{"PermitEmptyPasswords", "no"},
		{"PermitRootLogin", root},
		{"MaxAuthTries", strconv.Itoa(p.MaxAuthTries)},
		{"X11Forwarding", "no"},
	}
	if len(p.AllowUsers) > 0 {
		r = append(r, [2]string{"AllowUsers", strings.Join(p.AllowUsers, " ")})
	}
	if len(p.AllowGroups) > 0 {
		r = append(r, [2]string{"AllowGroups", strings.Join(p.AllowGroups, " ")})
	}
	return r
}

func listenAddr(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// MainFix is what FixMainConfig changed.
type MainFix struct {
	Data  []byte
	Notes []string
}

// FixMainConfig makes the main sshd_config include the drop-in directory
// before anything else and comments out its global Port and ListenAddress
// lines: sshd adds those up across files instead of keeping the first, so
// a Port in the main file would keep the old port open whatever the
// drop-in says. Other lines are kept byte for byte.
func FixMainConfig(data []byte) MainFix {
	var fix MainFix
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	firstDirective := -1
	includeAt := -1
	inMatch := false
	out := make([]string, 0, len(lines)+2)
	for _, l := range lines {
		kw, args := splitDirective(l)
		switch {
		case kw == "":
		case strings.EqualFold(kw, "match"):
			inMatch = true
		case !inMatch && strings.EqualFold(kw, "include") && includesDropIn(args):
			if includeAt < 0 {
				includeAt = len(out)
			}
		case !inMatch && (strings.EqualFold(kw, "port") || strings.EqualFold(kw, "listenaddress")):
			fix.Notes = append(fix.Notes, fmt.Sprintf("%s: comment out %q (ports and addresses are set in %s)", MainConfig, strings.TrimSpace(l), DropIn))
			l = "#" + strings.TrimRight(l, "\n") + "  # moat: see " + DropIn + "\n"
			kw = ""
		}
		if kw != "" && firstDirective < 0 {
			firstDirective = len(out)
		}
		out = append(out, l)
	}
	include := "Include " + DropInDir + "/*.conf\n"
	switch {
	case includeAt >= 0 && (firstDirective < 0 || includeAt <= firstDirective):
		// In place already.
	case includeAt >= 0:
		line := out[includeAt]
		out = slices.Delete(out, includeAt, includeAt+1)
		out = slices.Insert(out, firstDirective, ensureNL(line))
		fix.Notes = append(fix.Notes, fmt.Sprintf("%s: move the Include of %s to the top: after other keywords, the main file's values won over every drop-in", MainConfig, DropInDir))
	default:
		at := firstDirective
		if at < 0 {
			at = len(out)
		}
		out = slices.Insert(out, at, "# Added by moat: drop-ins first, so that sshd_config.d/00-moat.conf wins.\n", include)
		if at < len(out)-2 {
			out = slices.Insert(out, at+2, "\n")
		}
		fix.Notes = append(fix.Notes, fmt.Sprintf("%s: add %q at the top: the main file did not read the drop-in directory", MainConfig, strings.TrimSpace(include)))
	}
	fix.Data = []byte(strings.Join(out, ""))
	return fix
}

// CommentListenLines comments out the Port and ListenAddress lines of an
// included file other than moat's (outside Match blocks, where sshd does
// not allow them anyway).
func CommentListenLines(file string, data []byte) ([]byte, []string) {
	var notes []string
	lines := strings.SplitAfter(string(data), "\n")
	for i, l := range lines {
		kw, _ := splitDirective(l)
		if strings.EqualFold(kw, "port") || strings.EqualFold(kw, "listenaddress") {
			notes = append(notes, fmt.Sprintf("%s: comment out %q (ports and addresses are set in %s)", file, strings.TrimSpace(l), DropIn))
			lines[i] = "#" + strings.TrimRight(l, "\n") + "  # moat: see " + DropIn + "\n"
			if !strings.HasSuffix(l, "\n") {
				lines[i] = strings.TrimSuffix(lines[i], "\n")
			}
		}
	}
	return []byte(strings.Join(lines, "")), notes
}

func ensureNL(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

// splitDirective returns a config line's keyword and the rest, "" for
// blank lines and comments. sshd also accepts "Keyword=value".
func splitDirective(line string) (kw, args string) {
	s := strings.TrimSpace(line)
	if s == "" || strings.HasPrefix(s, "#") {
		return "", ""
	}
	i := strings.IndexAny(s, " \t=")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t=")
}

// includesDropIn reports whether an Include's patterns match moat's
// drop-in, as sshd resolves them (relative to /etc/ssh).
func includesDropIn(args string) bool {
	for _, p := range includeArgs(args) {
		if !strings.HasPrefix(p, "/") {
			p = "/etc/ssh/" + p
		}
		if ok, _ := path.Match(path.Clean(p), DropIn); ok {
			return true
		}
	}
	return false
}

// includeArgs splits an Include's arguments, honouring double quotes.
func includeArgs(args string) []string {
	var out []string
	for args = strings.TrimSpace(args); args != ""; args = strings.TrimSpace(args) {
		if args[0] == '"' {
			end := strings.IndexByte(args[1:], '"')
			if end < 0 {
				out = append(out, args[1:])
				break
			}
			out = append(out, args[1:1+end])
			args = args[2+end:]
			continue
		}
		i := strings.IndexAny(args, " \t")
		if i < 0 {
			out = append(out, args)
			break
		}
		out = append(out, args[:i])
		args = args[i:]
	}
	return out
}
