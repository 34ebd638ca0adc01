package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// TLSInfo is what a TLS server shows a client that trusts nothing.
type TLSInfo struct {
	// Versions the server accepted, each tried alone.
	Versions []string `json:"versions"`
	// WeakSuites are TLS 1.2 suites without forward secrecy or with CBC,
	// 3DES or RC4 that the server agreed to when offered only those.
	WeakSuites []string `json:"weak_suites,omitempty"`
	// Handshakes: one per server name asked for, plus no SNI (what a
	// client that dials the bare IP sends: Go, like browsers, puts no IP
	// in SNI) and a made-up name.
	Handshakes []TLSHandshake `json:"handshakes"`
}

// TLSHandshake is one handshake's outcome.
type TLSHandshake struct {
	Case     string    `json:"case"` // "name", "no-sni", "unknown-name"
	SNI      string    `json:"sni,omitempty"`
	OK       bool      `json:"ok"`
	Error    string    `json:"error,omitempty"`
	Version  string    `json:"version,omitempty"`
	Suite    string    `json:"suite,omitempty"`
	Names    []string  `json:"cert_names,omitempty"`
	Issuer   string    `json:"issuer,omitempty"`
	NotAfter time.Time `json:"not_after,omitzero"`
}

// UnknownName is the made-up server name tried on every TLS port: a
// server that presents a certificate for it reveals its sites to anyone.
const UnknownName = "moat-probe.invalid"

var tlsVersions = []struct {
	v    uint16
	name string
}{{tls.VersionTLS10, "TLS1.0"}, {tls.VersionTLS11, "TLS1.1"}, {tls.VersionTLS12, "TLS1.2"}, {tls.VersionTLS13, "TLS1.3"}}

// probeTLS returns nil when the port does not speak TLS.
func (p *Prober) probeTLS(ctx context.Context, ap netip.AddrPort) *TLSInfo {
	info := &TLSInfo{}
	cases := []TLSHandshake{{Case: "no-sni"}, {Case: "unknown-name", SNI: UnknownName}}
	for _, n := range p.Names {
		cases = append(cases, TLSHandshake{Case: "name", SNI: n})
	}
	anyOK := false
	for _, c := range cases {
		st, err := p.handshake(ctx, ap, &tls.Config{ServerName: c.SNI})
		if err != nil {
			c.Error = Clean([]byte(err.Error()), 200)
			if !isTLSAlert(err) && c.Case == "no-sni" {
				// Not even an alert: the port may not speak TLS.
				if h := p.handshakeAnyName(ctx, ap); !h {
					return nil
				}
			}
		} else {
			anyOK = true
			c.OK = true
			c.Version = tls.VersionName(st.Version)
			c.Suite = tls.CipherSuiteName(st.CipherSuite)
			if len(st.PeerCertificates) > 0 {
				leaf := st.PeerCertificates[0]
				c.Names = certNames(leaf)
				c.Issuer = Clean([]byte(leaf.Issuer.String()), 120)
				c.NotAfter = leaf.NotAfter
			}
		}
		info.Handshakes = append(info.Handshakes, c)
	}
	if !anyOK && !slices.ContainsFunc(info.Handshakes, func(h TLSHandshake) bool { return strings.Contains(h.Error, "alert") }) {
		return nil
	}
	// Versions and weak suites: with the first name that worked.
	sni := ""
	for _, h := range info.Handshakes {
		if h.OK {
			sni = h.SNI
			break
		}
	}
	for _, v := range tlsVersions {
		if _, err := p.handshake(ctx, ap, &tls.Config{ServerName: sni, MinVersion: v.v, MaxVersion: v.v}); err == nil {
			info.Versions = append(info.Versions, v.name)
		}
	}
	var weak []uint16
	for _, s := range tls.InsecureCipherSuites() {
		weak = append(weak, s.ID)
	}
	for _, s := range tls.CipherSuites() {
		if !strings.HasPrefix(s.Name, "TLS_ECDHE_") && slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			weak = append(weak, s.ID) // RSA key exchange: no forward secrecy
		}
	}
	if st, err := p.handshake(ctx, ap, &tls.Config{ServerName: sni, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12, CipherSuites: weak}); err == nil {
		info.WeakSuites = append(info.WeakSuites, tls.CipherSuiteName(st.CipherSuite))
	}
	return info
}

// handshakeAnyName reports whether anything TLS-shaped answers at all,
// asking for the first configured name.
func (p *Prober) handshakeAnyName(ctx context.Context, ap netip.AddrPort) bool {
	for _, n := range p.Names {
		if _, err := p.handshake(ctx, ap, &tls.Config{ServerName: n}); err == nil || isTLSAlert(err) {
			return true
		}
	}
	return false
}

func (p *Prober) handshake(ctx context.Context, ap netip.AddrPort, cfg *tls.Config) (tls.ConnectionState, error) {
	c, err := p.conn(ctx, ap)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	cfg.InsecureSkipVerify = true // the certificate is read, not trusted: nothing secret follows
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS10
	}
	tc := tls.Client(c, cfg)
	hctx, cancel := context.WithTimeout(ctx, p.ioTimeout())
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return tls.ConnectionState{}, err
	}
	return tc.ConnectionState(), nil
}

func isTLSAlert(err error) bool {
	var ae tls.AlertError
	if errorsAs(err, &ae) {
		return true
	}
	return strings.Contains(err.Error(), "remote error: tls")
}

func certNames(c *x509.Certificate) []string {
	var out []string
	for _, n := range c.DNSNames {
		out = append(out, Clean([]byte(n), 100))
	}
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	if len(out) == 0 && c.Subject.CommonName != "" {
		out = append(out, Clean([]byte(c.Subject.CommonName), 100))
	}
	return out
}
