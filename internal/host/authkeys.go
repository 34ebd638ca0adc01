package host

import (
	"bytes"
	//lint:ignore SA1019 deprecated, but hosts still carry DSA keys to measure
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// KeyFile is an authorized_keys file and the keys sshd would accept from
// it.
type KeyFile struct {
	Path  string      // path on the host, without the root prefix
	Mode  fs.FileMode // of the file itself (symlinks followed, as sshd does)
	Owner int         // owning UID
	Keys  []AuthorizedKey
}

// AuthorizedKey is one key line of an authorized_keys file.
type AuthorizedKey struct {
	Line        int
	Type        string // ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, sk-…, …-cert-v01@openssh.com
	Bits        int    // key size: RSA modulus, ECDSA curve, 256 for Ed25519; 0 if not measurable
	Comment     string
	Options     string // the options prefix as written (from="…",command="…"), "" if none
	Fingerprint string // SHA256:… as ssh-keygen -l prints it
}

// maxKeyFile bounds how much of an authorized_keys file is read.
const maxKeyFile = 4 << 20

// ReadKeyFile reads and parses the authorized_keys file p on the host.
func (h *Host) ReadKeyFile(p string) (KeyFile, error) {
	f, err := os.Open(h.Path(p))
	if err != nil {
		return KeyFile{}, fmt.Errorf("read %s: %w", p, hint(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return KeyFile{}, fmt.Errorf("read %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return KeyFile{}, fmt.Errorf("read %s: not a regular file", p)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return KeyFile{}, fmt.Errorf("read %s: %w", p, hint(err))
	}
	kf := KeyFile{Path: p, Mode: fi.Mode(), Owner: -1, Keys: ParseAuthorizedKeys(data)}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		kf.Owner = int(st.Uid)
	}
	return kf, nil
}

// ParseAuthorizedKeys parses authorized_keys content (sshd(8) AUTHORIZED_KEYS
// FILE FORMAT). Lines sshd would ignore — comments, unknown key types,
// undecodable keys, a key whose blob disagrees with its type — are left
// out.
func ParseAuthorizedKeys(data []byte) []AuthorizedKey {
	var out []AuthorizedKey
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		k := AuthorizedKey{Line: n}
		typ, rest := cutField(s)
		if !isKeyType(typ) {
			k.Options, rest = cutOptions(s)
			typ, rest = cutField(rest)
			if !isKeyType(typ) {
				continue
			}
		}
		blob64, comment := cutField(rest)
		k.Type, k.Comment = typ, comment
		blob, err := base64.StdEncoding.DecodeString(blob64)
		if err != nil {
			continue
		}
		pk, err := ssh.ParsePublicKey(blob)
		if err != nil || pk.Type() != typ {
			continue
		}
		k.Bits = keyBits(pk)
		k.Fingerprint = ssh.FingerprintSHA256(pk)
		out = append(out, k)
	}
	return out
}

// cutField splits s at its first run of spaces or tabs.
func cutField(s string) (field, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// cutOptions splits the options prefix from the rest of a line: it ends at
// the first space or tab outside double quotes, and \" never opens or
// closes a quote (sshkey_advance_past_options in OpenSSH).
func cutOptions(s string) (opts, rest string) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s) && s[i+1] == '"':
			i++
		case c == '"':
			quoted = !quoted
		case (c == ' ' || c == '\t') && !quoted:
			return s[:i], strings.TrimLeft(s[i:], " \t")
		}
	}
	return s, ""
}

var keyTypes = map[string]bool{
	ssh.KeyAlgoRSA: true, "ssh-dss": true, ssh.KeyAlgoED25519: true,
	ssh.KeyAlgoECDSA256: true, ssh.KeyAlgoECDSA384: true, ssh.KeyAlgoECDSA521: true,
	ssh.KeyAlgoSKECDSA256: true, ssh.KeyAlgoSKED25519: true,
	ssh.KeyAlgoMLDSA44: true, ssh.KeyAlgoMLDSA65: true, ssh.KeyAlgoMLDSA87: true,
}

func isKeyType(t string) bool {
	if base, ok := strings.CutSuffix(t, "-cert-v01@openssh.com"); ok {
		switch base {
		case "ssh-rsa", "ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
			"ecdsa-sha2-nistp521", "sk-ecdsa-sha2-nistp256", "sk-ssh-ed25519":
			return true
		}
		return false
	}
	return keyTypes[t]
}

// keyBits returns the size of the key that matters for its strength.
func keyBits(pk ssh.PublicKey) int {
	if c, ok := pk.(*ssh.Certificate); ok {
		pk = c.Key
	}
	cpk, ok := pk.(ssh.CryptoPublicKey)
	if !ok {
		return 0
	}
	switch k := cpk.CryptoPublicKey().(type) {
	case *rsa.PublicKey:
		return k.N.BitLen()
	case *ecdsa.PublicKey:
		return k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return 256
	case *dsa.PublicKey:
		return k.P.BitLen()
	}
	return 0
}

// ExpandAuthorizedKeysFile turns sshd's AuthorizedKeysFile value (as sshd
// -T prints it: space-separated patterns, or "none") into the paths sshd
// reads for u: %% is '%', %h the home directory, %u the user name, %U the
// numeric UID; a path still relative after expansion is relative to the
// home directory. Unknown tokens are kept as written.
func ExpandAuthorizedKeysFile(value string, u User) []string {
	var out []string
	for _, pat := range strings.Fields(value) {
		if pat == "none" {
			continue
		}
		var b strings.Builder
		for i := 0; i < len(pat); i++ {
			if pat[i] != '%' || i+1 == len(pat) {
				b.WriteByte(pat[i])
				continue
			}
			i++
			switch pat[i] {
			case '%':
				b.WriteByte('%')
			case 'h':
				b.WriteString(u.Home)
			case 'u':
				b.WriteString(u.Name)
			case 'U':
				b.WriteString(strconv.Itoa(u.UID))
			default:
				b.WriteByte('%')
				b.WriteByte(pat[i])
			}
		}
		p := b.String()
		if !strings.HasPrefix(p, "/") {
			// sshd prefixes the home directory; its cwd is / for the rest.
			p = u.Home + "/" + p
		}
		p = path.Clean("/" + p)
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// WritableDirs returns the directories from p's parent up to the root
// that a user other than their owner can write to (group or others
// write bit; sshd's StrictModes refuses such a path, and without
// StrictModes anyone who can write there can swap the file), as
// "DIR (mode 0777)".
func (h *Host) WritableDirs(p string) []string {
	var out []string
	for d := path.Dir(p); ; d = path.Dir(d) {
		if fi, err := os.Stat(h.Path(d)); err == nil && fi.Mode().Perm()&0o022 != 0 {
			out = append(out, fmt.Sprintf("%s (mode %04o)", d, fi.Mode().Perm()))
		}
		if d == "/" || d == "." {
			return out
		}
	}
}
