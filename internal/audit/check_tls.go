package audit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// checkTLS looks at what this host serves on 443: for each configured
// domain (by SNI) or, with none, whatever answers without SNI.
func checkTLS(f *facts, o *out) {
	if !f.h.Live() {
		o.na("TLS-001", "TLS is checked on the live host only")
		o.na("TLS-002", "TLS is checked on the live host only")
		return
	}
	target := ""
	if ls, err := f.listeners(); err == nil {
		for _, l := range ls {
			if l.Proto == "tcp" && l.Addr.Port() == 443 {
				a := l.Addr.Addr()
				if a.IsUnspecified() {
					a = netip.MustParseAddr("127.0.0.1")
					if l.Addr.Addr().Is6() {
						a = netip.IPv6Loopback()
					}
				}
				target = netip.AddrPortFrom(a, 443).String()
				break
			}
		}
	}
	if target == "" {
		o.na("TLS-001", "nothing listens on port 443")
		o.na("TLS-002", "nothing listens on port 443")
		return
	}
	names := f.o.Domains
	if len(names) == 0 {
		names = []string{""}
	}
	expiring, old := 0, 0
	for _, name := range names {
		subject := name
		if subject == "" {
			subject = target
		}
		cert, err := tlsHandshake(f.ctx, target, name, tls.VersionTLS12, tls.VersionTLS13)
		if err != nil {
			o.unknown("TLS-001", fmt.Errorf("%s: %w", subject, err))
			continue
		}
		left := cert.NotAfter.Sub(f.o.Now())
		ev := fmt.Sprintf("%s: certificate for %v expires %s (%s)", subject, cert.DNSNames, cert.NotAfter.Format(time.DateOnly), left.Round(time.Hour))
		switch {
		case left <= 0:
			o.failAt("TLS-001", Critical, subject, ev+": expired")
			expiring++
		case left < 14*24*time.Hour:
			o.fail("TLS-001", subject, ev)
			expiring++
		}
		if _, err := tlsHandshake(f.ctx, target, name, tls.VersionTLS10, tls.VersionTLS11); err == nil {
			o.fail("TLS-002", subject, subject+": a TLS 1.0/1.1 handshake succeeded")
			old++
		}
	}
	if expiring == 0 {
		o.pass("TLS-001", "")
	}
	if old == 0 {
		o.pass("TLS-002", "", "TLS 1.0 and 1.1 handshakes refused")
	}
}

func tlsHandshake(ctx context.Context, addr, sni string, minV, maxV uint16) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: &tls.Config{
		ServerName: sni, MinVersion: minV, MaxVersion: maxV,
		// We judge the certificate's dates ourselves; verification against
		// roots is the browser's job and would fail on loopback.
		InsecureSkipVerify: true, //nolint:gosec
	}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	certs := c.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("no certificate presented")
	}
	return certs[0], nil
}
