package alert

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// WebhookVersion is the version of the generic webhook's JSON body,
// documented in docs/alerts.md. Fields are only ever added within a
// version.
const WebhookVersion = 1

// Webhook headers.
const (
	HeaderEvent     = "X-Moat-Event"     // the event kind
	HeaderDelivery  = "X-Moat-Delivery"  // the event ID, the same on every retry
	HeaderTimestamp = "X-Moat-Timestamp" // Unix seconds when this try was signed
	HeaderSignature = "X-Moat-Signature" // "sha256=" hex HMAC-SHA256(secret, timestamp "." body)
)

// WebhookPayload is the generic webhook's JSON body.
type WebhookPayload struct {
	Version int `json:"version"`
	Event
}

// webhook posts WebhookPayload JSON, signed when a secret is set.
type webhook struct {
	poster
	url    string
	secret string
	now    func() time.Time
}

func (w *webhook) Send(ctx context.Context, e Event) (Reply, error) {
	e.Time = e.Time.UTC()
	body, err := marshalJSON(WebhookPayload{Version: WebhookVersion, Event: e})
	if err != nil {
		return Reply{}, permanent(fmt.Errorf("encode webhook body: %w", err))
	}
	h := jsonHeader()
	h.Set(HeaderEvent, e.Kind)
	h.Set(HeaderDelivery, e.ID)
	if w.secret != "" {
		// Signed per try, so a retry minutes later still passes the
		// receiver's freshness check.
		ts := w.now().Unix()
		h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		h.Set(HeaderSignature, Sign(w.secret, ts, body))
	}
	return w.post(ctx, w.url, h, body)
}

// Sign returns the X-Moat-Signature value for body sent at Unix time ts:
// "sha256=" and the hex HMAC-SHA256, keyed by secret, of the decimal
// timestamp, a dot and the body. Covering the timestamp is what makes a
// replayed request detectable.
func Sign(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(strconv.AppendInt(nil, ts, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhook signature does not match: check the shared secret")
	ErrStale        = errors.New("webhook timestamp outside the tolerance: a replay, or clocks apart")
)

// Verify checks a signed webhook request the way a receiver should: the
// signature over timestamp and raw body, in constant time, then the
// timestamp within tolerance of now (5 minutes is a good tolerance).
// Receivers that also remember X-Moat-Delivery IDs drop replays within
// the tolerance too.
func Verify(secret, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook timestamp %q is not Unix seconds", timestamp)
	}
	want := Sign(secret, ts, body)
	if !strings.HasPrefix(signature, "sha256=") || !hmac.Equal([]byte(want), []byte(signature)) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}
