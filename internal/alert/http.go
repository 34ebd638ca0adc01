package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

const (
	userAgent    = "moat-alert/1"
	maxReplyRead = 64 << 10 // bytes of a response read (then discarded)
	replyExcerpt = 300      // bytes of a response kept for status and errors
)

// poster sends JSON or text bodies to HTTP receivers.
type poster struct {
	client *http.Client
}

// post sends body to target and classifies the answer: 2xx is success,
// 429 and 5xx are worth a retry (after Retry-After when given), any other
// status is a permanent refusal. The error never contains target: webhook
// and bot URLs carry secrets.
func (p poster) post(ctx context.Context, target string, header http.Header, body []byte) (Reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return Reply{}, permanent(fmt.Errorf("bad receiver URL: %w", redact(err)))
	}
	req.Header = header
	req.Header.Set("User-Agent", userAgent)
	resp, err := p.client.Do(req)
	if err != nil {
		return Reply{}, fmt.Errorf("post to %s://%s: %w", req.URL.Scheme, req.URL.Host, redact(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxReplyRead))
	r := Reply{Proto: "HTTP", Code: resp.StatusCode, Text: excerpt(data)}
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return r, nil
	case c == http.StatusTooManyRequests || c >= 500:
		return r, &sendError{reply: r, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	default:
		return r, &sendError{reply: r, permanent: true}
	}
}

// redact drops the URL from a *url.Error, keeping what went wrong.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("timed out: %w", ue.Err)
		}
		return ue.Err
	}
	return err
}

// excerpt is a response body as one short clean line.
func excerpt(b []byte) string { return truncate(clean(string(b), replyExcerpt, false), replyExcerpt) }

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && s < 1e9 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func jsonHeader() http.Header {
	return http.Header{"Content-Type": {"application/json"}}
}

// marshalJSON encodes v without Go's HTML escaping (\u003c for <): the
// receivers are APIs, not browsers, and their logs stay readable.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
