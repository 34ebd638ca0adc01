package gateway

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// htpasswd is a parsed htpasswd file.
type htpasswd struct {
	users map[string]credential
	cost  int      // the highest bcrypt cost in the file (0: none)
	weak  []string // users whose entries are weaker than bcrypt
}

// credential is one user's stored hash, in one of the schemes read.
type credential struct {
	scheme string // "bcrypt", "shacrypt", "apr1" or "sha"
	hash   []byte
}

// maxHtpasswdBytes bounds the file read: a user list, not a database.
const maxHtpasswdBytes = 1 << 20

// parseHtpasswd reads "user:hash" lines as written by Apache's htpasswd.
// Blank lines and lines starting with # are skipped. bcrypt ($2a$, $2b$,
// $2y$, htpasswd -B) is the scheme to use; SHA-crypt ($5$, $6$: htpasswd
// -2, -5), MD5-crypt ($apr1$, htpasswd's old default, still nginx's
// usual) and {SHA} (htpasswd -s) are read too,
// so a file carried over from nginx works, and are listed in weak for a
// warning. DES crypt (htpasswd -d: only the first 8 characters count) and
// plain text are refused, with their line, rather than silently never
// matching.
func parseHtpasswd(data []byte) (*htpasswd, error) {
	if len(data) > maxHtpasswdBytes {
		return nil, fmt.Errorf("htpasswd file is larger than %d bytes", maxHtpasswdBytes)
	}
	h := &htpasswd{users: map[string]credential{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxHtpasswdBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: expected user:hash", n)
		}
		if !validUser(user) {
			return nil, fmt.Errorf("line %d: user name has a control character", n)
		}
		if _, dup := h.users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q is listed twice", n, user)
		}
		switch {
		case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
			cost, err := bcrypt.Cost([]byte(hash))
			if err != nil || len(hash) != 60 {
				return nil, fmt.Errorf("line %d: user %q: malformed bcrypt hash", n, user)
			}
			h.users[user] = credential{"bcrypt", []byte(hash)}
			h.cost = max(h.cost, cost)
		case strings.HasPrefix(hash, "$apr1$"):
			salt, sum, ok := strings.Cut(hash[len("$apr1$"):], "$")
			if !ok || salt == "" || len(salt) > 8 || len(sum) != 22 {
				return nil, fmt.Errorf("line %d: user %q: malformed $apr1$ hash", n, user)
			}
			h.users[user] = credential{"apr1", []byte(hash)}
			h.weak = append(h.weak, user)
		case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
			if _, _, _, _, err := parseSHACrypt(hash); err != nil {
				return nil, fmt.Errorf("line %d: user %q: %v", n, user, err)
			}
			h.users[user] = credential{"shacrypt", []byte(hash)}
			h.weak = append(h.weak, user)
		case strings.HasPrefix(hash, "{SHA}"):
			if sum, err := base64.StdEncoding.DecodeString(hash[len("{SHA}"):]); err != nil || len(sum) != sha1.Size {
				return nil, fmt.Errorf("line %d: user %q: malformed {SHA} hash", n, user)
			}
			h.users[user] = credential{"sha", []byte(hash)}
			h.weak = append(h.weak, user)
		default:
			return nil, fmt.Errorf("line %d: user %q: only bcrypt, SHA-crypt ($5$, $6$), $apr1$ and {SHA} entries are read (not DES crypt or plain text): recreate the entry with htpasswd -B", n, user)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read htpasswd: %w", err)
	}
	if len(h.users) == 0 {
		return nil, fmt.Errorf("htpasswd file has no users")
	}
	return h, nil
}

// verify reports whether pass matches c, in constant time for the fast
// schemes (bcrypt's own comparison is constant-time).
func (c credential) verify(pass []byte) bool {
	switch c.scheme {
	case "bcrypt":
		return bcrypt.CompareHashAndPassword(c.hash, pass) == nil
	case "apr1":
		salt, _, _ := strings.Cut(string(c.hash[len("$apr1$"):]), "$")
		return subtle.ConstantTimeCompare(apr1(pass, []byte(salt)), c.hash) == 1
	case "shacrypt":
		magic, rounds, explicit, salt, err := parseSHACrypt(string(c.hash))
		if err != nil {
			return false
		}
		return subtle.ConstantTimeCompare(shaCrypt(magic, rounds, explicit, salt, pass), c.hash) == 1
	case "sha":
		sum := sha1.Sum(pass)
		want := "{SHA}" + base64.StdEncoding.EncodeToString(sum[:])
		return subtle.ConstantTimeCompare([]byte(want), c.hash) == 1
	}
	return false
}

// apr1 is Apache's MD5-crypt ("$apr1$salt$hash"): PHK's md5crypt with
// Apache's magic string.
func apr1(pass, salt []byte) []byte {
	const magic = "$apr1$"
	ctx := md5.New()
	ctx.Write(pass)
	ctx.Write([]byte(magic))
	ctx.Write(salt)
	alt := md5.New()
	alt.Write(pass)
	alt.Write(salt)
	alt.Write(pass)
	sum := alt.Sum(nil)
	for i := len(pass); i > 0; i -= 16 {
		ctx.Write(sum[:min(16, i)])
	}
	for i := len(pass); i > 0; i >>= 1 {
		if i&1 != 0 {
			ctx.Write([]byte{0})
		} else {
			ctx.Write(pass[:1])
		}
	}
	final := ctx.Sum(nil)
	for i := range 1000 {
		c := md5.New()
		if i&1 != 0 {
			c.Write(pass)
		} else {
			c.Write(final)
		}
		if i%3 != 0 {
			c.Write(salt)
		}
		if i%7 != 0 {
			c.Write(pass)
		}
		if i&1 != 0 {
			c.Write(final)
		} else {
			c.Write(pass)
		}
		final = c.Sum(nil)
	}
	const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := append([]byte(magic), salt...)
	out = append(out, '$')
	to64 := func(v uint32, n int) {
		for ; n > 0; n-- {
			out = append(out, itoa64[v&0x3f])
			v >>= 6
		}
	}
	b := func(i int) uint32 { return uint32(final[i]) }
	to64(b(0)<<16|b(6)<<8|b(12), 4)
	to64(b(1)<<16|b(7)<<8|b(13), 4)
	to64(b(2)<<16|b(8)<<8|b(14), 4)
	to64(b(3)<<16|b(9)<<8|b(15), 4)
	to64(b(4)<<16|b(10)<<8|b(5), 4)
	to64(b(11), 2)
	return out
}

func validUser(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}
