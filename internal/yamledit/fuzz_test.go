package yamledit

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// missing counts the lines of a not found, in order, in b.
func missing(a, b string) int {
	// A final newline added to a file without one is no rewrite.
	a, b = strings.TrimSuffix(a, "\n"), strings.TrimSuffix(b, "\n")
	bl := strings.Split(b, "\n")
	n, j := 0, 0
	for _, l := range strings.Split(a, "\n") {
		k := j
		for k < len(bl) && bl[k] != l {
			k++
		}
		if k == len(bl) {
			n++
			continue
		}
		j = k + 1
	}
	return n
}

// FuzzEdit: on any YAML an edit either refuses or yields YAML in which
// the edit took, with every other line kept (an append or a scalar set
// rewrites at most one line; a removal only drops lines, but for the one
// it rewrites).
func FuzzEdit(f *testing.F) {
	f.Add(commented, uint8(0))
	f.Add(commented, uint8(1))
	f.Add(commented, uint8(2))
	f.Add("firewall:\n  public: []\n", uint8(0))
	f.Add("firewall:\n  public:\n  vpn: [1/tcp]\n", uint8(0))
	f.Add("ssh: {port: 22}\n", uint8(2))
	f.Fuzz(func(t *testing.T, src string, op uint8) {
		if len(src) > 1<<16 {
			return
		}
		d, err := Parse([]byte(src))
		if err != nil {
			return
		}
		path := []string{"firewall", "public"}
		var out []byte
		switch op % 4 {
		case 0:
			out, err = d.Append(path, []string{"65000/tcp"})
		case 1:
			out, err = d.Remove(path, 0)
		case 2:
			out, err = d.SetScalar([]string{"ssh", "exposure"}, "vpn")
		case 3:
			out, err = d.SetBlock([]string{"vpn", "wireguard"}, []string{"interface: wg0", "peers:", "  - name: laptop"})
		}
		if err != nil {
			return
		}
		var n yaml.Node
		if err := yaml.Unmarshal(out, &n); err != nil {
			t.Fatalf("op %d made %q into invalid YAML %q: %v", op%4, src, out, err)
		}
		d2, err := Parse(out)
		if err != nil {
			t.Fatalf("op %d: %q re-reads with error %v", op%4, out, err)
		}
		switch op % 4 {
		case 0:
			v := d2.Get(path...)
			if v == nil || v.Kind != yaml.SequenceNode || v.Content[len(v.Content)-1].Value != "65000/tcp" {
				t.Fatalf("append did not take: %q → %q", src, out)
			}
			if m := missing(src, string(out)); m > 1 {
				t.Fatalf("append rewrote %d lines: %q → %q", m, src, out)
			}
		case 1:
			old, v := d.Get(path...), d2.Get(path...)
			if v == nil || v.Kind != yaml.SequenceNode || len(v.Content) != len(old.Content)-1 {
				t.Fatalf("remove did not take: %q → %q", src, out)
			}
			if m := missing(string(out), src); m > 1 {
				t.Fatalf("remove wrote %d new lines: %q → %q", m, src, out)
			}
		case 2:
			v := d2.Get("ssh", "exposure")
			if v == nil || v.Value != "vpn" {
				t.Fatalf("set did not take: %q → %q", src, out)
			}
			if m := missing(src, string(out)); m > 1 {
				t.Fatalf("set rewrote %d lines: %q → %q", m, src, out)
			}
		case 3:
			v := d2.Get("vpn", "wireguard", "interface")
			if v == nil || v.Value != "wg0" {
				t.Fatalf("set block did not take: %q → %q", src, out)
			}
			// Lines outside the old block are kept (one more for the line a
			// key is appended after, as for the other edits).
			old := 0
			if b := d.Get("vpn", "wireguard"); b != nil && b.Kind == yaml.MappingNode {
				old = endLine(b) - b.Line + 1
			}
			if m := missing(src, string(out)); m > old+1 {
				t.Fatalf("set block rewrote %d lines (its block had %d): %q → %q", m, old, src, out)
			}
		}
	})
}
