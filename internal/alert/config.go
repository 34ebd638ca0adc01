package alert

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"

	"github.com/moat-sh/moat/internal/schema"
)

// Config is the alerts section.
type Config struct {
	Notifiers map[string]Notifier `yaml:"notifiers"`
	// Routes send events to notifiers; with none, every event goes to
	// every notifier (automatic bans as digests).
	Routes []Route `yaml:"routes"`
	// Digest is the ban digest interval: at most one message about
	// automatic bans per interval per route; 0 sends each ban alone.
	Digest schema.Duration `yaml:"digest"`
	// Metrics is the Prometheus listen address, loopback or VPN only.
	Metrics string `yaml:"metrics"`
}

// Notifier is one destination. Type selects which fields apply.
type Notifier struct {
	Type string `yaml:"type"` // ntfy, webhook, slack, discord, telegram, email
	URL  string `yaml:"url"`
	// Token: ntfy access token or Telegram bot token.
	Token    string   `yaml:"token"`
	Priority int      `yaml:"priority"`
	Tags     []string `yaml:"tags"`
	// Secret signs webhook bodies (HMAC-SHA256).
	Secret string `yaml:"secret"`
	ChatID string `yaml:"chat_id"`
	// Email.
	SMTP     string `yaml:"smtp"` // host:port
	TLS      string `yaml:"tls"`  // starttls, tls, none
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Auth is the SMTP AUTH mechanism: auto (default: XOAUTH2 when a
	// token is set, else PLAIN or LOGIN, whichever the server offers),
	// plain, login or xoauth2.
	Auth string `yaml:"auth"`
	// TokenFile and TokenEnv hold an OAuth 2 access token for XOAUTH2,
	// read at every send (a token lives an hour; whatever refreshes it
	// rewrites the file or the environment).
	TokenFile string   `yaml:"token_file"`
	TokenEnv  string   `yaml:"token_env"`
	From      string   `yaml:"from"`
	To        []string `yaml:"to"`
}

// Route sends events matching Events (all when empty) at MinSeverity
// (default info) or above to Notifiers, outside QuietHours unless
// critical.
type Route struct {
	Events      []string `yaml:"events"`
	Notifiers   []string `yaml:"notifiers"`
	MinSeverity string   `yaml:"min_severity"`
	// QuietHours is a span of local time, "22:00-07:00", wrapping midnight
	// when the start is later than the end.
	QuietHours string `yaml:"quiet_hours"`
}

// Events are the event kinds a route may name.
var Events = []string{"login", "ban", "unban", "drift", "cert", "disk", "memory", "reboot", "change", "lifecycle", "test", "vpn"}

// Default is the alerts section's defaults.
func Default() Config { return Config{Digest: schema.Duration(5 * 60e9)} }

// Validate checks the alerts section.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, schema.Errorf(path, format, args...)) }
	names := make([]string, 0, len(c.Notifiers))
	for name := range c.Notifiers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n, p := c.Notifiers[name], "notifiers."+name
		if err := schema.OneOf(n.Type, "ntfy", "webhook", "slack", "discord", "telegram", "email"); err != nil {
			add(p+".type", "%v", err)
			continue
		}
		switch n.Type {
		case "ntfy", "webhook", "slack", "discord":
			if u, err := url.Parse(n.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				add(p+".url", "expected an http(s) URL, found %q", n.URL)
			}
			if n.Type == "ntfy" && (n.Priority < 0 || n.Priority > 5) {
				add(p+".priority", "expected 1 (min) to 5 (max), found %d", n.Priority)
			}
		case "telegram":
			if n.Token == "" || n.ChatID == "" {
				add(p, "telegram needs token and chat_id")
			}
		case "email":
			if _, _, err := net.SplitHostPort(n.SMTP); err != nil {
				add(p+".smtp", "expected host:port of the SMTP server, found %q", n.SMTP)
			}
			if n.TLS == "" {
				n.TLS = "starttls"
			}
			if err := schema.OneOf(n.TLS, "starttls", "tls", "none"); err != nil {
				add(p+".tls", "%v", err)
			}
			if n.From == "" || len(n.To) == 0 {
				add(p, "email needs from and at least one to address")
			}
			if n.From != "" {
				if _, err := parseAddress(n.From); err != nil {
					add(p+".from", "%v", err)
				}
			}
			for j, t := range n.To {
				if _, err := parseAddress(t); err != nil {
					add(fmt.Sprintf("%s.to[%d]", p, j), "%v", err)
				}
			}
			if n.Auth != "" {
				if err := schema.OneOf(n.Auth, "auto", "plain", "login", "xoauth2"); err != nil {
					add(p+".auth", "%v", err)
				}
			}
			hasToken := n.TokenFile != "" || n.TokenEnv != ""
			switch {
			case n.TokenFile != "" && n.TokenEnv != "":
				add(p+".token_file", "set token_file or token_env, not both")
			case hasToken && (n.Auth == "plain" || n.Auth == "login"):
				add(p+".auth", "a token is for auth: xoauth2; plain and login use the password")
			case hasToken && n.Password != "":
				add(p+".password", "set password (PLAIN, LOGIN) or a token (XOAUTH2), not both")
			case n.Auth == "xoauth2" && !hasToken:
				add(p+".auth", "xoauth2 needs token_file or token_env")
			case (hasToken || n.Auth != "") && n.Username == "":
				add(p+".username", "SMTP AUTH needs the username")
			}
			if host, _, err := net.SplitHostPort(n.SMTP); err == nil && n.TLS == "none" && n.Username != "" && !isLoopback(host) {
				add(p+".tls", "tls: none would send the password in clear text to %s: use starttls or tls (none only for a relay on loopback)", host)
			}
		}
	}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		for j, e := range r.Events {
			if err := schema.OneOf(e, Events...); err != nil {
				add(fmt.Sprintf("%s.events[%d]", p, j), "%v", err)
			}
		}
		if len(r.Notifiers) == 0 {
			add(p+".notifiers", "a route needs at least one notifier")
		}
		for j, n := range r.Notifiers {
			if _, ok := c.Notifiers[n]; !ok {
				add(fmt.Sprintf("%s.notifiers[%d]", p, j), "unknown notifier %q: define it under alerts.notifiers", n)
			}
		}
		if r.MinSeverity != "" {
			if err := schema.OneOf(r.MinSeverity, "info", "warning", "critical"); err != nil {
				add(p+".min_severity", "%v", err)
			}
		}
		if q := r.QuietHours; q != "" {
			if _, err := parseQuietHours(q); err != nil {
				add(p+".quiet_hours", "%v", err)
			}
		}
	}
	if c.Metrics != "" {
		host, _, err := net.SplitHostPort(c.Metrics)
		if err != nil {
			add("metrics", "expected host:port like 127.0.0.1:9469, found %q", c.Metrics)
		} else if net.ParseIP(host) == nil {
			// Loopback or vpn.ranges: internal/config checks the scope,
			// which needs the vpn section.
			add("metrics", "expected an address, not a name, in %q (like 127.0.0.1:9469)", c.Metrics)
		}
	}
	return errors.Join(errs...)
}
