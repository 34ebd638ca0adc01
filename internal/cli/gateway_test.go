package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGatewayCheck(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "app.example.com"},
		DNSNames: []string{"app.example.com"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	kder, _ := x509.MarshalECPrivateKey(key)
	cert, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	site := "gateway:\n  sites:\n    - host: app.example.com\n      certificate: " + cert + "\n      key: " + keyFile + "\n      routes:\n        - upstream: http://127.0.0.1:3000\n"
	cases := []struct {
		name, yaml string
		code       int
		out        string
	}{
		{"good", site, ExitOK, "gateway ok (1 sites)"},
		{"no section", "ssh:\n  port: 22\n", ExitUsage, "has no gateway section"},
		{"invalid", strings.Replace(site, "http://127.0.0.1:3000", "ftp://x", 1), ExitUsage, "expected an upstream"},
		{"missing htpasswd", site + "          basic_auth: {htpasswd: " + filepath.Join(dir, "none") + "}\n", ExitUsage, "read htpasswd"},
		{"geo without database", site + "          geo: {deny: [KP]}\n", ExitUsage, "country database"},
	}
	for _, c := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yaml")
		os.WriteFile(path, []byte(c.yaml), 0o600)
		var stdout, stderr bytes.Buffer
		code := Main([]string{"gateway", "check", "-c", path}, nil, &stdout, &stderr)
		if code != c.code || !strings.Contains(stdout.String()+stderr.String(), c.out) {
			t.Errorf("%s: exit %d, want %d, %q\n%s%s", c.name, code, c.code, c.out, stdout.String(), stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := Main([]string{"gateway"}, nil, &stderr, &stderr); code != ExitUsage || !strings.Contains(stderr.String(), "moat gateway serve") {
		t.Errorf("usage: %d %s", code, stderr.String())
	}
}
