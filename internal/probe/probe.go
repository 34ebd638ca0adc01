package probe

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"time"
)

// Prober learns what answers on open ports.
type Prober struct {
	// Dial opens connections; nil is a plain net.Dialer.
	Dial DialFunc
	// Names are the host names asked for (TLS SNI, HTTP Host): the
	// gateway's sites, or --names.
	Names []string
	// Routes are declared gateway routes whose answer to a stranger is
	// compared with a missing path's.
	Routes []Route
	// Admin is the admin user probed over SSH beside root and a random
	// name.
	Admin string
	// Timeout bounds each read and write; 0 is 3s.
	Timeout time.Duration
	// BannerWait is how long a silent server gets to greet; 0 is 1.5s.
	BannerWait time.Duration
}

func (p *Prober) dial() DialFunc {
	if p.Dial != nil {
		return p.Dial
	}
	return (&net.Dialer{}).DialContext
}

func (p *Prober) ioTimeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return 3 * time.Second
}

func (p *Prober) bannerWait() time.Duration {
	if p.BannerWait > 0 {
		return p.BannerWait
	}
	return 1500 * time.Millisecond
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

type netConn = net.Conn
