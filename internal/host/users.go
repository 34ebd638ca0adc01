package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// User is an account from <root>/etc/passwd, with what /etc/shadow and
// its authorized_keys files say about how it can log in.
type User struct {
	Name  string
	UID   int
	GID   int
	Home  string
	Shell string
	// LoginShell is false for nologin, false, sync, shutdown, halt and
	// shells that are neither in /etc/shells nor present on disk. sshd
	// does not consult /etc/shells, so an unlisted shell that exists
	// still counts.
	LoginShell     bool
	Password       PasswordState
	AuthorizedKeys []KeyFile // ~/.ssh/authorized_keys and authorized_keys2 that exist
}

// PasswordKind classifies a password field.
type PasswordKind string

// Password kinds.
const (
	PasswordUnknown PasswordKind = "unknown" // /etc/shadow unreadable (not root)
	PasswordNone    PasswordKind = "none"    // "*", "!", "!!", no shadow entry…: no password can match
	PasswordLocked  PasswordKind = "locked"  // "!" before a hash: a password is set but locked
	PasswordEmpty   PasswordKind = "empty"   // "": no password needed at all
	PasswordHash    PasswordKind = "hash"    // a usable hash, see Scheme
)

// PasswordState is what the password field of a user holds.
type PasswordState struct {
	Kind PasswordKind
	// Scheme names the hash of a hash or locked password: yescrypt,
	// gost-yescrypt, scrypt, sha512, sha256, md5, bcrypt, des, bsdi or
	// unknown.
	Scheme string
}

// nonLoginShells are shells that end a session instead of starting one.
var nonLoginShells = map[string]bool{
	"nologin": true, "false": true, "sync": true, "shutdown": true, "halt": true,
}

// Users reads the accounts in <root>/etc/passwd with their password state
// and authorized keys. A failure to read /etc/passwd is fatal. Failures to
// read /etc/shadow or a key file are not: Users still returns every user
// (passwords then PasswordUnknown) together with an error joining those
// failures, each matching errors.Is(err, fs.ErrPermission) when the cause
// is not being root.
func (h *Host) Users() ([]User, error) {
	b, err := h.ReadFile("/etc/passwd")
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	var errs []error
	shadow, err := h.ReadFile("/etc/shadow")
	if err != nil {
		errs = append(errs, fmt.Errorf("users: passwords unknown: %w", err))
		shadow = nil
	}
	shadowPw := map[string]string{}
	for _, line := range strings.Split(string(shadow), "\n") {
		if name, rest, ok := strings.Cut(line, ":"); ok && name != "" {
			pw, _, _ := strings.Cut(rest, ":")
			shadowPw[name] = pw
		}
	}
	var shells map[string]bool
	if sb, err := h.ReadFile("/etc/shells"); err == nil {
		shells = map[string]bool{}
		for _, l := range strings.Split(string(sb), "\n") {
			if l = strings.TrimSpace(l); l != "" && l[0] == '/' {
				shells[l] = true
			}
		}
	}

	var users []User
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) != 7 || f[0] == "" || f[0][0] == '#' || f[0][0] == '+' || f[0][0] == '-' {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		u := User{Name: f[0], UID: uid, GID: gid, Home: f[5], Shell: f[6]}
		u.LoginShell = h.loginShell(u.Shell, shells)
		switch {
		case f[1] != "x":
			u.Password = ParsePassword(f[1]) // a hash right in passwd
		case shadow == nil:
			u.Password = PasswordState{Kind: PasswordUnknown}
		default:
			pw, ok := shadowPw[u.Name]
			if !ok {
				pw = "x" // no shadow entry: nothing can match
			}
			u.Password = ParsePassword(pw)
		}
		if u.Home != "" {
			for _, name := range []string{".ssh/authorized_keys", ".ssh/authorized_keys2"} {
				kf, err := h.ReadKeyFile(filepath.Join(u.Home, name))
				switch {
				case err == nil:
					u.AuthorizedKeys = append(u.AuthorizedKeys, kf)
				case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
				default:
					errs = append(errs, fmt.Errorf("users: %s: %w", u.Name, err))
				}
			}
		}
		users = append(users, u)
	}
	return users, errors.Join(errs...)
}

func (h *Host) loginShell(shell string, listed map[string]bool) bool {
	if shell == "" {
		shell = "/bin/sh" // passwd(5): an empty shell means /bin/sh
	}
	if nonLoginShells[filepath.Base(shell)] {
		return false
	}
	if listed[shell] {
		return true
	}
	fi, err := os.Stat(h.Path(shell))
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// ParsePassword classifies the password field of /etc/shadow (or of
// /etc/passwd when it holds a hash itself).
func ParsePassword(field string) PasswordState {
	switch {
	case field == "":
		return PasswordState{Kind: PasswordEmpty}
	case field[0] == '!':
		rest := strings.TrimLeft(field, "!")
		if s := hashScheme(rest); s != "" {
			return PasswordState{Kind: PasswordLocked, Scheme: s}
		}
		return PasswordState{Kind: PasswordNone}
	}
	if s := hashScheme(field); s != "" {
		return PasswordState{Kind: PasswordHash, Scheme: s}
	}
	return PasswordState{Kind: PasswordNone} // "*", "x", "*LK*": crypt(3) can never produce these
}

// hashScheme names the crypt(3) scheme of a hash, or "" if h cannot be a
// hash at all.
func hashScheme(h string) string {
	if strings.HasPrefix(h, "$") {
		id, _, ok := strings.Cut(h[1:], "$")
		if !ok {
			return ""
		}
		switch id {
		case "y":
			return "yescrypt"
		case "gy":
			return "gost-yescrypt"
		case "7":
			return "scrypt"
		case "6":
			return "sha512"
		case "5":
			return "sha256"
		case "1":
			return "md5"
		case "2", "2a", "2b", "2x", "2y":
			return "bcrypt"
		}
		return "unknown"
	}
	if len(h) == 20 && h[0] == '_' && isCryptSalt(h[1:]) {
		return "bsdi"
	}
	if len(h) == 13 && isCryptSalt(h) {
		return "des"
	}
	return ""
}

func isCryptSalt(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '/' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// Group is an entry of <root>/etc/group. Members lists supplementary
// members only: users whose primary GID is the group are not in it.
type Group struct {
	Name    string
	GID     int
	Members []string
}

// Groups reads <root>/etc/group, keyed by group name.
func (h *Host) Groups() (map[string]Group, error) {
	b, err := h.ReadFile("/etc/group")
	if err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	out := map[string]Group{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) != 4 || f[0] == "" || f[0][0] == '#' || f[0][0] == '+' || f[0][0] == '-' {
			continue
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		g := Group{Name: f[0], GID: gid}
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				g.Members = append(g.Members, m)
			}
		}
		if _, dup := out[g.Name]; !dup {
			out[g.Name] = g // like getgrnam, the first entry wins
		}
	}
	return out, nil
}
