package vpn

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// ConfigFile edits moat.yaml's vpn section through the YAML node tree, so
// every other section keeps its comments and layout. Only vpn.wireguard
// is rewritten as a whole (comments inside it are not kept) and
// vpn.interfaces gets the interface's name.
type ConfigFile struct {
	Path string
	doc  yaml.Node
	mode os.FileMode
}

// OpenConfigFile reads path; a missing file starts an empty document.
func OpenConfigFile(path string) (*ConfigFile, error) {
	f := &ConfigFile{Path: path, mode: 0o600}
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil {
		f.mode = fi.Mode().Perm()
	}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := yaml.Unmarshal(b, &f.doc); err != nil {
			return nil, fmt.Errorf("%s: %w (fix the YAML first: moat config check)", path, err)
		}
	}
	if f.doc.Kind == 0 {
		f.doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	if f.doc.Kind != yaml.DocumentNode || len(f.doc.Content) != 1 || f.doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: the top level is not a mapping", path)
	}
	return f, nil
}

// mapping returns the value node of key in m, creating an empty mapping
// when absent (or null).
func mapping(m *yaml.Node, key string) (*yaml.Node, error) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v := m.Content[i+1]
			if v.Tag == "!!null" || (v.Kind == yaml.ScalarNode && v.Value == "") {
				*v = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			}
			if v.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("%s is not a mapping", key)
			}
			return v, nil
		}
	}
	v := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	return v, nil
}

func setKey(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v.HeadComment, v.LineComment = m.Content[i+1].HeadComment, m.Content[i+1].LineComment
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

// SetWireGuard writes vpn.wireguard and lists its interface under
// vpn.interfaces.
func (f *ConfigFile) SetWireGuard(w *WireGuard) error {
	v, err := mapping(f.doc.Content[0], "vpn")
	if err != nil {
		return err
	}
	var n yaml.Node
	if err := n.Encode(w); err != nil {
		return fmt.Errorf("encode vpn.wireguard: %w", err)
	}
	setKey(v, "wireguard", &n)
	for i := 0; i+1 < len(v.Content); i += 2 {
		if v.Content[i].Value != "interfaces" {
			continue
		}
		l := v.Content[i+1]
		if l.Kind != yaml.SequenceNode {
			return fmt.Errorf("vpn.interfaces is not a list")
		}
		for _, it := range l.Content {
			if it.Value == w.Name() {
				return nil
			}
		}
		l.Content = append(l.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: w.Name()})
		return nil
	}
	setKey(v, "interfaces", &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle,
		Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: w.Name()}}})
	return nil
}

// Bytes renders the edited document.
func (f *ConfigFile) Bytes() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&f.doc); err != nil {
		return nil, err
	}
	enc.Close()
	return b.Bytes(), nil
}

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
	dir := filepath.Dir(f.Path)
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
	return os.Rename(t.Name(), f.Path)
}
