package sshd

import "strings"

// What is weak and why. The tables name each algorithm once with the
// reason an audit can show the operator; the predicates only look names up.
// Sources: OpenSSH release notes (openssh.com/releasenotes.html), RFC 9142
// (key exchange recommendations), RFC 8758 (RC4 deprecation), and the
// attacks named per entry. Names OpenSSH prints for GSSAPI key exchange
// ("gss-group14-sha1-") are prefixes of the wire names and are matched as
// such.

const (
	reasonSHA1Kex   = "key exchange hashed with SHA-1, which has practical chosen-prefix collisions (Leurent and Peyrin 2020); RFC 9142 moves SHA-1 methods to SHOULD NOT"
	reasonGroup1    = "1024-bit Diffie-Hellman group: within reach of precomputation (Logjam, Adrian et al. 2015); disabled by default since OpenSSH 7.0"
	reasonNISTCurve = "NIST P-curve, whose generation seeds are unexplained; Curve25519 and the post-quantum hybrids are preferred everywhere OpenSSH runs"
	reasonCBC       = "CBC mode in SSH leaks plaintext (Albrecht, Paterson and Watson 2009, CVE-2008-5161); off by default since OpenSSH 6.7"
	reason64Block   = "64-bit block cipher: birthday attacks after a few GB (Sweet32, Bhargavan and Leurent 2016)"
	reasonRC4       = "RC4 keystream biases; RFC 8758 deprecates RC4 in SSH; removed in OpenSSH 7.6"
	reasonNone      = "no protection at all"
	reasonMD5       = "MD5-based MAC: MD5 has been broken since 2004 (Wang et al.)"
	reasonSHA1MAC   = "SHA-1-based MAC: not known broken as an HMAC, but SHA-1 is deprecated and SHA-2 MACs are available in every supported OpenSSH"
	reasonMAC64     = "64-bit tag: forgeries after about 2^32 attempts; prefer umac-128 or HMAC-SHA-2"
	reasonRIPEMD    = "HMAC-RIPEMD-160 was removed in OpenSSH 7.6"
	reasonTrunc     = "MAC truncated to 96 bits of a deprecated hash"
	reasonDSA       = "DSA: fixed 1024-bit keys and SHA-1 signatures; disabled by default in OpenSSH 7.0, removed in 10.0"
	reasonRSASHA1   = "RSA with SHA-1 signatures (ssh-rsa); disabled by default since OpenSSH 8.8, use rsa-sha2-256/512"
	reasonCertV00   = "legacy v00 certificate format, removed in OpenSSH 7.0"
)

var weakKex = map[string]string{
	"diffie-hellman-group1-sha1":         reasonGroup1,
	"diffie-hellman-group14-sha1":        reasonSHA1Kex,
	"diffie-hellman-group-exchange-sha1": reasonSHA1Kex,
	"rsa1024-sha1":                       reasonSHA1Kex,
	"ecdh-sha2-nistp256":                 reasonNISTCurve,
	"ecdh-sha2-nistp384":                 reasonNISTCurve,
	"ecdh-sha2-nistp521":                 reasonNISTCurve,
}

// weakGSSKexPrefixes are GSSAPI key exchange families; the wire name
// appends a base64 mechanism hash.
var weakGSSKexPrefixes = map[string]string{
	"gss-group1-sha1-":     reasonGroup1,
	"gss-group14-sha1-":    reasonSHA1Kex,
	"gss-gex-sha1-":        reasonSHA1Kex,
	"gss-nistp256-sha256-": reasonNISTCurve,
}

var weakCiphers = map[string]string{
	"3des-cbc":                    reason64Block,
	"blowfish-cbc":                reason64Block,
	"cast128-cbc":                 reason64Block,
	"des-cbc":                     reason64Block,
	"des-cbc@ssh.com":             reason64Block,
	"idea-cbc":                    reason64Block,
	"aes128-cbc":                  reasonCBC,
	"aes192-cbc":                  reasonCBC,
	"aes256-cbc":                  reasonCBC,
	"rijndael-cbc@lysator.liu.se": reasonCBC,
	"twofish-cbc":                 reasonCBC,
	"twofish128-cbc":              reasonCBC,
	"twofish192-cbc":              reasonCBC,
	"twofish256-cbc":              reasonCBC,
	"serpent128-cbc":              reasonCBC,
	"serpent192-cbc":              reasonCBC,
	"serpent256-cbc":              reasonCBC,
	"arcfour":                     reasonRC4,
	"arcfour128":                  reasonRC4,
	"arcfour256":                  reasonRC4,
	"none":                        reasonNone,
	"3des-ctr":                    reason64Block,
	"blowfish-ctr":                reason64Block,
	"cast128-ctr":                 reason64Block,
}

var weakMACs = map[string]string{
	"hmac-md5":                       reasonMD5,
	"hmac-md5-96":                    reasonMD5,
	"hmac-md5-etm@openssh.com":       reasonMD5,
	"hmac-md5-96-etm@openssh.com":    reasonMD5,
	"hmac-sha1":                      reasonSHA1MAC,
	"hmac-sha1-etm@openssh.com":      reasonSHA1MAC,
	"hmac-sha1-96":                   reasonTrunc,
	"hmac-sha1-96-etm@openssh.com":   reasonTrunc,
	"umac-64@openssh.com":            reasonMAC64,
	"umac-64-etm@openssh.com":        reasonMAC64,
	"hmac-ripemd160":                 reasonRIPEMD,
	"hmac-ripemd160@openssh.com":     reasonRIPEMD,
	"hmac-ripemd160-etm@openssh.com": reasonRIPEMD,
	"none":                           reasonNone,
}

var weakHostKeyAlgs = map[string]string{
	"ssh-dss":                                  reasonDSA,
	"ssh-dss-cert-v01@openssh.com":             reasonDSA,
	"ssh-dss-cert-v00@openssh.com":             reasonCertV00,
	"ssh-rsa":                                  reasonRSASHA1,
	"ssh-rsa-cert-v01@openssh.com":             reasonRSASHA1,
	"ssh-rsa-cert-v00@openssh.com":             reasonCertV00,
	"ecdsa-sha2-nistp256":                      reasonNISTCurve,
	"ecdsa-sha2-nistp384":                      reasonNISTCurve,
	"ecdsa-sha2-nistp521":                      reasonNISTCurve,
	"ecdsa-sha2-nistp256-cert-v01@openssh.com": reasonNISTCurve,
	"ecdsa-sha2-nistp384-cert-v01@openssh.com": reasonNISTCurve,
	"ecdsa-sha2-nistp521-cert-v01@openssh.com": reasonNISTCurve,
}

// WeakKex reports whether a key exchange algorithm should be disabled:
// SHA-1 hashing, 1024-bit groups or NIST curves. Pseudo-algorithms
// (ext-info-*, kex-strict-*) are not weak.
func WeakKex(name string) bool { return kexReason(name) != "" }

func kexReason(name string) string {
	if r, ok := weakKex[name]; ok {
		return r
	}
	for p, r := range weakGSSKexPrefixes {
		if strings.HasPrefix(name, p) {
			return r
		}
	}
	return ""
}

// WeakCipher reports whether a cipher should be disabled: CBC modes,
// 64-bit blocks, RC4, none. chacha20-poly1305@openssh.com is not weak; its
// Terrapin exposure is a property of the server (see TerrapinExposed).
func WeakCipher(name string) bool { _, ok := weakCiphers[name]; return ok }

// WeakMAC reports whether a MAC should be disabled: MD5, SHA-1 (full or
// truncated), 64-bit UMAC, RIPEMD-160, none.
func WeakMAC(name string) bool { _, ok := weakMACs[name]; return ok }

// MACThenEncrypt reports whether a MAC that is not weak in itself is the
// encrypt-and-MAC kind (hmac-sha2-256, hmac-sha2-512, umac-128): the
// -etm@openssh.com variant of each authenticates the ciphertext, so the
// plain one is worth dropping, at low priority.
func MACThenEncrypt(name string) bool {
	return !WeakMAC(name) && (strings.HasPrefix(name, "hmac-") || strings.HasPrefix(name, "umac-")) &&
		!strings.HasSuffix(name, "-etm@openssh.com")
}

// WeakHostKeyAlgorithm reports whether a host key (signature) algorithm
// should be disabled: DSA, RSA with SHA-1, legacy certificates, NIST
// curves. rsa-sha2-256/512 are fine (their key size is judged by
// HostKey.Weakness).
func WeakHostKeyAlgorithm(name string) bool { _, ok := weakHostKeyAlgs[name]; return ok }

// WhyWeak returns the reason an algorithm of any kind is weak, for a
// finding's text, or "" if it is not known to be weak.
func WhyWeak(name string) string {
	if r := kexReason(name); r != "" {
		return r
	}
	for _, t := range []map[string]string{weakCiphers, weakMACs, weakHostKeyAlgs} {
		if r, ok := t[name]; ok {
			return r
		}
	}
	return ""
}

// Post-quantum hybrid key exchanges, which protect recorded sessions
// against a future quantum computer ("store now, decrypt later"):
//   - sntrup761x25519-sha512@openssh.com: Streamlined NTRU Prime + X25519,
//     added in OpenSSH 8.5, the default since 9.0;
//   - sntrup761x25519-sha512: the same under its IETF name, OpenSSH 9.9;
//   - mlkem768x25519-sha256: ML-KEM (FIPS 203) + X25519, OpenSSH 9.9, the
//     default since 10.0 (10.1 warns when a session does not use one).
//   - mlkem768nistp256-sha256, mlkem1024nistp384-sha384: the ML-KEM
//     hybrids with NIST curves from the same IETF draft.
var postQuantumKex = map[string]bool{
	"sntrup761x25519-sha512@openssh.com": true,
	"sntrup761x25519-sha512":             true,
	"mlkem768x25519-sha256":              true,
	"mlkem768nistp256-sha256":            true,
	"mlkem1024nistp384-sha384":           true,
}

// PostQuantumKex reports whether a key exchange algorithm is a
// post-quantum hybrid.
func PostQuantumKex(name string) bool { return postQuantumKex[name] }

// Pseudo-algorithms carried in the key exchange list to signal features,
// never negotiated as a method.
const (
	// StrictKexServer in a server's KEXINIT announces strict key exchange,
	// the OpenSSH 9.6 countermeasure to Terrapin (CVE-2023-48795), which
	// distributions backported (Debian 12 from 1:9.2p1-2+deb12u2).
	StrictKexServer = "kex-strict-s-v00@openssh.com"
	// StrictKexClient is the client's counterpart.
	StrictKexClient = "kex-strict-c-v00@openssh.com"
	// ExtInfoServer and ExtInfoClient announce RFC 8308 extension
	// negotiation.
	ExtInfoServer = "ext-info-s"
	ExtInfoClient = "ext-info-c"
)

// StrictKexMarker reports whether name is a strict key exchange marker.
func StrictKexMarker(name string) bool { return name == StrictKexServer || name == StrictKexClient }

// PseudoKex reports whether a key exchange list entry is a feature marker
// rather than a method (so audits do not judge it as one).
func PseudoKex(name string) bool {
	switch name {
	case StrictKexServer, StrictKexClient, ExtInfoServer, ExtInfoClient:
		return true
	}
	return false
}

// TerrapinExposed reports whether a server that offers this KEXINIT is
// open to the Terrapin prefix truncation attack (CVE-2023-48795, Bäumer,
// Brinkmann and Schwenk 2023): it does not announce strict key exchange
// and offers chacha20-poly1305@openssh.com, or a CBC cipher together with
// an encrypt-then-MAC MAC.
func TerrapinExposed(k KexInit) bool {
	if k.StrictKex() {
		return false
	}
	hasCBC, hasEtM := false, false
	for _, c := range append(append([]string(nil), k.CiphersCS...), k.CiphersSC...) {
		if c == "chacha20-poly1305@openssh.com" {
			return true
		}
		if strings.HasSuffix(c, "-cbc") || strings.HasSuffix(c, "-cbc@lysator.liu.se") {
			hasCBC = true
		}
	}
	for _, m := range append(append([]string(nil), k.MACsCS...), k.MACsSC...) {
		if strings.HasSuffix(m, "-etm@openssh.com") {
			hasEtM = true
		}
	}
	return hasCBC && hasEtM
}
