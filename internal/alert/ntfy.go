package alert

import (
	"context"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// ntfy publishes to an ntfy topic URL the documented way: the message as
// the body, title, priority and tags in X- headers, an access token as a
// Bearer token. Titles outside ASCII go RFC 2047-encoded, which ntfy
// decodes.
type ntfy struct {
	poster
	url      string
	token    string
	priority int
	tags     []string
}

// ntfyPriority maps severities to ntfy's 1 (min) … 5 (max). A configured
// priority applies to everything but critical events, which are always 5.
func (n *ntfy) ntfyPriority(s Severity) int {
	if s == Critical {
		return 5
	}
	if n.priority > 0 {
		return n.priority
	}
	if s == Warning {
		return 4
	}
	return 3
}

// severityTag is the ntfy tag that shows as an emoji.
var severityTag = [...]string{Info: "information_source", Warning: "warning", Critical: "rotating_light"}

func (n *ntfy) Send(ctx context.Context, e Event) (Reply, error) {
	tags := append([]string{severityTag[e.Severity], e.Kind}, n.tags...)
	h := http.Header{
		"Content-Type": {"text/plain; charset=utf-8"},
		"X-Title":      {mime.BEncoding.Encode("UTF-8", subject(e))},
		"X-Priority":   {strconv.Itoa(n.ntfyPriority(e.Severity))},
		"X-Tags":       {strings.Join(tags, ",")},
	}
	if n.token != "" {
		h.Set("Authorization", "Bearer "+n.token)
	}
	// ntfy turns bodies over 4096 bytes into attachments.
	return n.post(ctx, n.url, h, []byte(truncate(or(e.Text, e.Title), 4000)))
}

// subject is an event's one-line headline, naming the host so one topic
// or inbox can serve several machines.
func subject(e Event) string {
	if e.Host == "" {
		return e.Title
	}
	return "[" + e.Host + "] " + e.Title
}

// ntfyTag cleans a configured tag: ntfy separates tags by commas.
func ntfyTag(t string) string {
	return strings.TrimSpace(strings.ReplaceAll(clean(t, 50, false), ",", " "))
}
