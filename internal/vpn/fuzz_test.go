package vpn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
