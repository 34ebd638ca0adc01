package gateway

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"

	"github.com/mholt/acmez/v3"
)

// errUnknownName aborts a handshake for a name no site has. The connection
// is closed first, so the client gets no certificate and no alert: the
// address looks like it speaks no TLS for that name at all.
var errUnknownName = errors.New("no site for this server name")

// tlsConfig is the HTTPS listener's configuration: TLS 1.2 and 1.3 only,
// forward-secret AEAD suites only, certificates chosen per SNI.
func (g *Gateway) tlsConfig() *tls.Config {
	protos := []string{"h2", "http/1.1"}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// TLS 1.3 suites are fixed by crypto/tls and all modern; these are
		// the TLS 1.2 ones.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos:     append(protos, acmez.ACMETLS1Protocol),
		GetCertificate: g.getCertificate,
	}
}

func (g *Gateway) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	rt := g.rt.Load()
	name := normalizeHost(hello.ServerName)
	if c := rt.static[name]; c != nil {
		return c, nil
	}
	if w := wildcardOf(name); w != "" {
		if c := rt.static[w]; c != nil {
			return c, nil
		}
	}
	if name != "" && rt.acmeHosts[name] {
		if a := g.acme.Load(); a != nil {
			// certmagic also answers tls-alpn-01 challenges here.
			return a.magic.GetCertificate(hello)
		}
	}
	g.metrics.dropped.WithLabelValues(dropUnknownSNI).Inc()
	if hello.Conn != nil {
		hello.Conn.Close()
	}
	return nil, errUnknownName
}

// tlsSniffConn refuses, by closing, a connection whose first byte is not a
// TLS handshake record, before crypto/tls sees it: otherwise net/http
// answers plain HTTP on the HTTPS port with its own 400, which names Go.
type tlsSniffConn struct {
	net.Conn
	checked atomic.Bool
	onBad   func()
}

const recordTypeHandshake = 0x16

func (c *tlsSniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.checked.Load() {
		c.checked.Store(true)
		if p[0] != recordTypeHandshake {
			c.onBad()
			c.Conn.Close()
			return 0, io.EOF
		}
	}
	return n, err
}
