package statuspage

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/schema"
)

// TLS is status_page.tls: serve the page over https, with a certificate
// moat makes for the listen address (self_signed) or one the operator
// provides (cert_file and key_file: Tailscale's `tailscale cert`, an
// internal CA's).
type TLS struct {
	// SelfSigned has moat make a certificate for the listen address once
	// and keep it in the state directory; its SHA-256 fingerprint is in
	// `moat status`, to compare with what the browser shows.
	SelfSigned bool `yaml:"self_signed"`
	// Tailscale has moat ask `tailscale cert` for the node's MagicDNS
	// name's certificate (publicly trusted: no warning, no pin), kept in
	// the state directory and renewed daily.
	Tailscale bool   `yaml:"tailscale"`
	CertFile  string `yaml:"cert_file"`
	KeyFile   string `yaml:"key_file"`
}

func (c *TLS) validate() []error {
	if c == nil {
		return nil
	}
	var errs []error
	files := c.CertFile != "" || c.KeyFile != ""
	modes := 0
	for _, on := range []bool{c.SelfSigned, c.Tailscale, files} {
		if on {
			modes++
		}
	}
	switch {
	case modes > 1:
		errs = append(errs, schema.Errorf("tls", "more than one of self_signed, tailscale and cert_file/key_file: choose one"))
	case modes == 0:
		errs = append(errs, schema.Errorf("tls", "empty: set self_signed: true, tailscale: true, or cert_file and key_file"))
	case files && (c.CertFile == "" || c.KeyFile == ""):
		errs = append(errs, schema.Errorf("tls", "cert_file and key_file go together"))
	}
	for k, p := range map[string]string{"tls.cert_file": c.CertFile, "tls.key_file": c.KeyFile} {
		if p != "" && !strings.HasPrefix(p, "/") {
			errs = append(errs, schema.Errorf(k, "%q: expected an absolute path", p))
		}
	}
	return errs
}

// Cert is the page's certificate in force.
type Cert struct {
	cert tls.Certificate
	// Fingerprint is the SHA-256 of the certificate, as browsers show it
	// (AB:CD:...).
	Fingerprint string
	// SPKI is the base64 SHA-256 of its public key (a pin for Chromium's
	// --ignore-certificate-errors-spki-list, curl's --pinnedpubkey).
	SPKI string
	// Names are its DNS names: Host headers the page answers to over TLS.
	Names    []string
	NotAfter time.Time
	// File is where it was read from.
	File       string
	SelfSigned bool
}

// Certificate files moat keeps in the state directory.
const (
	SelfSignedCert = "status-page.crt"
	SelfSignedKey  = "status-page.key"
	TailscaleCert  = "status-page-tailscale.crt"
	TailscaleKey   = "status-page-tailscale.key"
)

// selfSignedLife is how long a made certificate lasts; it is made again
// within selfSignedRenew of its end (a new fingerprint, logged).
const (
	selfSignedLife  = 5 * 365 * 24 * time.Hour
	selfSignedRenew = 30 * 24 * time.Hour
)

// LoadCert reads the certificate c names, or for self_signed the one in
// stateDir, made (once) when missing, expiring or not for listen's address.
// made reports a new self-signed certificate.
func LoadCert(c *TLS, listen, stateDir string, now time.Time) (cert *Cert, made bool, err error) {
	if c == nil {
		return nil, false, nil
	}
	if c.Tailscale {
		return nil, false, errors.New("status page tls: the tailscale certificate is fetched by moat run")
	}
	if !c.SelfSigned {
		cert, err := readPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, false, err
		}
		return cert, false, nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, false, fmt.Errorf("status page tls: listen %q: %w", listen, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, false, fmt.Errorf("status page tls: listen %q: %w", listen, err)
	}
	certPath, keyPath := filepath.Join(stateDir, SelfSignedCert), filepath.Join(stateDir, SelfSignedKey)
	if cur, err := readPair(certPath, keyPath); err == nil && cur.covers(ip) && now.Add(selfSignedRenew).Before(cur.NotAfter) {
		cur.SelfSigned = true
		return cur, false, nil
	}
	if err := makeSelfSigned(certPath, keyPath, ip, now); err != nil {
		return nil, false, err
	}
	cur, err := readPair(certPath, keyPath)
	if err != nil {
		return nil, false, err
	}
	cur.SelfSigned = true
	return cur, true, nil
}

func (c *Cert) covers(ip netip.Addr) bool {
	leaf := c.cert.Leaf
	return slices.ContainsFunc(leaf.IPAddresses, func(a net.IP) bool {
		b, ok := netip.AddrFromSlice(a)
		return ok && b.Unmap() == ip.Unmap()
	})
}

// readPair loads a certificate and its key; the key must be readable by
// its owner only.
func readPair(certPath, keyPath string) (*Cert, error) {
	fi, err := os.Stat(keyPath)
	if err != nil {
		return nil, fmt.Errorf("status page tls key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("status page tls key %s is mode %#o: chmod 600 %s", keyPath, fi.Mode().Perm(), keyPath)
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("status page tls: %w (cert_file %s, key_file %s: PEM, the key matching the certificate)", err, certPath, keyPath)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("status page tls: %s: %w", certPath, err)
		}
		pair.Leaf = leaf
	}
	return &Cert{cert: pair, Fingerprint: Fingerprint(leaf.Raw), SPKI: SPKIPin(leaf), Names: leaf.DNSNames,
		NotAfter: leaf.NotAfter, File: certPath}, nil
}

// Fingerprint is a certificate's SHA-256 as browsers show it.
func Fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range h {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// SPKIPin is the base64 SHA-256 of a certificate's public key.
func SPKIPin(c *x509.Certificate) string {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(h[:])
}

func makeSelfSigned(certPath, keyPath string, ip netip.Addr, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("status page tls: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("status page tls: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "moat status page " + ip.String()},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(selfSignedLife),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{ip.AsSlice()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("status page tls: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("status page tls: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return fmt.Errorf("status page tls: %w", err)
	}
	// The key first: a certificate never stands beside a key not its own
	// for longer than the two renames.
	if err := change.WriteAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return fmt.Errorf("status page tls key: %w", err)
	}
	if err := change.WriteAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("status page tls certificate: %w", err)
	}
	return nil
}

var errNoCert = errors.New("status page: not serving TLS now")
