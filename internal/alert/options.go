package alert

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options are a Dispatcher's run-time settings, all optional.
type Options struct {
	// Host names this machine in events; os.Hostname when empty.
	Host string
	// Registerer receives the layer's metrics (moat_alert_*): the daemon's
	// own registry, never the global one. Nil keeps them unexported.
	Registerer prometheus.Registerer
	// Logger gets one line per failed event; nil discards.
	Logger *slog.Logger
	// Now is the clock for stamping events, digests and quiet hours.
	Now func() time.Time
	// Location is the zone of quiet hours; time.Local when nil.
	Location *time.Location
	// QueueSize bounds each notifier's queue; default 64.
	QueueSize int
	// Retry is the retry policy of every notifier.
	Retry Retry
	// Timeout bounds one try of one delivery; default 15s.
	Timeout time.Duration
	// DrainTimeout bounds how long Run keeps delivering queued events
	// after its context ends; default 5s.
	DrainTimeout time.Duration
	// HTTPClient sends HTTP notifications; nil builds one honouring the
	// proxy environment.
	HTTPClient *http.Client
	// TelegramAPI overrides the Bot API base URL (tests).
	TelegramAPI string
	// RootCAs verify SMTP servers' certificates; nil uses the system's.
	RootCAs *x509.CertPool
}

func (o Options) withDefaults() Options {
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 64
	}
	o.Retry = o.Retry.withDefaults()
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 5 * time.Second
	}
	if o.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 2
		o.HTTPClient = &http.Client{Transport: t, Timeout: o.Timeout}
	}
	if o.TelegramAPI == "" {
		o.TelegramAPI = TelegramAPI
	}
	return o
}

// newSender builds the sender for one configured notifier.
func newSender(n Notifier, o *Options) (Sender, error) {
	p := poster{client: o.HTTPClient}
	switch n.Type {
	case "ntfy":
		s := &ntfy{poster: p, url: n.URL, token: n.Token, priority: n.Priority}
		for _, t := range n.Tags {
			if t = ntfyTag(t); t != "" {
				s.tags = append(s.tags, t)
			}
		}
		return s, nil
	case "webhook":
		return &webhook{poster: p, url: n.URL, secret: n.Secret, now: o.Now}, nil
	case "slack":
		return &slack{poster: p, url: n.URL}, nil
	case "discord":
		return &discord{poster: p, url: n.URL}, nil
	case "telegram":
		return &telegram{poster: p, api: o.TelegramAPI, token: n.Token, chatID: n.ChatID}, nil
	case "email":
		return newEmail(n, o)
	}
	return nil, fmt.Errorf("unknown notifier type %q", n.Type)
}
