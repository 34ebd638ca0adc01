package statuspage

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

// Config is the status_page section of moat.yaml.
type Config struct {
	// Listen is host:port, loopback or a VPN address only.
	Listen string `yaml:"listen"`
	// TokenFile, when set, holds a token every request must carry
	// (Authorization: Bearer, or ?token= once, then a cookie).
	TokenFile string `yaml:"token_file"`
	// Refresh is how often an open page asks for news (DefaultRefresh
	// when zero).
	Refresh schema.Duration `yaml:"refresh"`
	// TLS, when set, serves the page over https only.
	TLS *TLS `yaml:"tls"`
}

// Equal reports whether two sections are the same.
func (c Config) Equal(o Config) bool {
	a, b := c, o
	a.TLS, b.TLS = nil, nil
	if a != b || (c.TLS == nil) != (o.TLS == nil) {
		return false
	}
	return c.TLS == nil || *c.TLS == *o.TLS
}

// DefaultRefresh is an open page's refresh interval.
const DefaultRefresh = 30 * time.Second

// minRefresh keeps a page from polling the daemon in a loop.
const minRefresh = time.Second

// RefreshEvery is the refresh interval in force.
func (c Config) RefreshEvery() time.Duration {
	if c.Refresh == 0 {
		return DefaultRefresh
	}
	return c.Refresh.D()
}

// Validate checks the section against the VPN's ranges: the address rule
// is vpn.Config.CheckListen, the one alerts.metrics shares.
func (c Config) Validate(v vpn.Config) error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, schema.Errorf("listen", "missing: the address to serve the page on, like 127.0.0.1:9470 or the VPN address"))
	} else if err := v.CheckListen(c.Listen); err != nil {
		errs = append(errs, schema.Errorf("listen", "%v: the status page tells whoever reads it what moat sees", err))
	}
	if c.Refresh != 0 && c.Refresh.D() < minRefresh {
		errs = append(errs, schema.Errorf("refresh", "%s is too often: at least %s", c.Refresh, minRefresh))
	}
	if c.TokenFile != "" && !strings.HasPrefix(c.TokenFile, "/") {
		errs = append(errs, schema.Errorf("token_file", "%q: expected an absolute path", c.TokenFile))
	}
	errs = append(errs, c.TLS.validate()...)
	return errors.Join(errs...)
}

// minToken is the shortest token accepted: guessing must be hopeless.
const minToken = 16

// ReadToken reads the token file: one line, at least minToken bytes, not
// readable by group or others.
func ReadToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("status page token: %w (create it: head -c 24 /dev/urandom | base64 > %s; chmod 600 %s)", err, path, path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("status page token %s is mode %#o: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("status page token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < minToken || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("status page token in %s: expected one word of at least %d characters (head -c 24 /dev/urandom | base64 > %s)", path, minToken, path)
	}
	return tok, nil
}
