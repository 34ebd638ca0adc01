package vpn

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParseClientConfig: a client config comes from outside (a file a
// user hands to moat vpn up --client). Whatever it holds, parsing ends
// with a config or an error, and an accepted config renders to text that
// parses to the same config.
func FuzzParseClientConfig(f *testing.F) {
	f.Add("[Interface]\nPrivateKey = 4Hx8j0e7mFf3Hx8j0e7mFf3Hx8j0e7mFf3Hx8j0e7mE=\nAddress = 10.0.0.2/32\n[Peer]\nPublicKey = 4Hx8j0e7mFf3Hx8j0e7mFf3Hx8j0e7mFf3Hx8j0e7mE=\nEndpoint = 1.2.3.4:51820\nAllowedIPs = 0.0.0.0/0, ::/0\n")
	f.Add("[Interface]\n[Peer]\n")
	f.Add("[peer]\nPublicKey=x")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseClientConfig(s)
		if err != nil {
			return
		}
		c2, err := ParseClientConfig(c.Render())
		if err != nil {
			t.Fatalf("rendered config does not parse: %v\n%s", err, c.Render())
		}
		if c2.Render() != c.Render() {
			t.Fatalf("not stable:\n%s\n%s", c.Render(), c2.Render())
		}
	})
}

func TestConfigFileKeepsOtherSectionsAndComments(t *testing.T) {
	p := filepath.Join(t.TempDir(), "moat.yaml")
	in := "# my server\nssh:\n  port: 22 # keep\nvpn:\n  interfaces: [tailscale0]\n"
	os.WriteFile(p, []byte(in), 0o640)
	cf, err := OpenConfigFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := cf.SetWireGuard(testWG(t)); err != nil {
		t.Fatal(err)
	}
	if err := cf.Save(nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	out := string(b)
	for _, want := range []string{"# my server", "port: 22 # keep", "tailscale0", "wg0", "wireguard:", "10.9.8.1/24"} {
		if !strings.Contains(out, want) {
			t.Errorf("%q missing from:\n%s", want, out)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the file's own 0640", fi.Mode().Perm())
	}
	// A check that refuses leaves the file as it was.
	cf.SetWireGuard(&WireGuard{Interface: "wg1"})
	if err := cf.Save(func([]byte) error { return os.ErrInvalid }); err == nil {
		t.Fatal("refused edit saved")
	}
	if b2, _ := os.ReadFile(p); string(b2) != out {
		t.Fatal("a refused edit changed the file")
	}
}

// TestConfigFileEditsOnlyItsLines: moat vpn init/add/remove write
// vpn.wireguard and leave every other line of the operator's moat.yaml as
// it was (alignment, blank lines, comments); a linked moat.yaml is edited
// where it points and stays a link; an edit made since the read is not
// overwritten.
func TestConfigFileEditsOnlyItsLines(t *testing.T) {
	example, err := os.ReadFile("../../examples/moat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The annotated example without its vpn.wireguard block: the file of
	// an operator who has not run moat vpn init yet.
	var kept []string
	skip := false
	for _, l := range strings.Split(string(example), "\n") {
		switch {
		case strings.HasPrefix(l, "  wireguard:"):
			skip = true
		case skip && !strings.HasPrefix(l, "    "):
			skip = false
		}
		if !skip {
			kept = append(kept, l)
		}
	}
	src := []byte(strings.Join(kept, "\n"))
	dir := t.TempDir()
	real := filepath.Join(dir, "real.yaml")
	link := filepath.Join(dir, "moat.yaml")
	os.WriteFile(real, src, 0o600)
	if err := os.Symlink("real.yaml", link); err != nil {
		t.Fatal(err)
	}
	cf, err := OpenConfigFile(link)
	if err != nil {
		t.Fatal(err)
	}
	if err := cf.SetWireGuard(testWG(t)); err != nil {
		t.Fatal(err)
	}
	if err := cf.Save(nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced by a file: %v %v", fi.Mode(), err)
	}
	out, _ := os.ReadFile(real)
	// Every line of the original is still there, in order: the edit only
	// adds (vpn.wireguard's block, the interface in vpn.interfaces).
	rest := string(out)
	for _, l := range strings.Split(string(src), "\n") {
		i := strings.Index(rest, l+"\n")
		if l == "" {
			continue
		}
		if i < 0 {
			t.Fatalf("line %q lost or changed; got:\n%s", l, out)
		}
		rest = rest[i+len(l)+1:]
	}
	var back struct {
		VPN struct {
			Interfaces []string   `yaml:"interfaces"`
			WireGuard  *WireGuard `yaml:"wireguard"`
		} `yaml:"vpn"`
	}
	if err := yaml.Unmarshal(out, &back); err != nil || back.VPN.WireGuard == nil || !slices.Contains(back.VPN.Interfaces, "wg0") {
		t.Fatalf("vpn.wireguard does not read back: %v %+v", err, back.VPN)
	}

	cf, _ = OpenConfigFile(link)
	cf.SetWireGuard(&WireGuard{Interface: "wg1"})
	os.WriteFile(real, append(out, []byte("# the operator's own edit\n")...), 0o600)
	if err := cf.Save(nil); err == nil || !strings.Contains(err.Error(), "changed since") {
		t.Fatalf("an edit made since the read was overwritten: %v", err)
	}
}
