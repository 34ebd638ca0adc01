package sshd

import (
	"os"
	"strings"
	"testing"
)

func TestAlgorithmClasses(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(string) bool
		weak []string
		fine []string
	}{
		{"kex", WeakKex,
			[]string{"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1",
				"ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "gss-gex-sha1-toWM5Slw5Ew8Mqkay+al2g==", "gss-group14-sha1-"},
			[]string{"curve25519-sha256", "curve25519-sha256@libssh.org", "sntrup761x25519-sha512@openssh.com", "mlkem768x25519-sha256",
				"diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512", "diffie-hellman-group-exchange-sha256",
				"kex-strict-s-v00@openssh.com", "ext-info-c", "gss-curve25519-sha256-"}},
		{"cipher", WeakCipher,
			[]string{"aes128-cbc", "aes256-cbc", "3des-cbc", "blowfish-cbc", "cast128-cbc", "arcfour", "arcfour128", "arcfour256", "rijndael-cbc@lysator.liu.se", "none"},
			[]string{"chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"}},
		{"mac", WeakMAC,
			[]string{"hmac-sha1", "hmac-sha1-96", "hmac-sha1-etm@openssh.com", "hmac-md5", "hmac-md5-96", "hmac-md5-etm@openssh.com", "umac-64@openssh.com", "umac-64-etm@openssh.com", "hmac-ripemd160"},
			[]string{"hmac-sha2-256", "hmac-sha2-512", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "umac-128@openssh.com", "umac-128-etm@openssh.com"}},
		{"hostkey", WeakHostKeyAlgorithm,
			[]string{"ssh-dss", "ssh-rsa", "ssh-rsa-cert-v01@openssh.com", "ecdsa-sha2-nistp256"},
			[]string{"ssh-ed25519", "rsa-sha2-256", "rsa-sha2-512", "ssh-ed25519-cert-v01@openssh.com", "sk-ssh-ed25519@openssh.com"}},
	} {
		for _, n := range tc.weak {
			if !tc.fn(n) {
				t.Errorf("%s: %s should be weak", tc.name, n)
			}
			if WhyWeak(n) == "" {
				t.Errorf("%s: %s has no reason", tc.name, n)
			}
		}
		for _, n := range tc.fine {
			if tc.fn(n) {
				t.Errorf("%s: %s should not be weak", tc.name, n)
			}
		}
	}
	for _, tbl := range []map[string]string{weakKex, weakGSSKexPrefixes, weakCiphers, weakMACs, weakHostKeyAlgs} {
		for n, r := range tbl {
			if r == "" {
				t.Errorf("%s: empty reason", n)
			}
		}
	}
}

func TestPostQuantumAndMarkers(t *testing.T) {
	for _, n := range []string{"mlkem768x25519-sha256", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"} {
		if !PostQuantumKex(n) || WeakKex(n) {
			t.Errorf("%s: want post-quantum, not weak", n)
		}
	}
	for _, n := range []string{"curve25519-sha256", "ecdh-sha2-nistp256", "sntrup4591761x25519-sha512@tinyssh.org"} {
		if PostQuantumKex(n) {
			t.Errorf("%s is not post-quantum", n)
		}
	}
	if !StrictKexMarker("kex-strict-s-v00@openssh.com") || !StrictKexMarker("kex-strict-c-v00@openssh.com") || StrictKexMarker("ext-info-s") {
		t.Error("StrictKexMarker")
	}
	if !PseudoKex("ext-info-s") || !PseudoKex(StrictKexServer) || PseudoKex("curve25519-sha256") {
		t.Error("PseudoKex")
	}
	if !PostQuantumHostKey("ssh-mldsa-65") || PostQuantumHostKey("ssh-ed25519") {
		t.Error("PostQuantumHostKey")
	}
}

// The Debian 12 defaults, as sshd -T prints them, hold exactly the weak
// algorithms one expects an audit to report.
func TestDebianDefaultsClassified(t *testing.T) {
	f, err := os.Open("testdata/sshd-T-debian12.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e, err := ParseT(f)
	if err != nil {
		t.Fatal(err)
	}
	var weak []string
	for _, k := range e.List("kexalgorithms") {
		if WeakKex(k) {
			weak = append(weak, k)
		}
	}
	for _, c := range e.List("ciphers") {
		if WeakCipher(c) {
			weak = append(weak, c)
		}
	}
	for _, m := range e.List("macs") {
		if WeakMAC(m) {
			weak = append(weak, m)
		}
	}
	want := "ecdh-sha2-nistp256 ecdh-sha2-nistp384 ecdh-sha2-nistp521 umac-64-etm@openssh.com hmac-sha1-etm@openssh.com umac-64@openssh.com hmac-sha1"
	if got := strings.Join(weak, " "); got != want {
		t.Errorf("weak defaults:\n got %s\nwant %s", got, want)
	}
}

func TestTerrapinExposed(t *testing.T) {
	strict := []string{"curve25519-sha256", StrictKexServer}
	plain := []string{"curve25519-sha256"}
	for _, tc := range []struct {
		name string
		k    KexInit
		want bool
	}{
		{"chacha without strict", KexInit{Kex: plain, CiphersCS: []string{"chacha20-poly1305@openssh.com"}}, true},
		{"chacha with strict", KexInit{Kex: strict, CiphersCS: []string{"chacha20-poly1305@openssh.com"}}, false},
		{"cbc+etm", KexInit{Kex: plain, CiphersSC: []string{"aes128-cbc"}, MACsSC: []string{"hmac-sha2-256-etm@openssh.com"}}, true},
		{"cbc without etm", KexInit{Kex: plain, CiphersSC: []string{"aes128-cbc"}, MACsSC: []string{"hmac-sha2-256"}}, false},
		{"gcm only", KexInit{Kex: plain, CiphersCS: []string{"aes256-gcm@openssh.com"}, MACsCS: []string{"hmac-sha2-256-etm@openssh.com"}}, false},
	} {
		if got := TerrapinExposed(tc.k); got != tc.want {
			t.Errorf("%s: TerrapinExposed = %v, want %v", tc.name, got, tc.want)
		}
	}
}
