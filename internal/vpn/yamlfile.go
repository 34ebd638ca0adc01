package vpn

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/moat-sh/moat/internal/yamledit"
)

// ConfigFile edits moat.yaml's vpn section in place (internal/yamledit):
// every other byte of the file — comments, blank lines, alignment, order —
// stays as the operator wrote it. Only vpn.wireguard's own lines are
// rewritten (comments inside it are not kept), and vpn.interfaces gets the
// interface's name.
type ConfigFile struct {
	Path string
	file string // where Path points, when it is a link
	read []byte // the file as read, to refuse overwriting an edit made since
	src  []byte // the file with the edits so far
	mode os.FileMode
}

// OpenConfigFile reads path; a missing file starts an empty document.
func OpenConfigFile(path string) (*ConfigFile, error) {
	f := &ConfigFile{Path: path, file: path, mode: 0o600}
	// A moat.yaml that is a link is edited where it points, and stays a
	// link.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		f.file = real
	}
	b, err := os.ReadFile(f.file)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if fi, err := os.Stat(f.file); err == nil {
		f.mode = fi.Mode().Perm()
	}
	if _, err := yamledit.Parse(b); err != nil {
		return nil, fmt.Errorf("%s: %w (fix the YAML first: moat config check)", path, err)
	}
	f.read, f.src = b, b
	return f, nil
}

// SetWireGuard writes vpn.wireguard and lists its interface under
// vpn.interfaces.
func (f *ConfigFile) SetWireGuard(w *WireGuard) error {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(w); err != nil {
		return fmt.Errorf("encode vpn.wireguard: %w", err)
	}
	enc.Close()
	body := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	d, err := yamledit.Parse(f.src)
	if err != nil {
		return err
	}
	out, err := d.SetBlock([]string{"vpn", "wireguard"}, body)
	if err != nil {
		return fmt.Errorf("write vpn.wireguard into %s: %w", f.Path, err)
	}
	if d, err = yamledit.Parse(out); err != nil {
		return err
	}
	list := d.Get("vpn", "interfaces")
	switch {
	case list == nil:
		out, err = d.SetList([]string{"vpn", "interfaces"}, []string{yamledit.Quote(w.Name())})
	case list.Kind != yaml.SequenceNode:
		return fmt.Errorf("vpn.interfaces in %s is not a list", f.Path)
	case slices.ContainsFunc(list.Content, func(n *yaml.Node) bool { return n.Value == w.Name() }):
	default:
		out, err = d.Append([]string{"vpn", "interfaces"}, []string{yamledit.Quote(w.Name())})
	}
	if err != nil {
		return fmt.Errorf("list %s under vpn.interfaces in %s: %w", w.Name(), f.Path, err)
	}
	f.src = out
	return nil
}

// Bytes renders the edited document.
func (f *ConfigFile) Bytes() ([]byte, error) { return f.src, nil }

// Save writes the file atomically, keeping its mode. check runs on the
// new bytes first (the config's own validation): a config moat writes
// must load.
func (f *ConfigFile) Save(check func([]byte) error) error {
	b, err := f.Bytes()
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(b); err != nil {
			return fmt.Errorf("the edited %s would not load, nothing written: %w", f.Path, err)
		}
	}
	// Someone else's edit since we read it is not overwritten.
	if now, err := os.ReadFile(f.file); err != nil && !os.IsNotExist(err) || !bytes.Equal(now, f.read) {
		return fmt.Errorf("%s changed since moat read it; nothing written: run the command again", f.Path)
	}
	dir := filepath.Dir(f.file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	t, err := os.CreateTemp(dir, ".moat.yaml-*")
	if err != nil {
		return err
	}
	defer os.Remove(t.Name())
	if err := t.Chmod(f.mode); err != nil {
		t.Close()
		return err
	}
	if _, err := t.Write(b); err != nil {
		t.Close()
		return err
	}
	if err := t.Sync(); err != nil {
		t.Close()
		return err
	}
	if err := t.Close(); err != nil {
		return err
	}
	if err := os.Rename(t.Name(), f.file); err != nil {
		return err
	}
	f.read = b
	return nil
}
