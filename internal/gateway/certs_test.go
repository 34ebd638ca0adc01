package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// selfSigned writes a certificate for name valid until notAfter.
func selfSigned(t *testing.T, name string, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func TestCertificates(t *testing.T) {
	notAfter := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
	cert, key := selfSigned(t, "static.test", notAfter)
	up := []Route{{Path: "/", Upstream: "http://127.0.0.1:1"}}
	g, err := New(Config{
		HTTP: "127.0.0.1:0", HTTPS: "127.0.0.1:0",
		ACME: ACMEConfig{Storage: t.TempDir(), CA: "https://127.0.0.1:1/directory"},
		Sites: []Site{
			{Host: "static.test", Certificate: cert, Key: key, Routes: up},
			{Host: "acme.test", Routes: up},
		},
	}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	got := g.Certificates()
	if len(got) != 2 {
		t.Fatalf("Certificates() = %+v, want two sites", got)
	}
	if a := got[0]; a.Host != "acme.test" || a.Source != CertACME || !a.NotAfter.IsZero() || a.Err != "" {
		t.Errorf("ACME site before any certificate = %+v", a)
	}
	if s := got[1]; s.Host != "static.test" || s.Source != CertFile || !s.NotAfter.Equal(notAfter) {
		t.Errorf("static site = %+v, want not after %s", s, notAfter)
	}

	// A failed renewal shows until the next success.
	g.acme.Load().failures.note("cert_failed", map[string]any{"identifier": "acme.test", "renewal": true, "error": errors.New("rate limited")})
	if e := g.Certificates()[0].Err; e != "rate limited" {
		t.Errorf("after cert_failed, Err = %q", e)
	}
	g.acme.Load().failures.note("cert_obtained", map[string]any{"identifier": "acme.test"})
	if e := g.Certificates()[0].Err; e != "" {
		t.Errorf("after cert_obtained, Err = %q", e)
	}
}
