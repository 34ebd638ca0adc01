package lab

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshdPath is absolute: sshd re-executes itself for each connection.
const sshdPath = "/usr/sbin/sshd"

// SSHUser is an account that exists only inside one host.
type SSHUser struct {
	Name string
	// UID is also the primary GID; 0 picks an unused one from 30000 up.
	UID int
	// Password in clear; empty means password login is impossible.
	Password string
	// AuthorizedKeys are authorized_keys lines, e.g. from GenerateKey.
	AuthorizedKeys []string
	// Shell defaults to /bin/sh.
	Shell string
	// Groups are supplementary groups: an existing group of the machine
	// gets the user as a member (in the host's copy of /etc/group only),
	// any other is created with a free GID.
	Groups []string
}

// SSHDOptions configure StartSSHD.
type SSHDOptions struct {
	Port int // default 22
	// ExtraConfig holds sshd_config lines. They win over the lab's defaults
	// (sshd takes a keyword's first value); Match blocks are moved after them.
	// Set the port with Port, not here: Port lines add up.
	ExtraConfig string
	Users       []SSHUser
	// LogFile is where sshd logs (sshd -E); default a file in a temp dir.
	// Its lines are sshd's bare messages, e.g. "Failed password for bob from
	// 198.51.100.2 port 40000 ssh2".
	LogFile string
	// SyslogFormat writes LogFile as /var/log/auth.log has it instead:
	// "Jan  2 15:04:05 vps sshd[1234]: Failed password ...", with the pid of
	// the listening sshd on every line.
	SyslogFormat bool
}

// SSHD is a real sshd running inside a host.
type SSHD struct {
	Port    int
	LogPath string
	// Config is the sshd_config sshd was started with.
	Config  string
	HostKey ssh.PublicKey
	Proc    *Proc
}

// Addr joins ip (one of the host's addresses) with the sshd's port.
func (s *SSHD) Addr(ip string) string { return net.JoinHostPort(ip, strconv.Itoa(s.Port)) }

// Log returns what sshd has logged so far.
func (s *SSHD) Log() string {
	b, _ := os.ReadFile(s.LogPath)
	return string(b)
}

// Stop stops the listening sshd. Sessions in progress live on until their
// connection ends, as on a real restart; the lab's end kills them too.
func (s *SSHD) Stop() { s.Proc.Stop() }

// sshUser is an SSHUser ready for the account files.
type sshUser struct {
	SSHUser
	home, hash string
}

// StartSSHD runs /usr/sbin/sshd -D inside h with a generated config and host
// key and the given users, and returns once it listens. Users are written to
// /etc/netns/<ns>/{passwd,group,shadow}: copies of the machine's files plus
// the test users, seen by every process `ip netns exec` starts in h. They
// accumulate over StartSSHD calls on the same host.
func (h *Host) StartSSHD(t testing.TB, opts SSHDOptions) *SSHD {
	t.Helper()
	RequireTool(t, sshdPath)
	for _, u := range opts.Users {
		if u.Password != "" {
			RequireTool(t, "openssl")
			break
		}
	}
	if opts.Port == 0 {
		opts.Port = 22
	}
	dir := t.TempDir()
	if opts.LogFile == "" {
		opts.LogFile = filepath.Join(dir, "sshd.log")
	}
	if err := h.addUsers(t, opts.Users); err != nil {
		t.Fatalf("lab: sshd users on host %s: %v", h.name, err)
	}
	// Debian's sshd refuses to start without its privilege separation dir.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("lab: %v", err)
	}
	pub, keyPath, err := writeHostKey(dir)
	if err != nil {
		t.Fatalf("lab: sshd host key: %v", err)
	}
	cfg := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(renderSSHDConfig(opts.Port, keyPath, opts.ExtraConfig)), 0o600); err != nil {
		t.Fatalf("lab: %v", err)
	}
	var p *Proc
	if opts.SyslogFormat {
		p = h.startSyslogSSHD(t, cfg, opts.LogFile)
	} else {
		p = h.start(t, nil, sshdPath, "-D", "-f", cfg, "-E", opts.LogFile)
	}
	s := &SSHD{Port: opts.Port, LogPath: opts.LogFile, Config: cfg, HostKey: pub, Proc: p}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lab: sshd log of host %s:\n%s", h.name, tail(s.Log(), outputShown))
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	go func() { // a dying sshd ends the wait at once
		select {
		case <-p.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := h.WaitListen(ctx, "tcp", opts.Port); err != nil {
		select {
		case <-p.Done():
			err = fmt.Errorf("sshd exited: %w", p.Wait())
		default:
		}
		t.Fatalf("lab: sshd on host %s did not start (its log follows): %v", h.name, err)
	}
	return s
}

// startSyslogSSHD runs sshd logging to stderr, which a goroutine copies to
// logPath with syslog's prefix. The goroutine ends when the last sshd process
// (sessions included) has exited, at the latest when the lab ends.
func (h *Host) startSyslogSSHD(t testing.TB, cfg, logPath string) *Proc {
	t.Helper()
	out, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("lab: sshd log: %v", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		out.Close()
		t.Fatalf("lab: %v", err)
	}
	p := h.start(t, pw, sshdPath, "-D", "-e", "-f", cfg)
	pw.Close() // sshd holds its own copy
	prefix := fmt.Sprintf(" %s sshd[%d]: ", h.name, p.Pid())
	go func() {
		defer out.Close()
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			// One write per line: a reader tailing the file sees whole lines.
			out.WriteString(time.Now().Format(time.Stamp) + prefix + sc.Text() + "\n")
		}
	}()
	return p
}

// renderSSHDConfig puts extra first so its keywords win, except Match blocks,
// which must come last.
func renderSSHDConfig(port int, hostKey, extra string) string {
	var head, match strings.Builder
	inMatch := false
	for line := range strings.Lines(extra) {
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], "Match") {
			inMatch = true
		}
		line = strings.TrimRight(line, "\r\n") + "\n"
		if inMatch {
			match.WriteString(line)
		} else {
			head.WriteString(line)
		}
	}
	var b strings.Builder
	b.WriteString("# sshd_config generated by moat's test lab\n")
	b.WriteString(head.String())
	fmt.Fprintf(&b, "Port %d\nHostKey %s\n", port, hostKey)
	b.WriteString(`PidFile none
UsePAM no
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
StrictModes yes
UseDNS no
X11Forwarding no
PrintMotd no
`)
	b.WriteString(match.String())
	return b.String()
}

func writeHostKey(dir string) (ssh.PublicKey, string, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "moat lab host key")
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, "", err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	return sshPub, path, err
}

// addUsers creates homes and rewrites h's account files with all its users.
// The files are rewritten in place, so processes already running in h see
// the new users too (their bind mounts point at the same inodes).
func (h *Host) addUsers(t testing.TB, users []SSHUser) error {
	if len(users) == 0 && h.users != nil {
		return nil
	}
	hostUIDs, err := usedIDs("/etc/passwd")
	if err != nil {
		return err
	}
	if h.users == nil {
		h.users = map[string]sshUser{}
	}
	var homes string
	for _, u := range users {
		if u.Name == "" || strings.ContainsAny(u.Name, ":\n/ ") {
			return fmt.Errorf("user name %q", u.Name)
		}
		if u.Shell == "" {
			u.Shell = "/bin/sh"
		}
		if u.UID == 0 {
			u.UID = freeID(hostUIDs, h.users)
		}
		hash := "*" // no password; not "!": that locks the account for key logins too
		if u.Password != "" {
			if hash, err = hashPassword(u.Password); err != nil {
				return err
			}
		}
		if homes == "" {
			if homes, err = homesDir(t); err != nil {
				return err
			}
		}
		home := filepath.Join(homes, u.Name)
		if err := makeHome(home, u.UID, u.AuthorizedKeys); err != nil {
			return fmt.Errorf("home of %s: %w", u.Name, err)
		}
		h.users[u.Name] = sshUser{SSHUser: u, home: home, hash: hash}
	}
	return h.writeAccounts()
}

// AccountFile is the path of h's own copy of /etc/passwd, /etc/group or
// /etc/shadow (name "passwd", "group", "shadow"), which processes started
// in h see in place of the machine's; "" before any SSHD added users.
func (h *Host) AccountFile(name string) string {
	if h.users == nil {
		return ""
	}
	return filepath.Join(etcNetns, h.ns, name)
}

// groupLines appends the users' supplementary groups to the machine's
// /etc/group lines: members added to groups that exist, new groups
// (GIDs from 31000 up) for the others.
func (h *Host) groupLines(lines []string) []string {
	members := map[string][]string{}
	var order []string
	for _, name := range slices.Sorted(maps.Keys(h.users)) {
		for _, g := range h.users[name].Groups {
			if _, ok := members[g]; !ok {
				order = append(order, g)
			}
			members[g] = append(members[g], name)
		}
	}
	used := map[int]bool{}
	for i, l := range lines {
		f := strings.Split(l, ":")
		if len(f) != 4 {
			continue
		}
		if gid, err := strconv.Atoi(f[2]); err == nil {
			used[gid] = true
		}
		if m, ok := members[f[0]]; ok {
			all := slices.DeleteFunc(strings.Split(f[3], ","), func(s string) bool { return s == "" })
			lines[i] = strings.Join(f[:3], ":") + ":" + strings.Join(append(all, m...), ",")
			delete(members, f[0])
		}
	}
	for _, u := range h.users {
		used[u.UID] = true
	}
	gid := 31000
	for _, g := range order {
		m, ok := members[g]
		if !ok {
			continue
		}
		for used[gid] {
			gid++
		}
		used[gid] = true
		lines = append(lines, fmt.Sprintf("%s:x:%d:%s", g, gid, strings.Join(m, ",")))
	}
	return lines
}

func (h *Host) writeAccounts() error {
	dir := filepath.Join(etcNetns, h.ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	day := time.Now().Unix() / 86400 // last change today: 0 would force a password change
	for _, f := range []struct {
		name string
		mode os.FileMode
		line func(sshUser) string
	}{
		{"passwd", 0o644, func(u sshUser) string {
			return fmt.Sprintf("%s:x:%d:%d:moat lab user:%s:%s", u.Name, u.UID, u.UID, u.home, u.Shell)
		}},
		{"group", 0o644, func(u sshUser) string { return fmt.Sprintf("%s:x:%d:", u.Name, u.UID) }},
		{"shadow", 0o600, func(u sshUser) string { return fmt.Sprintf("%s:%s:%d:0:99999:7:::", u.Name, u.hash, day) }},
	} {
		base, err := os.ReadFile(filepath.Join("/etc", f.name))
		if err != nil {
			return err
		}
		var lines []string
		for line := range strings.Lines(string(base)) {
			if name, _, _ := strings.Cut(line, ":"); h.users[name].Name == "" {
				lines = append(lines, strings.TrimRight(line, "\n"))
			}
		}
		for _, name := range slices.Sorted(maps.Keys(h.users)) {
			lines = append(lines, f.line(h.users[name]))
		}
		if f.name == "group" {
			lines = h.groupLines(lines)
		}
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(b.String()), f.mode); err != nil {
			return err
		}
	}
	return nil
}

// homesDir makes the parent of the test users' homes. Not t.TempDir: that
// is root-only (0700), and sshd reads authorized_keys as the user, who must
// be able to walk the path down to it.
func homesDir(t testing.TB) (string, error) {
	d, err := os.MkdirTemp("", tempPrefix(owner.token)+"homes-")
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d, os.Chmod(d, 0o755)
}

// makeHome lays out a home with modes sshd's StrictModes accepts.
func makeHome(home string, uid int, keys []string) error {
	ssh := filepath.Join(home, ".ssh")
	if err := os.MkdirAll(ssh, 0o700); err != nil {
		return err
	}
	ak := filepath.Join(ssh, "authorized_keys")
	if err := os.WriteFile(ak, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	for _, p := range []string{home, ssh, ak} {
		if err := os.Chown(p, uid, uid); err != nil {
			return err
		}
	}
	return os.Chmod(home, 0o755)
}

// hashPassword makes a SHA-512 crypt hash for shadow; openssl does it
// without cgo, reading the password from stdin.
func hashPassword(pw string) (string, error) {
	path, err := lookTool("openssl")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(path, "passwd", "-6", "-stdin")
	cmd.Stdin = strings.NewReader(pw + "\n")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("openssl passwd: %w", err)
	}
	hash := strings.TrimSpace(string(out))
	if !strings.HasPrefix(hash, "$6$") {
		return "", fmt.Errorf("openssl passwd: unexpected output %q", hash)
	}
	return hash, nil
}

func usedIDs(passwd string) (map[int]bool, error) {
	f, err := os.Open(passwd)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ids := map[int]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Split(sc.Text(), ":"); len(f) > 3 {
			if id, err := strconv.Atoi(f[2]); err == nil {
				ids[id] = true
			}
			if id, err := strconv.Atoi(f[3]); err == nil {
				ids[id] = true
			}
		}
	}
	return ids, sc.Err()
}

func freeID(used map[int]bool, users map[string]sshUser) int {
	taken := func(id int) bool {
		for _, u := range users {
			if u.UID == id {
				return true
			}
		}
		return used[id]
	}
	id := 30000
	for taken(id) {
		id++
	}
	return id
}
