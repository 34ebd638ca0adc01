package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// dump renders a request for a golden file: request line, every header
// sorted, blank line, body.
func dump(r request) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.Path)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.Header {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, v := range r.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	b.Write(r.Body)
	b.WriteString("\n")
	return []byte(b.String())
}

// sendTo builds the notifier n and sends e once.
func sendTo(t *testing.T, n Notifier, o Options, e Event) (Reply, error) {
	t.Helper()
	o = o.withDefaults()
	s, err := newSender(n, &o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Send(ctx, e)
}

// TestPayloads sends one event through every HTTP notifier to a real
// server and compares the exact request with testdata/payload/.
func TestPayloads(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1741944413, 0)}
	e := stamped(everyEvent()["login-new-source"])
	cases := []struct {
		name string
		n    func(url string) Notifier
		opts func(url string) Options
	}{
		{"ntfy", func(u string) Notifier {
			return Notifier{Type: "ntfy", URL: u + "/moat-alerts", Token: "tk_secret", Tags: []string{"vps", "a,b"}}
		}, nil},
		{"ntfy-priority", func(u string) Notifier { return Notifier{Type: "ntfy", URL: u + "/moat-alerts", Priority: 2} }, nil},
		{"webhook", func(u string) Notifier { return Notifier{Type: "webhook", URL: u + "/hook", Secret: "s3cret"} }, nil},
		{"webhook-unsigned", func(u string) Notifier { return Notifier{Type: "webhook", URL: u + "/hook"} }, nil},
		{"slack", func(u string) Notifier { return Notifier{Type: "slack", URL: u + "/services/T0/B0/XXXX"} }, nil},
		{"discord", func(u string) Notifier { return Notifier{Type: "discord", URL: u + "/api/webhooks/1/abc"} }, nil},
		{"telegram", func(u string) Notifier {
			return Notifier{Type: "telegram", Token: "123456:ABC-DEF", ChatID: "-1001234567890"}
		},
			func(u string) Options { return Options{TelegramAPI: u} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, nil)
			o := Options{Now: clock.Now}
			if tc.opts != nil {
				o = tc.opts(rc.URL)
				o.Now = clock.Now
			}
			r, err := sendTo(t, tc.n(rc.URL), o, e)
			if err != nil {
				t.Fatal(err)
			}
			if r.String() != "HTTP 200: ok" {
				t.Errorf("reply %q", r)
			}
			req := rc.next(t)
			golden(t, "payload/"+tc.name+".txt", dump(req))
			if strings.HasSuffix(req.Header.Get("Content-Type"), "json") && !json.Valid(req.Body) {
				t.Errorf("body is not JSON: %s", req.Body)
			}
		})
	}
}

func TestWebhookSignature(t *testing.T) {
	rc := newReceiver(t, nil)
	now := time.Now()
	e := stamped(everyEvent()["ban"])
	if _, err := sendTo(t, Notifier{Type: "webhook", URL: rc.URL, Secret: "s3cret"}, Options{}, e); err != nil {
		t.Fatal(err)
	}
	req := rc.next(t)
	ts, sig := req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderSignature)
	if err := Verify("s3cret", ts, sig, req.Body, now, 5*time.Minute); err != nil {
		t.Fatalf("a receiver following docs/alerts.md rejects our own request: %v", err)
	}
	var p WebhookPayload
	if err := json.Unmarshal(req.Body, &p); err != nil || p.Version != 1 || p.ID != e.ID || p.Kind != "ban" || p.Severity != Info || p.Fields["jail"] != "sshd" {
		t.Errorf("payload does not decode to the event: %+v, %v", p, err)
	}
	if req.Header.Get(HeaderDelivery) != e.ID || req.Header.Get(HeaderEvent) != "ban" {
		t.Errorf("delivery headers: %v", req.Header)
	}
	tampered := append([]byte(nil), req.Body...)
	tampered[len(tampered)-2] ^= 1
	for _, tc := range []struct {
		name            string
		secret, ts, sig string
		body            []byte
		now             time.Time
		want            error
	}{
		{"wrong secret", "guess", ts, sig, req.Body, now, ErrBadSignature},
		{"tampered body", "s3cret", ts, sig, tampered, now, ErrBadSignature},
		{"moved timestamp", "s3cret", fmt.Sprint(now.Unix() + 60), sig, req.Body, now, ErrBadSignature},
		{"replayed later", "s3cret", ts, sig, req.Body, now.Add(6 * time.Minute), ErrStale},
		{"no prefix", "s3cret", ts, strings.TrimPrefix(sig, "sha256="), req.Body, now, ErrBadSignature},
	} {
		if err := Verify(tc.secret, tc.ts, tc.sig, tc.body, tc.now, 5*time.Minute); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestChatEscaping feeds attacker-shaped text to the chat renderers: no
// mention, link or markup may come through.
func TestChatEscaping(t *testing.T) {
	e := stamped(Event{Kind: KindLogin, Severity: Warning, Title: "login: <!channel> @everyone",
		Text: "user <b>x</b> & [click](http://evil.example) *bold* <@123>", Fields: map[string]string{"user": "<!here>"}})
	t.Run("slack", func(t *testing.T) {
		js, _ := marshalJSON((&slack{}).message(e))
		s := string(js)
		for _, bad := range []string{"<!channel>", "<!here>", "<@123>", "<b>"} {
			if strings.Contains(s, bad) {
				t.Errorf("slack payload carries %q: %s", bad, s)
			}
		}
		if !strings.Contains(s, `&lt;!channel&gt;`) {
			t.Errorf("slack text not escaped: %s", s)
		}
	})
	t.Run("discord", func(t *testing.T) {
		m := (&discord{}).message(e)
		js, _ := marshalJSON(m)
		if !strings.Contains(string(js), `"allowed_mentions":{"parse":[]}`) {
			t.Errorf("mentions not disabled: %s", js)
		}
		if strings.Contains(m.Embeds[0].Description, "[click]") || !strings.Contains(m.Embeds[0].Description, `\[click\]`) || !strings.Contains(m.Embeds[0].Description, `\*bold\*`) {
			t.Errorf("markdown not escaped: %q", m.Embeds[0].Description)
		}
	})
	t.Run("telegram", func(t *testing.T) {
		m := (&telegram{}).message(e)
		if strings.Contains(m.Text, "<b>x</b>") || !strings.Contains(m.Text, "&lt;b&gt;x&lt;/b&gt; &amp;") {
			t.Errorf("HTML not escaped: %q", m.Text)
		}
		if !strings.HasPrefix(m.Text, "<b>[vps1] login: &lt;!channel&gt; @everyone</b>\n") {
			t.Errorf("title line: %q", m.Text)
		}
	})
}

func TestNtfyTitleEncoding(t *testing.T) {
	rc := newReceiver(t, nil)
	e := stamped(Event{Kind: KindDisk, Severity: Critical, Title: "Disk / is 99% full — ünïcode", Text: "full"})
	if _, err := sendTo(t, Notifier{Type: "ntfy", URL: rc.URL + "/t", Priority: 2}, Options{}, e); err != nil {
		t.Fatal(err)
	}
	req := rc.next(t)
	if got := req.Header.Get("X-Title"); !strings.HasPrefix(got, "=?UTF-8?b?") {
		t.Errorf("non-ASCII title not RFC 2047-encoded: %q", got)
	}
	if got := req.Header.Get("X-Priority"); got != "5" {
		t.Errorf("critical must be priority 5 whatever is configured, got %s", got)
	}
	if got := req.Header.Get("X-Tags"); got != "rotating_light,disk" {
		t.Errorf("tags %q", got)
	}
}

// TestSecretsStayOutOfErrors: bot tokens and webhook paths are secrets;
// errors end up in moat status and logs.
func TestSecretsStayOutOfErrors(t *testing.T) {
	rc := newReceiver(t, nil)
	rc.Close() // connection refused from now on
	_, err := sendTo(t, Notifier{Type: "telegram", Token: "123456:SECRET", ChatID: "1"}, Options{TelegramAPI: rc.URL}, stamped(TestEvent("x")))
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("error %v", err)
	}
	_, err = sendTo(t, Notifier{Type: "slack", URL: rc.URL + "/services/T0/B0/SECRET"}, Options{}, stamped(TestEvent("x")))
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("error %v", err)
	}
}

func TestTelegramRetryAfterFromBody(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}`)
	})
	_, err := sendTo(t, Notifier{Type: "telegram", Token: "1:x", ChatID: "1"}, Options{TelegramAPI: rc.URL}, stamped(TestEvent("x")))
	var se *sendError
	if !errors.As(err, &se) || se.permanent || se.retryAfter != 7*time.Second {
		t.Fatalf("want a retryable error asking for 7s, got %#v", err)
	}
}
