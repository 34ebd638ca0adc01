package alert

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzRetryAfter: receivers choose the Retry-After header.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "120", "0.5", "-1", "1e400", "NaN", "Fri, 14 Mar 2025 09:27:53 GMT", "Friday, 14-Mar-25 09:27:53 GMT", ""} {
		f.Add(s)
	}
	now := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, now); d < 0 {
			t.Fatalf("%q: negative wait %s", v, d)
		}
	})
}

// FuzzQuietHours: the config's span syntax.
func FuzzQuietHours(f *testing.F) {
	for _, s := range []string{"22:00-07:00", "09:00-17:30", "23:59-00:00", "22:00-22:00", "2:00-7:00", "-", "99:99-00:00"} {
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, s string, unix int64) {
		q, err := parseQuietHours(s)
		if err != nil {
			return
		}
		now := time.Unix(unix%(1<<40), 0).UTC()
		if q.active(now) {
			end := q.end(now)
			if !end.After(now) || end.Sub(now) > 24*time.Hour || q.active(end) {
				t.Fatalf("%s at %s: ends %s", s, now, end)
			}
		}
	})
}

// FuzzSMTPReplies: whatever an SMTP server answers, the client returns
// (an error, mostly) without panicking or hanging, and never sends the
// password unless the server offered AUTH PLAIN.
func FuzzSMTPReplies(f *testing.F) {
	f.Add("220 hi\r\n250-x\r\n250-AUTH PLAIN\r\n250 OK\r\n235 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n")
	f.Add("220 hi\r\n250 x\r\n")
	f.Add("220-multi\r\n220 line\r\n250-STARTTLS\r\n250 x\r\n220 go\r\n")
	f.Add("421 busy\r\n")
	f.Add("220 hi\r\n250-x\r\n250-AUTH\r\n250 OK\r\n")
	f.Add("\x00\xff\r\n")
	f.Fuzz(func(t *testing.T, script string) {
		o := Options{}.withDefaults()
		m, err := newEmail(Notifier{SMTP: "127.0.0.1:25", TLS: "none", Username: "u", Password: "SECRETPW",
			From: "a@example.com", To: []string{"b@example.com"}}, &o)
		if err != nil {
			t.Fatal(err)
		}
		c := &scriptConn{r: strings.NewReader(script)}
		_, _ = m.session(c, stamped(TestEvent("fuzz")))
		if strings.Contains(c.w.String(), "SECRETPW") || strings.Contains(c.w.String(), "AUTH PLAIN") && !strings.Contains(strings.ToUpper(script), "PLAIN") {
			t.Fatalf("sent credentials to a server that offered no AUTH PLAIN")
		}
	})
}

// scriptConn is a connection whose peer says script and then hangs up.
type scriptConn struct {
	r *strings.Reader
	w bytes.Buffer
}

func (c *scriptConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *scriptConn) Write(b []byte) (int, error)      { return c.w.Write(b) }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }
