package gateway

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/certmagic"
)

// renewCheckInterval is how often certmagic looks for certificates to renew
// (and refreshes ACME Renewal Info). Tests shorten it.
var renewCheckInterval = certmagic.DefaultRenewCheckInterval

// acmeManager obtains and renews the certificates of ACME sites through
// certmagic: HTTP-01 answered on port 80 by the gateway's handler, and
// TLS-ALPN-01 by its certificate selection on 443. Renewal follows the
// CA's ACME Renewal Info window where it offers one (certmagic's default),
// else a third of the lifetime before expiry.
type acmeManager struct {
	key    string // the settings it was made for; Reload reuses it when they match
	cache  *certmagic.Cache
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer

	failures certFailures // last obtain or renewal failure per name

	mu      sync.Mutex
	ctx     context.Context // set by start; nil until the gateway runs
	managed map[string]bool
}

// acmeKey identifies the settings that need a new manager when they change.
func acmeKey(c Config, httpPort, tlsPort int) string {
	return strings.Join([]string{c.ACME.CA, c.ACME.Email, c.ACME.Storage, c.ACME.CARoot,
		strings.Join(c.ACME.Challenges, ","), fmt.Sprint(httpPort), fmt.Sprint(tlsPort)}, "|")
}

func newACME(c Config, httpPort, tlsPort int, log *slog.Logger, m *metrics) (*acmeManager, error) {
	a := &acmeManager{key: acmeKey(c, httpPort, tlsPort), managed: map[string]bool{}}
	var roots *x509.CertPool
	if c.ACME.CARoot != "" {
		pem, err := os.ReadFile(c.ACME.CARoot)
		if err != nil {
			return nil, fmt.Errorf("acme.ca_root: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme.ca_root: %s holds no PEM certificate", c.ACME.CARoot)
		}
	}
	if err := os.MkdirAll(c.ACME.Storage, 0o700); err != nil {
		return nil, fmt.Errorf("acme.storage: %w (moat keeps certificates and the ACME account key there)", err)
	}
	zl := zapLogger(log.With("component", "acme"))
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic, nil },
		RenewCheckInterval: renewCheckInterval,
		Logger:             zl,
	})
	a.magic = certmagic.New(a.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: c.ACME.Storage},
		Logger:  zl,
		OnEvent: func(_ context.Context, event string, data map[string]any) error {
			a.failures.note(event, data)
			switch event {
			case "cert_obtained", "cert_failed", "cert_ocsp_revoked", "cached_managed_cert":
				m.acme.WithLabelValues(event).Inc()
			}
			return nil
		},
	})
	ca := c.ACME.CA
	switch ca {
	case "production":
		ca = certmagic.LetsEncryptProductionCA
	case "staging":
		ca = certmagic.LetsEncryptStagingCA
	}
	ch := c.challenges()
	a.issuer = certmagic.NewACMEIssuer(a.magic, certmagic.ACMEIssuer{
		CA:                      ca,
		Email:                   c.ACME.Email,
		Agreed:                  true,
		TrustedRoots:            roots,
		DisableHTTPChallenge:    ch&challengeHTTP == 0,
		DisableTLSALPNChallenge: ch&challengeTLSALPN == 0,
		// The gateway already listens on these ports: certmagic finds them
		// taken and leaves the answers to the gateway's handlers.
		AltHTTPPort:    httpPort,
		AltTLSALPNPort: tlsPort,
		HTTPProxy:      func(*http.Request) (*url.URL, error) { return nil, nil },
		Logger:         zl,
	})
	a.magic.Issuers = []certmagic.Issuer{a.issuer}
	return a, nil
}

// start begins managing names in the background, for as long as ctx lives.
func (a *acmeManager) start(ctx context.Context, names []string) error {
	a.mu.Lock()
	a.ctx = ctx
	a.mu.Unlock()
	return a.manage(names)
}

// manage adds names (no-op for names managed already, or before start) and
// stops maintaining the names it no longer lists.
func (a *acmeManager) manage(names []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ctx == nil {
		return nil
	}
	var add []string
	for _, n := range names {
		if !a.managed[n] {
			add = append(add, n)
		}
	}
	var gone []certmagic.SubjectIssuer
	for n := range a.managed {
		if !slices.Contains(names, n) {
			gone = append(gone, certmagic.SubjectIssuer{Subject: n})
			delete(a.managed, n)
		}
	}
	if len(gone) > 0 {
		a.cache.RemoveManaged(gone)
	}
	if len(add) == 0 {
		return nil
	}
	// Certificates already in storage go into the cache now, synchronously:
	// a reload swaps in this manager right after, and ManageAsync alone
	// would leave a moment in which handshakes find it empty.
	for _, n := range add {
		a.magic.CacheManagedCertificate(a.ctx, n) // not in storage yet: ManageAsync obtains it
	}
	if err := a.magic.ManageAsync(a.ctx, add); err != nil {
		return fmt.Errorf("manage certificates: %w", err)
	}
	for _, n := range add {
		a.managed[n] = true
	}
	return nil
}

func (a *acmeManager) handleHTTP(w http.ResponseWriter, r *http.Request) bool {
	return a.issuer.HandleHTTPChallenge(w, r)
}

func (a *acmeManager) stop() { a.cache.Stop() }

// acmeNames lists a snapshot's ACME hosts, sorted.
func (rt *snapshot) acmeNames() []string {
	var names []string
	for h := range rt.acmeHosts {
		names = append(names, h)
	}
	slices.Sort(names)
	return names
}
