package daemon

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/statuspage"
	"github.com/moat-sh/moat/internal/tailscale/tailscaletest"
)

// status_page.tls.tailscale: moat asks tailscaled for the node's MagicDNS
// name and `tailscale cert` for its certificate, kept in the state
// directory with a key only moat reads. tailscale is not installed here:
// a stand-in command records its arguments and writes a certificate for
// the name, with the key world-readable (moat must fix that).
func TestStatusPageTailscaleCert(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o700)
	writeTestCert(t, filepath.Join(src, "c.pem"), filepath.Join(src, "k.pem"), "vps.tail1234.ts.net")
	argsFile := filepath.Join(dir, "args")
	cli := filepath.Join(dir, "tailscale")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" > %s\n[ \"$1\" = cert ] || exit 2\n"+
		"cp %s \"$3\" && cp %s \"$5\" && chmod 644 \"$5\"\n", argsFile, filepath.Join(src, "c.pem"), filepath.Join(src, "k.pem"))
	if err := os.WriteFile(cli, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	sock := tailscaletest.Serve(t, tailscaletest.Answers{"/localapi/v0/status": tailscaletest.Fixture("status-expiry-near.json")})
	state := filepath.Join(dir, "state")
	d := &Daemon{o: Options{StateDir: state, tailscaleSocket: sock, tailscaleCLI: cli}, log: slog.New(slog.DiscardHandler)}
	c := &statuspage.Config{Listen: "100.101.102.103:9470", TLS: &statuspage.TLS{Tailscale: true}}
	cert, err := d.statusPageCert(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(state, statuspage.TailscaleCert), filepath.Join(state, statuspage.TailscaleKey)
	args, _ := os.ReadFile(argsFile)
	if want := "cert --cert-file " + certPath + " --key-file " + keyPath + " vps.tail1234.ts.net"; strings.TrimSpace(string(args)) != want {
		t.Errorf("tailscale ran with %q, want %q", args, want)
	}
	if !slices.Contains(cert.Names, "vps.tail1234.ts.net") || cert.File != certPath {
		t.Errorf("certificate %s for %v", cert.File, cert.Names)
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the key's mode: %v %v, want 0600", fi.Mode(), err)
	}

	// No tailscale command: a clear error, no certificate.
	d.o.tailscaleCLI = filepath.Join(dir, "missing")
	if _, err := d.statusPageCert(context.Background(), c); err == nil || !strings.Contains(err.Error(), "status_page.tls.tailscale") {
		t.Errorf("no tailscale command: %v", err)
	}
	// tailscaled absent: a clear error, no certificate.
	d.o.tailscaleCLI, d.o.tailscaleSocket = cli, filepath.Join(dir, "no.sock")
	if _, err := d.statusPageCert(context.Background(), c); err == nil || !strings.Contains(err.Error(), "status_page.tls.tailscale") {
		t.Errorf("no tailscaled: %v", err)
	}
}

func writeTestCert(t *testing.T, certPath, keyPath, name string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}

// Without a daemon, `moat status` still shows the self-signed
// certificate's fingerprint from the state directory.
func TestOfflineStatusPageFingerprint(t *testing.T) {
	state := t.TempDir()
	if offlineStatusPage(state) != nil {
		t.Fatal("a status page shown with no certificate")
	}
	cert, _, err := statuspage.LoadCert(&statuspage.TLS{SelfSigned: true}, "10.8.0.1:9470", state, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	i := offlineStatusPage(state)
	if i == nil || i.SHA256 != cert.Fingerprint {
		t.Fatalf("offline: %+v, want %s", i, cert.Fingerprint)
	}
	var b strings.Builder
	writeStatusPage(&b, i)
	if !strings.Contains(b.String(), "SHA-256 "+cert.Fingerprint) || strings.Contains(b.String(), "not listening") {
		t.Errorf("text:\n%s", b.String())
	}
}
