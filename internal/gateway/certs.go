package gateway

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Certificate sources.
const (
	CertACME = "acme"
	CertFile = "file"
)

// CertInfo is the certificate a site is served with, for moat status and
// the daemon's expiry alerts.
type CertInfo struct {
	Host   string `json:"host"`
	Source string `json:"source"` // CertACME or CertFile
	// NotAfter is the served certificate's expiry; zero while ACME has
	// not obtained one yet.
	NotAfter time.Time `json:"not_after,omitzero"`
	// Err is the last failure to obtain or renew the certificate; empty
	// once one succeeded since.
	Err string `json:"error,omitempty"`
}

// Certificates reports every site's certificate, sorted by host.
func (g *Gateway) Certificates() []CertInfo {
	rt := g.rt.Load()
	if rt == nil {
		return nil
	}
	out := make([]CertInfo, 0, len(rt.static)+len(rt.acmeHosts))
	for host, c := range rt.static {
		ci := CertInfo{Host: host, Source: CertFile}
		leaf := c.Leaf
		if leaf == nil && len(c.Certificate) > 0 {
			leaf, _ = x509.ParseCertificate(c.Certificate[0])
		}
		if leaf != nil {
			ci.NotAfter = leaf.NotAfter
		}
		out = append(out, ci)
	}
	a := g.acme.Load()
	for host := range rt.acmeHosts {
		ci := CertInfo{Host: host, Source: CertACME}
		if a != nil {
			// The cache may hold an old and a renewed certificate for a
			// while; the later one is what renewal produced.
			for _, c := range a.cache.AllMatchingCertificates(host) {
				if c.Leaf != nil && c.Leaf.NotAfter.After(ci.NotAfter) {
					ci.NotAfter = c.Leaf.NotAfter
				}
			}
			ci.Err = a.failures.get(host)
		}
		out = append(out, ci)
	}
	slices.SortFunc(out, func(x, y CertInfo) int { return strings.Compare(x.Host, y.Host) })
	return out
}

// certFailures remembers each name's last failure to obtain or renew its
// certificate, from certmagic's events, until a success clears it.
type certFailures struct {
	mu   sync.Mutex
	last map[string]string
}

// note records one certmagic event.
func (f *certFailures) note(event string, data map[string]any) {
	name, _ := data["identifier"].(string)
	if name == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch event {
	case "cert_failed":
		if f.last == nil {
			f.last = map[string]string{}
		}
		f.last[name] = fmt.Sprint(data["error"])
	case "cert_obtained":
		delete(f.last, name)
	}
}

func (f *certFailures) get(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last[name]
}
