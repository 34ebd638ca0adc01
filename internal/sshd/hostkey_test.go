package sshd

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestHostKeyOf(t *testing.T) {
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		key  any
		typ  string
		bits int
		weak string // substring of Weakness, "" for none
	}{
		{&rsa1024.PublicKey, "ssh-rsa", 1024, "SP 800-131A"},
		{&rsa2048.PublicKey, "ssh-rsa", 2048, "128-bit"},
		{&ec384.PublicKey, "ecdsa-sha2-nistp384", 384, "NIST P-curve"},
		{edPub, "ssh-ed25519", 256, ""},
	} {
		pub, err := ssh.NewPublicKey(tc.key)
		if err != nil {
			t.Fatal(err)
		}
		k := HostKeyOf(pub)
		if k.Type != tc.typ || k.Bits != tc.bits {
			t.Errorf("HostKeyOf = %v, want %s %d", k, tc.typ, tc.bits)
		}
		w := k.Weakness()
		if (tc.weak == "") != (w == "") || !strings.Contains(w, tc.weak) {
			t.Errorf("%v: Weakness = %q, want %q", k, w, tc.weak)
		}
		// The same through a .pub file line.
		k2, err := ParseHostKeyFile(ssh.MarshalAuthorizedKey(pub))
		if err != nil || k2 != k {
			t.Errorf("ParseHostKeyFile = %v, %v", k2, err)
		}
	}
	if _, err := ParseHostKeyFile([]byte("garbage")); err == nil {
		t.Error("ParseHostKeyFile accepted garbage")
	}
	// RSA with a big modulus is fine even though ssh-rsa, the signature
	// algorithm name, is weak: key and signature algorithm differ.
	if w := (HostKey{Type: "ssh-rsa", Bits: 4096}).Weakness(); w != "" {
		t.Errorf("RSA 4096: %q", w)
	}
	if w := (HostKey{Type: "ssh-dss", Bits: 1024}).Weakness(); w == "" {
		t.Error("DSA not weak")
	}
}
