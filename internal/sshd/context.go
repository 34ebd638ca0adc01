package sshd

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Context describes a connection for sshd -C: whom Match blocks see. Empty
// fields are left out of the spec, and sshd then treats Match criteria on
// them as not matching.
type Context struct {
	User  string // login name
	Host  string // remote host name; defaults to Addr (what sshd uses with UseDNS no, its default)
	Addr  string // remote IP address
	LAddr string // local IP address the connection arrived on
	LPort int    // local port; 0 leaves it out
}

// Spec returns the -C argument for c ("user=...,host=...,addr=...,laddr=...,
// lport=..."), or "" for the zero Context. sshd splits the spec on commas
// and takes each value verbatim, so every field is validated: a value that
// could smuggle another field in (a comma, a blank, a control character) is
// an error, never escaped.
func (c Context) Spec() (string, error) {
	var parts []string
	if c.User != "" {
		if err := checkUser(c.User); err != nil {
			return "", err
		}
		parts = append(parts, "user="+c.User)
	}
	var addr string
	if c.Addr != "" {
		a, err := checkAddr("addr", c.Addr)
		if err != nil {
			return "", err
		}
		addr = a
	}
	host := c.Host
	if host == "" {
		host = addr
	}
	if host != "" {
		if err := checkHost(host); err != nil {
			return "", err
		}
		parts = append(parts, "host="+host)
	}
	if addr != "" {
		parts = append(parts, "addr="+addr)
	}
	if c.LAddr != "" {
		a, err := checkAddr("laddr", c.LAddr)
		if err != nil {
			return "", err
		}
		parts = append(parts, "laddr="+a)
	}
	if c.LPort != 0 {
		if c.LPort < 1 || c.LPort > 65535 {
			return "", fmt.Errorf("sshd context: lport %d out of range 1-65535", c.LPort)
		}
		parts = append(parts, "lport="+strconv.Itoa(c.LPort))
	}
	return strings.Join(parts, ","), nil
}

// String is the spec, or the validation error in angle brackets, for logs
// and error messages.
func (c Context) String() string {
	s, err := c.Spec()
	if err != nil {
		return "<" + err.Error() + ">"
	}
	if s == "" {
		return "<no context>"
	}
	return s
}

func checkUser(u string) error {
	if len(u) > 256 {
		return errors.New("sshd context: user name longer than 256 bytes")
	}
	for _, r := range u {
		if r == ',' || r <= ' ' || r == 0x7f {
			return fmt.Errorf("sshd context: user name %q: commas, blanks and control characters are not allowed", u)
		}
	}
	return nil
}

// checkHost allows what a DNS name or an IP literal can contain.
func checkHost(h string) error {
	if len(h) > 253 {
		return errors.New("sshd context: host name longer than 253 bytes")
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '-' || c == '_' || c == ':') {
			return fmt.Errorf("sshd context: host %q: want letters, digits, '.', '-', '_' or ':' only", h)
		}
	}
	return nil
}

// checkAddr parses an IP address and returns it in the form sshd itself
// would report it: canonical, and IPv4-mapped IPv6 unmapped (sshd
// normalises mapped addresses before matching).
func checkAddr(field, s string) (string, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", fmt.Errorf("sshd context: %s %q is not an IP address", field, s)
	}
	if a.Zone() != "" {
		return "", fmt.Errorf("sshd context: %s %q: zones are not supported", field, s)
	}
	return a.Unmap().String(), nil
}
