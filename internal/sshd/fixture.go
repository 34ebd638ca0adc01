package sshd

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// sshDir is sshd's compiled-in SSHDIR: relative Include paths are relative
// to it, whatever -f says.
const sshDir = "/etc/ssh"

// Bounds on what a fixture tree may hold; real trees have a handful of
// small files.
const (
	maxFixtureFiles    = 256
	maxFixtureFileSize = 1 << 20
)

// defaultHostKeys is what sshd reports for hostkey when the config names
// none: the compiled-in defaults (servconf.c fill_default_server_options,
// builds with OpenSSL ECC as on Debian and Ubuntu).
var defaultHostKeys = []string{
	"/etc/ssh/ssh_host_rsa_key",
	"/etc/ssh/ssh_host_ecdsa_key",
	"/etc/ssh/ssh_host_ed25519_key",
}

// fixtureTree is a temporary copy of a fixture root's sshd config files,
// with every Include redirected into the copy, plus a throwaway host key.
//
// Layout: dir/hostkey, and dir/root/<absolute path> for each config file
// (the main file and everything its Includes match, recursively).
type fixtureTree struct {
	dir     string
	mirror  string // dir/root
	config  string // copy of the main config: the -f argument
	hostKey string // the -h argument
	// localPorts are the ports Match LocalPort lines name.
	localPorts []int
}

// walkConfig reads configFile inside rfs and, breadth first, every file its
// Include lines match (relative patterns resolved against /etc/ssh, as
// sshd does), calling visit with each file's absolute path and content;
// visit returns the Include patterns to follow. Directories an Include
// matches go to dir. Reads are bounded in count and size.
func walkConfig(rfs *os.Root, configFile string, visit func(p string, data []byte) []string, dir func(p string) error) error {
	queue := []string{path.Clean(configFile)}
	seen := map[string]bool{queue[0]: true}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		data, err := readBounded(rfs, p[1:])
		if err != nil {
			return fmt.Errorf("read sshd config %s: %w", p, err)
		}
		patterns := visit(p, data)
		for _, pat := range patterns {
			for _, m := range globRoot(rfs.FS(), pat) {
				abs := "/" + m
				if seen[abs] {
					continue
				}
				seen[abs] = true
				if len(seen) > maxFixtureFiles {
					return fmt.Errorf("sshd config %s: Includes match more than %d files", configFile, maxFixtureFiles)
				}
				if fi, err := rfs.Stat(m); err == nil && fi.IsDir() {
					if dir != nil {
						if err := dir(abs); err != nil {
							return err
						}
					}
					continue
				}
				queue = append(queue, abs)
			}
		}
	}
	return nil
}

// ConfigFiles lists sshd's main config file and every file its Includes
// match, recursively, as paths inside root ("" or "/" is the live
// system), in the order sshd meets them breadth first. Relative Include
// paths are resolved against /etc/ssh inside root, never the running
// host's.
func ConfigFiles(root, configFile string) ([]string, error) {
	if root == "" {
		root = "/"
	}
	if configFile == "" {
		configFile = DefaultConfigFile
	}
	rfs, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("sshd config files: %w", err)
	}
	defer rfs.Close()
	var out []string
	err = walkConfig(rfs, configFile, func(p string, data []byte) []string {
		out = append(out, p)
		_, pats := rewriteIncludes(data, "")
		return pats
	}, nil)
	return out, err
}

// liveLocalPorts scans the live config tree for Match LocalPort ports.
func liveLocalPorts(configFile string) []int {
	rfs, err := os.OpenRoot("/")
	if err != nil {
		return nil
	}
	defer rfs.Close()
	var out []int
	_ = walkConfig(rfs, configFile, func(_ string, data []byte) []string {
		out = append(out, matchLocalPorts(data)...)
		_, pats := rewriteIncludes(data, "")
		return pats
	}, nil)
	return out
}

// buildFixture copies configFile (absolute, inside root) and all it
// includes. Files are read through os.Root, so a symlink cannot lead
// outside root to the host's own files. uid >= 0 makes the copy readable
// by, and the host key owned by, that user (sshd refuses a private key
// owned by someone else with loose permissions).
func buildFixture(root, configFile string, uid int, acc *Accounts) (*fixtureTree, error) {
	if !path.IsAbs(configFile) {
		return nil, fmt.Errorf("sshd config %q must be an absolute path inside the root", configFile)
	}
	rfs, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("open fixture root: %w (hint: Root must be a directory holding etc/ssh/sshd_config)", err)
	}
	defer rfs.Close()

	dir, err := os.MkdirTemp("", "moat-sshd-")
	if err != nil {
		return nil, fmt.Errorf("sshd fixture: %w", err)
	}
	t := &fixtureTree{dir: dir, mirror: filepath.Join(dir, "root")}
	built := false
	defer func() {
		if !built {
			t.Close()
		}
	}()
	if uid >= 0 {
		// sshd runs as uid and must reach the copy through dir.
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, fmt.Errorf("sshd fixture: %w", err)
		}
	}

	prefix := escapeGlob(t.mirror)
	var writeErr error
	err = walkConfig(rfs, configFile, func(p string, data []byte) []string {
		t.localPorts = append(t.localPorts, matchLocalPorts(data)...)
		out, patterns := rewriteIncludes(rewriteMatchGroups(data, acc), prefix)
		if err := t.write(p, out); err != nil && writeErr == nil {
			writeErr = err
		}
		return patterns
	}, func(p string) error {
		// sshd would fail reading a directory; let it, in the copy.
		if err := os.MkdirAll(t.path(p), 0o755); err != nil {
			return fmt.Errorf("sshd fixture: %w", err)
		}
		return nil
	})
	if err == nil {
		err = writeErr
	}
	if err != nil {
		return nil, fmt.Errorf("fixture %s: %w", root, err)
	}
	t.config = t.path(path.Clean(configFile))

	t.hostKey = filepath.Join(dir, "hostkey")
	if err := writeHostKey(t.hostKey, uid); err != nil {
		return nil, err
	}
	built = true
	return t, nil
}

// Close removes the temporary tree.
func (t *fixtureTree) Close() error { return os.RemoveAll(t.dir) }

// path maps an absolute path of the fixture to its copy.
func (t *fixtureTree) path(abs string) string {
	return filepath.Join(t.mirror, filepath.FromSlash(abs))
}

func (t *fixtureTree) write(abs string, data []byte) error {
	dst := t.path(abs)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("sshd fixture: %w", err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return fmt.Errorf("sshd fixture: %w", err)
	}
	return nil
}

func readBounded(r *os.Root, name string) ([]byte, error) {
	f, err := r.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFixtureFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFixtureFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFixtureFileSize)
	}
	return data, nil
}

// rewriteIncludes returns data with the paths of every Include line moved
// under prefix (already glob-escaped), and the absolute patterns it found,
// cleaned, for the caller to copy what they match. Relative paths are
// resolved against /etc/ssh as sshd does. Paths starting with '~' are left
// alone: sshd does not expand them (glob(3) without GLOB_TILDE), so they
// name nothing inside a fixture either. Lines sshd would reject (empty
// argument, unbalanced quotes) are copied unchanged so that sshd reports
// them itself.
func rewriteIncludes(data []byte, prefix string) (out []byte, patterns []string) {
	var b bytes.Buffer
	b.Grow(len(data) + 256)
	for len(data) > 0 {
		line, rest, nl := bytes.Cut(data, []byte("\n"))
		data = rest
		if s, pats, ok := rewriteIncludeLine(string(line), prefix); ok {
			b.WriteString(s)
			patterns = append(patterns, pats...)
		} else {
			b.Write(line)
		}
		if nl {
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), patterns
}

func rewriteIncludeLine(line, prefix string) (string, []string, bool) {
	// sshd handles lines as C strings: a NUL ends the line.
	if i := strings.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	kw, args, ok := splitKeyword(line)
	if !ok || !strings.EqualFold(kw, "include") {
		return "", nil, false
	}
	argv, err := argvSplit(args)
	if err != nil || len(argv) == 0 {
		return "", nil, false
	}
	indent := line[:len(line)-len(strings.TrimLeft(line, cfgWhitespace))]
	var b strings.Builder
	b.WriteString(indent)
	b.WriteString("Include")
	var pats []string
	for _, a := range argv {
		if a == "" {
			return "", nil, false
		}
		b.WriteByte(' ')
		if strings.HasPrefix(a, "~") {
			b.WriteString(quoteArg(a))
			continue
		}
		if !strings.HasPrefix(a, "/") {
			a = sshDir + "/" + a
		}
		a = path.Clean(a)
		pats = append(pats, a)
		b.WriteString(quoteArg(prefix + a))
	}
	return b.String(), pats, true
}

// globRoot expands an absolute glob(3) pattern inside fsys. Go's matcher
// takes "[^" where glob(3) takes "[!", and matches leading dots glob(3)
// skips; copying a few files too many is harmless because sshd globs
// the copy again itself.
func globRoot(fsys fs.FS, pattern string) []string {
	pattern = strings.TrimLeft(pattern, "/")
	if pattern == "" {
		return nil
	}
	m, err := fs.Glob(fsys, posixToGoGlob(pattern))
	if err != nil {
		return nil // bad pattern: glob(3) would find nothing either
	}
	return m
}

// posixToGoGlob translates a glob(3) pattern to path.Match syntax. The
// two differ only inside brackets: glob(3) negates with "[!" (Go: "[^"),
// takes a ']' first in a class and a '-' first or last as members (Go
// needs them escaped), and reads a '[' without a closing ']' literally.
func posixToGoGlob(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\\' && i+1 < len(p) {
			b.WriteByte(c)
			i++
			b.WriteByte(p[i])
			continue
		}
		if c != '[' {
			b.WriteByte(c)
			continue
		}
		start := i + 1
		if start < len(p) && (p[start] == '!' || p[start] == '^') {
			start++
		}
		j := start
		if j < len(p) && p[j] == ']' {
			j++
		}
		for j < len(p) && p[j] != ']' {
			if p[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(p) {
			b.WriteString(`\[`)
			continue
		}
		b.WriteByte('[')
		if start > i+1 {
			b.WriteByte('^')
		}
		body := p[start:j]
		for m := 0; m < len(body); m++ {
			switch ch := body[m]; {
			case ch == '\\' && m+1 < len(body):
				b.WriteByte(ch)
				m++
				b.WriteByte(body[m])
			case ch == ']', ch == '-' && (m == 0 || m == len(body)-1):
				b.WriteByte('\\')
				b.WriteByte(ch)
			default:
				b.WriteByte(ch)
			}
		}
		b.WriteByte(']')
		i = j
	}
	return b.String()
}

// escapeGlob backslash-escapes glob(3) metacharacters, so a temporary
// directory name cannot be read as a pattern by sshd.
func escapeGlob(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(`*?[]\`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// writeHostKey writes a fresh Ed25519 private key in OpenSSH format: sshd
// -T exits with "no hostkeys available" unless it can load one, and a
// fixture has no host keys of its own (and must not use the host's).
func writeHostKey(file string, uid int) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate sshd test host key: %w", err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "moat sshd -T")
	if err != nil {
		return fmt.Errorf("encode sshd test host key: %w", err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(blk), 0o600); err != nil {
		return fmt.Errorf("write sshd test host key: %w", err)
	}
	if uid >= 0 {
		if err := os.Chown(file, uid, -1); err != nil {
			return fmt.Errorf("chown sshd test host key: %w", err)
		}
	}
	return nil
}

// restoreHostKeys undoes what the -h key did to the reported hostkey
// list: it drops that key and, if nothing is left (the config named no
// HostKey, so sshd would have used its defaults had -h not been given),
// puts the defaults back.
func (e *Effective) restoreHostKeys(tmpKey string) {
	var keep []string
	for _, v := range e.vals["hostkey"] {
		if v != tmpKey {
			keep = append(keep, v)
		}
	}
	if len(keep) == 0 {
		keep = append(keep, defaultHostKeys...)
	}
	e.set("hostkey", keep)
}

var errNoOutput = errors.New("sshd -T printed nothing")
