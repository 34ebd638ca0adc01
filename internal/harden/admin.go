package harden

import (
	"context"
	"fmt"
	"os/exec"
	"path"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/host"
)

// adminPlan is the admin user's step and what sshd's plan needs of it.
type adminPlan struct {
	step   *change.Step
	user   string   // "" when no admin is configured
	home   string   // as on the host
	keys   []string // key lines the user will have (existing and new)
	exists bool
}

// accountFiles are what useradd and usermod rewrite (with their "-"
// backups), and the mail spool useradd may create.
var accountFiles = []string{
	"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow",
	"/etc/passwd-", "/etc/shadow-", "/etc/group-", "/etc/gshadow-",
	"/etc/subuid", "/etc/subgid", "/etc/subuid-", "/etc/subgid-",
	"/etc/.pwd.lock", // lckpwdf(3) creates it
}

func planAdmin(f *facts, in Input) (*adminPlan, error) {
	a := &adminPlan{user: in.Host.Admin.User}
	if a.user == "" {
		return a, nil
	}
	st := &change.Step{Layer: "admin"}
	a.step = st
	sudo, ok := f.sudoGroup()
	if !ok {
		return nil, fmt.Errorf("no sudo or wheel group in %s: moat cannot give %s sudo (install sudo first)", change.HostPath(f.root, "/etc/group"), a.user)
	}
	u, exists := f.users[a.user]
	a.exists = exists
	a.home = "/home/" + a.user
	if exists {
		a.home = u.Home
	}
	var cmds [][]string
	prefix := []string{}
	if !f.live {
		prefix = []string{"--prefix", f.root}
	}
	switch {
	case !exists:
		st.Summary = append(st.Summary, fmt.Sprintf("create user %s (home %s, shell /bin/bash, group %s)", a.user, a.home, sudo))
		cmds = append(cmds, append(append([]string{"useradd"}, prefix...), "--create-home", "--home-dir", a.home, "--shell", "/bin/bash", "--user-group", "--groups", sudo, a.user))
		st.Touch = append(st.Touch, accountFiles...)
		st.Touch = append(st.Touch, "/var/mail/"+a.user)
		st.Dirs = append(st.Dirs, change.Dir{Path: a.home, Mode: 0o750, Owner: a.user})
	case !f.memberOf(a.user, sudo):
		st.Summary = append(st.Summary, fmt.Sprintf("add %s to group %s", a.user, sudo))
		cmds = append(cmds, append(append([]string{"usermod"}, prefix...), "--append", "--groups", sudo, a.user))
		st.Touch = append(st.Touch, accountFiles...)
	}

	// Keys: what the user has, plus those configured that are missing.
	akPath := path.Join(a.home, ".ssh", "authorized_keys")
	cur, err := change.ReadCurrent(f.root, akPath)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", akPath, err)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(cur), "\n") {
		if id := keyID(l); id != "" {
			have[id] = true
			a.keys = append(a.keys, strings.TrimSpace(l))
		}
	}
	var add []string
	for _, k := range in.Host.Admin.Keys {
		k = strings.TrimSpace(k)
		if id := keyID(k); id != "" && !have[id] {
			have[id] = true
			add = append(add, k)
		}
	}
	a.keys = append(a.keys, add...)
	if len(add) > 0 {
		data := string(cur)
		if data != "" && !strings.HasSuffix(data, "\n") {
			data += "\n"
		}
		if cur == nil {
			data = "# Keys installed by moat for " + a.user + " (host.admin.keys); add your own below.\n"
		}
		data += strings.Join(add, "\n") + "\n"
		sshDir := change.Dir{Path: path.Join(a.home, ".ssh"), Mode: 0o700, Owner: a.user}
		st.Dirs = append(st.Dirs, sshDir)
		st.Files = append(st.Files, change.File{Path: akPath, Data: []byte(data), Mode: 0o600, Owner: a.user})
		st.Summary = append(st.Summary, fmt.Sprintf("install %d key(s) in %s", len(add), akPath))
	}
	if len(a.keys) == 0 {
		st.Warnings = append(st.Warnings, fmt.Sprintf("%s has no SSH key and host.admin.keys lists none: add your public key there", a.user))
	}
	if (!exists || !usablePassword(u.Password)) && !noPasswdSudo(f.sudoers, a.user, sudo) {
		st.Warnings = append(st.Warnings, fmt.Sprintf("%s has no password, so sudo will refuse it: set one with `passwd %s` before you confirm, or keep a way in as root", a.user, a.user))
	}
	files := st.Files
	st.Apply = func(ctx context.Context, w *change.Writer) error {
		for _, argv := range cmds {
			if err := run(ctx, 30*time.Second, argv); err != nil {
				return err
			}
		}
		for _, d := range st.Dirs {
			if d.Path == a.home {
				continue // useradd made it, from /etc/skel
			}
			if err := w.Mkdir(d); err != nil {
				return err
			}
		}
		return w.WriteAll(files)
	}
	if len(st.Summary) == 0 {
		st.Summary = append(st.Summary, fmt.Sprintf("%s exists, is in %s and has its keys: nothing to do", a.user, sudo))
		st.Apply = nil
	}
	return a, nil
}

// keyID identifies an authorized_keys line by its key type and blob,
// whatever options precede it or comment follows; "" for other lines.
func keyID(line string) string {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return ""
	}
	keys := host.ParseAuthorizedKeys([]byte(line))
	if len(keys) == 0 {
		return ""
	}
	// The fingerprint names the key itself.
	return keys[0].Fingerprint
}

func usablePassword(p host.PasswordState) bool { return p.Kind == host.PasswordHash }

// noPasswdSudo reports whether a sudo rule lets user (or its group) run
// commands without a password.
func noPasswdSudo(rules []host.SudoRule, user, group string) bool {
	for _, r := range host.NoPasswdRules(rules) {
		f := strings.Fields(r.Text)
		if len(f) > 0 && (f[0] == user || f[0] == "%"+group) {
			return true
		}
	}
	return false
}

// run runs a command with a timeout; its output goes into the error.
func run(ctx context.Context, timeout time.Duration, argv []string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
