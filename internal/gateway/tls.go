package gateway

import (
	"crypto/tls"
	"errors"

	"github.com/mholt/acmez/v3"
)

// errUnknownName aborts a handshake for a name no site has. The connection
// is closed first, so the client gets no certificate and no alert. (Such
// a hello rarely gets this far: screenHello closes it before crypto/tls
// reads it.)
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
	// screenHello admitted only names servesName knows; this check stays
	// for a config swapped in between, and as the second line.
	name := normalizeHost(hello.ServerName)
	c, acme := g.rt.Load().certSource(name)
	if c != nil {
		return c, nil
	}
	if acme {
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

// certSource says where a normalised server name's certificate comes
// from: a static certificate (the name's own or its wildcard's), or ACME;
// neither for a name no site has.
func (rt *snapshot) certSource(name string) (static *tls.Certificate, acme bool) {
	if name == "" {
		return nil, false
	}
	if c := rt.static[name]; c != nil {
		return c, false
	}
	if w := wildcardOf(name); w != "" {
		if c := rt.static[w]; c != nil {
			return c, false
		}
	}
	return nil, rt.acmeHosts[name]
}
