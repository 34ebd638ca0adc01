package sshd

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseTCapture(t *testing.T) {
	f, err := os.Open("testdata/sshd-T-debian12.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e, err := ParseT(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Keys()[0]; got != "port" {
		t.Errorf("first key = %q, want port", got)
	}
	for _, tc := range []struct {
		key  string
		want []string
	}{
		{"hostkey", []string{"/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_ed25519_key"}},
		{"listenaddress", []string{"[::]:22", "0.0.0.0:22"}},
		{"acceptenv", []string{"LANG", "LC_*"}},
		{"subsystem", []string{"sftp /usr/lib/openssh/sftp-server"}},
		{"authorizedkeysfile", []string{".ssh/authorized_keys .ssh/authorized_keys2"}},
		{"nosuchkey", nil},
	} {
		if got := e.All(tc.key); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("All(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
	if got := e.Get("PermitRootLogin"); got != "without-password" {
		t.Errorf("Get is case-insensitive: got %q", got)
	}
	if !e.Bool("pubkeyauthentication") || e.Bool("kbdinteractiveauthentication") || e.Bool("permitrootlogin") {
		t.Error("Bool: want yes=true, no=false, without-password=false")
	}
	if n, ok := e.Int("maxauthtries"); !ok || n != 6 {
		t.Errorf("Int(maxauthtries) = %d, %v", n, ok)
	}
	if _, ok := e.Int("loglevel"); ok {
		t.Error("Int(loglevel) parsed a non-number")
	}
	if _, ok := e.Int("nosuchkey"); ok {
		t.Error("Int on a missing key succeeded")
	}
	kex := e.List("kexalgorithms")
	if len(kex) != 11 || kex[0] != "sntrup761x25519-sha512" || kex[10] != "diffie-hellman-group14-sha256" {
		t.Errorf("List(kexalgorithms) = %q", kex)
	}
	if !e.Has("banner") || e.Has("nosuchkey") {
		t.Error("Has")
	}
	// Keys, All and List hand out copies.
	e.All("hostkey")[0] = "x"
	e.Keys()[0] = "x"
	if e.Get("hostkey") == "x" || e.Keys()[0] == "x" {
		t.Error("accessor returned internal storage")
	}
	if e.Len() != 89 {
		t.Errorf("Len = %d, want 89 distinct keywords", e.Len())
	}
}

func TestParseT(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string][]string
		err      string
	}{
		{name: "empty", in: "", want: map[string][]string{}},
		{name: "blank lines", in: "\n\r\n", want: map[string][]string{}},
		{name: "crlf and tab", in: "Port\t22\r\nport 2222\r\n", want: map[string][]string{"port": {"22", "2222"}}},
		{name: "empty value", in: "versionaddendum \n", want: map[string][]string{"versionaddendum": {""}}},
		{name: "no final newline", in: "usedns no", want: map[string][]string{"usedns": {"no"}}},
		{name: "keyword only", in: "port 22\nbanner\n", err: "line 2"},
		{name: "leading blank", in: " port 22\n", err: "line 1"},
		{name: "punctuation", in: "port 22\nx-y z\n", err: `line 2: keyword "x-y"`},
		{name: "non-ascii", in: "pört 22\n", err: "line 1"},
		{name: "long line", in: "a " + strings.Repeat("x", maxTLine+1), err: "line 1: longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ParseT(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, k := range e.Keys() {
				got[k] = e.All(k)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestZeroEffective(t *testing.T) {
	var e Effective
	if e.Get("x") != "" || e.All("x") != nil || e.List("x") != nil || e.Bool("x") || e.Has("x") || e.Len() != 0 {
		t.Error("zero Effective is not empty")
	}
}

func FuzzParseT(f *testing.F) {
	if b, err := os.ReadFile("testdata/sshd-T-debian12.txt"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("port 22\nport 2222\n"))
	f.Add([]byte("keyword\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseT(strings.NewReader(string(b)))
		if err != nil {
			if e.Len() != 0 {
				t.Fatal("error with a non-empty result")
			}
			return
		}
		for _, k := range e.Keys() {
			if k != strings.ToLower(k) || k == "" || len(e.All(k)) == 0 {
				t.Fatalf("bad key %q", k)
			}
			_ = e.List(k)
			e.Int(k)
		}
	})
}
