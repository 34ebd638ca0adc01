package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// htpasswd is a parsed bcrypt htpasswd file.
type htpasswd struct {
	users map[string][]byte
	cost  int // the highest cost in the file
}

// maxHtpasswdBytes bounds the file read: a user list, not a database.
const maxHtpasswdBytes = 1 << 20

// parseHtpasswd reads "user:hash" lines as written by `htpasswd -B`.
// Blank lines and lines starting with # are skipped. Only bcrypt hashes
// ($2a$, $2b$, $2y$) are accepted: MD5-crypt, SHA1 and plain text entries
// are refused, with their line, rather than silently never matching.
func parseHtpasswd(data []byte) (*htpasswd, error) {
	if len(data) > maxHtpasswdBytes {
		return nil, fmt.Errorf("htpasswd file is larger than %d bytes", maxHtpasswdBytes)
	}
	h := &htpasswd{users: map[string][]byte{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxHtpasswdBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: expected user:bcrypt-hash", n)
		}
		if !validUser(user) {
			return nil, fmt.Errorf("line %d: user name has a control character", n)
		}
		if _, dup := h.users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q is listed twice", n, user)
		}
		if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$") {
			return nil, fmt.Errorf("line %d: user %q: only bcrypt hashes are accepted (create them with htpasswd -B)", n, user)
		}
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil || len(hash) != 60 {
			return nil, fmt.Errorf("line %d: user %q: malformed bcrypt hash", n, user)
		}
		h.users[user] = []byte(hash)
		h.cost = max(h.cost, cost)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read htpasswd: %w", err)
	}
	if len(h.users) == 0 {
		return nil, fmt.Errorf("htpasswd file has no users")
	}
	return h, nil
}

func validUser(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}
