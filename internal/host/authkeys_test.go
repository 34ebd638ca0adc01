package host

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseAuthorizedKeys(t *testing.T) {
	b, err := os.ReadFile(fixtureRoot + "/home/alice/.ssh/authorized_keys")
	if err != nil {
		t.Fatal(err)
	}
	got := ParseAuthorizedKeys(b)
	want := []AuthorizedKey{
		{Line: 2, Type: "ssh-ed25519", Bits: 256, Comment: "alice@laptop",
			Fingerprint: "SHA256:lTL8WbJK25RPQjxgwJdPj+quZX9AXI9aJhnXta6FoTA"},
		{Line: 4, Type: "ssh-rsa", Bits: 2048, Comment: "deploy@ci",
			Options:     `from="10.0.0.0/8,192.168.1.1",command="echo \"hi there\"",no-pty`,
			Fingerprint: "SHA256:x6D4ctHUY8eGHKyNJfS4YWYIn51c5tVtclyv6W5PK+0"},
		// Line 5: bad base64; 6: unknown type; 7: blob type differs from the declared one.
	}
	if len(got) != len(want) {
		t.Fatalf("got %d keys: %+v", len(got), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("key %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}

	for _, tc := range []struct {
		file string
		want string
	}{
		{"/home/bob/.ssh/authorized_keys2", "ecdsa-sha2-nistp384 384 bob@phone"},
		{"/root/.ssh/authorized_keys", "ssh-rsa 1024 weak restrict"},
	} {
		kf, err := New(fixtureRoot).ReadKeyFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if len(kf.Keys) != 1 {
			t.Fatalf("%s: %d keys", tc.file, len(kf.Keys))
		}
		k := kf.Keys[0]
		if got := strings.TrimSpace(strings.Join([]string{k.Type, strconv.Itoa(k.Bits), k.Comment, k.Options}, " ")); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.file, got, tc.want)
		}
	}
}

func TestCutOptions(t *testing.T) {
	for _, tc := range []struct{ in, opts, rest string }{
		{`no-pty ssh-ed25519 AAAA c`, `no-pty`, `ssh-ed25519 AAAA c`},
		{`command="a b \"c d\"",no-pty	ssh-rsa X`, `command="a b \"c d\"",no-pty`, `ssh-rsa X`},
		{`command="unterminated ssh-rsa X`, `command="unterminated ssh-rsa X`, ``},
		{`a\"b c`, `a\"b`, `c`},
	} {
		opts, rest := cutOptions(tc.in)
		if opts != tc.opts || rest != tc.rest {
			t.Errorf("cutOptions(%q) = %q, %q; want %q, %q", tc.in, opts, rest, tc.opts, tc.rest)
		}
	}
}

func TestReadKeyFileMissing(t *testing.T) {
	if _, err := New(fixtureRoot).ReadKeyFile("/home/carol/.ssh/authorized_keys"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing key file: %v", err)
	}
	if _, err := New(fixtureRoot).ReadKeyFile("/home/alice/.ssh"); err == nil {
		t.Error("directory read as key file")
	}
}

func FuzzParseAuthorizedKeys(f *testing.F) {
	for _, p := range []string{"/home/alice/.ssh/authorized_keys", "/home/bob/.ssh/authorized_keys2", "/root/.ssh/authorized_keys"} {
		b, err := os.ReadFile(fixtureRoot + p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`command="\" ssh-ed25519 AAAA`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, k := range ParseAuthorizedKeys(data) {
			if !isKeyType(k.Type) || k.Line < 1 || !strings.HasPrefix(k.Fingerprint, "SHA256:") {
				t.Fatalf("bad key %+v", k)
			}
		}
	})
}

func TestExpandAuthorizedKeysFile(t *testing.T) {
	u := User{Name: "alice", UID: 1001, Home: "/home/alice"}
	for _, tc := range []struct {
		v    string
		want []string
	}{
		{".ssh/authorized_keys .ssh/authorized_keys2", []string{"/home/alice/.ssh/authorized_keys", "/home/alice/.ssh/authorized_keys2"}},
		{"/etc/ssh/authorized-keys/%u", []string{"/etc/ssh/authorized-keys/alice"}},
		{"%h/keys/%U %%x", []string{"/home/alice/keys/1001", "/home/alice/%x"}},
		{"none", nil},
		{"/a/../etc/%u /etc/alice", []string{"/etc/alice"}},
		{"%q", []string{"/home/alice/%q"}},
	} {
		if got := ExpandAuthorizedKeysFile(tc.v, u); !slices.Equal(got, tc.want) {
			t.Errorf("ExpandAuthorizedKeysFile(%q) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func FuzzExpandAuthorizedKeysFile(f *testing.F) {
	f.Add(".ssh/authorized_keys %h/%u/%U %% %", "alice", "/home/alice")
	f.Fuzz(func(t *testing.T, v, name, home string) {
		for _, p := range ExpandAuthorizedKeysFile(v, User{Name: name, Home: home, UID: 7}) {
			if !strings.HasPrefix(p, "/") || path.Clean(p) != p {
				t.Fatalf("%q -> %q: not absolute and clean", v, p)
			}
		}
	})
}
