package sshd

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// HostKey is a host key's type and size.
type HostKey struct {
	Type string // key format: "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", ...
	Bits int    // modulus or curve size; 0 when unknown
}

func (k HostKey) String() string {
	if k.Bits == 0 {
		return k.Type
	}
	return fmt.Sprintf("%s %d", k.Type, k.Bits)
}

// HostKeyOf describes a public key; certificates are described by the key
// they certify.
func HostKeyOf(pub ssh.PublicKey) HostKey {
	if c, ok := pub.(*ssh.Certificate); ok {
		pub = c.Key
	}
	k := HostKey{Type: pub.Type()}
	switch k.Type {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519:
		k.Bits = 256
	case ssh.KeyAlgoSKECDSA256:
		k.Bits = 256
	case "ssh-dss": // ssh.InsecureKeyAlgoDSA, named so without the deprecation
		k.Bits = 1024 // OpenSSH only ever made 1024-bit DSA keys
	}
	if cp, ok := pub.(ssh.CryptoPublicKey); ok {
		switch p := cp.CryptoPublicKey().(type) {
		case *rsa.PublicKey:
			k.Bits = p.N.BitLen()
		case *ecdsa.PublicKey:
			k.Bits = p.Curve.Params().BitSize
		}
	}
	return k
}

// ParseHostKeyFile describes the key in a .pub file (authorized_keys
// format: "ssh-ed25519 AAAA... comment").
func ParseHostKeyFile(data []byte) (HostKey, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return HostKey{}, fmt.Errorf("parse host public key: %w", err)
	}
	return HostKeyOf(pub), nil
}

// Weakness returns why a host key is too weak, or "". RSA needs 2048
// bits at least (NIST SP 800-131A disallowed less after 2013) and 3072 for
// 128-bit security (NIST SP 800-57); DSA and NIST curves are judged as in
// WeakHostKeyAlgorithm; Ed25519 and security-key types are fine.
func (k HostKey) Weakness() string {
	switch {
	case k.Type == ssh.KeyAlgoRSA && k.Bits > 0 && k.Bits < 2048:
		return fmt.Sprintf("RSA key of %d bits: NIST disallowed RSA under 2048 bits after 2013 (SP 800-131A)", k.Bits)
	case k.Type == ssh.KeyAlgoRSA && k.Bits > 0 && k.Bits < 3072:
		return fmt.Sprintf("RSA key of %d bits: under 3072 bits gives less than 128-bit security (NIST SP 800-57)", k.Bits)
	case k.Type == ssh.KeyAlgoRSA:
		return ""
	case strings.HasPrefix(k.Type, "sk-"):
		return ""
	}
	return WhyWeak(k.Type)
}

// PostQuantumHostKey reports whether a host key type signs with a
// post-quantum algorithm (ML-DSA, FIPS 204).
func PostQuantumHostKey(typ string) bool { return strings.HasPrefix(typ, "ssh-mldsa-") }
