package daemon

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/control"
	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/statuspage"
)

// pageConn is one kept-alive connection to the status page.
type pageConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialPage(t *testing.T, addr string, conf *tls.Config) (*pageConn, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if conf != nil {
		tc := tls.Client(c, conf)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	t.Cleanup(func() { c.Close() })
	return &pageConn{c: c, br: bufio.NewReader(c)}, nil
}

// get asks for /api/status with a Bearer token: the status code, 0 when
// the connection failed.
func (p *pageConn) get(token string) int {
	p.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(p.c, "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n", token); err != nil {
		return 0
	}
	r, err := http.ReadResponse(p.br, nil)
	if err != nil {
		return 0
	}
	r.Body.Close()
	return r.StatusCode
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestReloadStatusPage changes status_page under a running daemon through
// the control socket's reload (what `moat reload` and SIGHUP do): a new
// token in the token file takes at once, on a connection kept alive from
// before too; a listen address that cannot be bound refuses the reload and
// the page serves on as before; a new address with TLS takes without a
// restart, the old address closed, the self-signed certificate's
// fingerprint in the status matching what the page serves; adding or
// removing the section is refused (a restart).
func TestReloadStatusPage(t *testing.T) {
	lab.RequireRoot(t) // the control socket answers root only
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	tokenFile := filepath.Join(dir, "status-token")
	writeToken := func(tok string) {
		if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "moat.yaml")
	writeCfg := func(page string) {
		if err := os.WriteFile(cfgPath, []byte("guard:\n  enabled: false\n"+page), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	section := func(listen, extra string) string {
		return fmt.Sprintf("status_page:\n  listen: %s\n  token_file: %s\n%s", listen, tokenFile, extra)
	}
	const tokA, tokB = "first-token-0123456789abcdef", "second-token-0123456789abcdef"
	writeToken(tokA)
	a1 := freeLoopback(t)
	writeCfg(section(a1, ""))

	sock := filepath.Join(dir, "moat.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: cfgPath, Explicit: true, Socket: sock, StateDir: state,
			Log: slog.New(slog.DiscardHandler), Sets: &recordingSets{elems: map[netip.Prefix]bool{}},
			CheckEvery: time.Hour, AuditEvery: time.Hour})
	}()
	defer func() {
		cancel()
		<-done
	}()
	call := func(cmd string, out any) error {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		return control.Call(cctx, sock, cmd, nil, out)
	}
	reload := func() error {
		var msg string
		return call(control.CmdReload, &msg)
	}
	status := func() *StatusPageInfo {
		var st Status
		if err := call(control.CmdStatus, &st); err != nil {
			t.Fatal(err)
		}
		return st.StatusPage
	}
	status200 := func(addr string, conf *tls.Config, tok string) bool {
		c, err := dialPage(t, addr, conf)
		return err == nil && c.get(tok) == 200
	}
	waitUntil(t, 20*time.Second, "the page on "+a1, func() bool { return status200(a1, nil, tokA) })
	// The page may serve before the control socket listens.
	waitUntil(t, 20*time.Second, "the control socket", func() bool { var st Status; return call(control.CmdStatus, &st) == nil })
	kept, err := dialPage(t, a1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := kept.get(tokA); s != 200 {
		t.Fatalf("token A: %d", s)
	}

	// 1. A new token in the file: the old one is refused from the reply
	// to the reload on, on the kept connection too.
	writeToken(tokB)
	if err := reload(); err != nil {
		t.Fatalf("reload with a new token: %v", err)
	}
	if s := kept.get(tokA); s == 200 {
		t.Error("after the reload the revoked token still works on a kept connection")
	}
	if !status200(a1, nil, tokB) {
		t.Error("the new token is refused")
	}

	// 2. An address that cannot be bound: refused, nothing changes.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	writeCfg(section(taken.Addr().String(), ""))
	if err := reload(); err == nil || !strings.Contains(err.Error(), "status page") {
		t.Fatalf("a reload onto a taken address: %v, want refused naming the status page", err)
	}
	if !status200(a1, nil, tokB) {
		t.Error("after a refused reload the page no longer serves as before")
	}

	// 3. A new address with TLS.
	a2 := freeLoopback(t)
	writeCfg(section(a2, "  tls:\n    self_signed: true\n"))
	if err := reload(); err != nil {
		t.Fatalf("reload to TLS on a new address: %v", err)
	}
	info := status()
	if info == nil || info.URL != "https://"+a2+"/" || info.TLS != "self-signed" || info.SHA256 == "" {
		t.Fatalf("status after the reload: %+v", info)
	}
	waitUntil(t, 10*time.Second, "the old address to close", func() bool {
		c, err := net.DialTimeout("tcp", a1, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	onDisk := readCertFile(t, filepath.Join(state, statuspage.SelfSignedCert))
	if got := statuspage.Fingerprint(onDisk.Raw); got != info.SHA256 {
		t.Errorf("the status says %s, the file holds %s", info.SHA256, got)
	}
	for _, f := range []string{statuspage.SelfSignedCert, statuspage.SelfSignedKey} {
		if fi, err := os.Stat(filepath.Join(state, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, want mode 0600", f, err)
		}
	}
	pinned := &tls.Config{InsecureSkipVerify: true, VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
		if statuspage.Fingerprint(raw[0]) != info.SHA256 {
			return errors.New("not the certificate moat status names")
		}
		return nil
	}}
	if !status200(a2, pinned, tokB) {
		t.Error("https with the certificate moat status names: refused")
	}
	if status200(a2, nil, tokB) {
		t.Error("plain http served on the TLS listener")
	}

	// 4. Removing the section needs a restart.
	writeCfg("")
	if err := reload(); err == nil || !strings.Contains(err.Error(), "restart") {
		t.Errorf("removing status_page on reload: %v, want refused (restart)", err)
	}
	if !status200(a2, pinned, tokB) {
		t.Error("after a refused reload the page no longer serves")
	}
}

func readCertFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
