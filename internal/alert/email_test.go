package alert

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned is a certificate for 127.0.0.1 and localhost, and a pool
// trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "moat test smtp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// mailSession is what the test SMTP server received in one session.
type mailSession struct {
	helo     []string
	tls      bool // the envelope came over TLS
	authUser string
	authPass string
	mech     string   // the AUTH mechanism that succeeded
	exchange []string // every line the client sent in AUTH exchanges, in order
	from     string
	to       []string
	data     string
}

// smtpServer is a small SMTP server for the tests: EHLO, STARTTLS,
// AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT. Knobs make it misbehave.
type smtpServer struct {
	ln       net.Listener
	cert     tls.Certificate
	implicit bool   // TLS from the first byte (port 465 style)
	starttls bool   // offer STARTTLS
	auth     bool   // offer AUTH PLAIN and require it
	user     string // accepted credentials
	pass     string
	mechs    string // advertised AUTH mechanisms; "LOGIN PLAIN" when empty
	token    string // accepted XOAUTH2 token
	dataCode int    // reply to the end of DATA; 250 when 0
	sessions chan mailSession
}

func startSMTP(t *testing.T, s *smtpServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if s.implicit {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{s.cert}})
	}
	s.ln, s.sessions = ln, make(chan mailSession, 10)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return ln.Addr().String()
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	sess := mailSession{tls: s.implicit}
	tp := textproto.NewConn(c)
	reply := func(format string, args ...any) { _ = tp.PrintfLine(format, args...) }
	reply("220 test.invalid ESMTP moat-test")
	authed := !s.auth
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			sess.helo = append(sess.helo, arg)
			ext := []string{"250-test.invalid greets " + arg, "250-8BITMIME"}
			if s.starttls && !sess.tls {
				ext = append(ext, "250-STARTTLS")
			}
			if s.auth {
				ext = append(ext, "250-AUTH "+or(s.mechs, "LOGIN PLAIN"))
			}
			ext = append(ext, "250 SIZE 10240000")
			for _, l := range ext {
				reply("%s", l)
			}
		case "STARTTLS":
			reply("220 2.0.0 Ready to start TLS")
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{s.cert}})
			if err := tc.Handshake(); err != nil {
				return
			}
			c, sess.tls = tc, true
			tp = textproto.NewConn(tc)
		case "AUTH":
			sess.exchange = append(sess.exchange, line)
			mech, cred, _ := strings.Cut(arg, " ")
			mech = strings.ToUpper(mech)
			if !hasWord(or(s.mechs, "LOGIN PLAIN"), mech) {
				reply("504 5.5.4 Unrecognized authentication type")
				continue
			}
			ok := false
			switch mech {
			case "PLAIN":
				raw, err := base64.StdEncoding.DecodeString(cred)
				parts := strings.Split(string(raw), "\x00")
				if ok = err == nil && len(parts) == 3 && parts[1] == s.user && parts[2] == s.pass; ok {
					sess.authUser, sess.authPass = parts[1], parts[2]
				}
			case "LOGIN":
				ask := func(prompt string) string {
					reply("334 %s", base64.StdEncoding.EncodeToString([]byte(prompt)))
					l, _ := tp.ReadLine()
					sess.exchange = append(sess.exchange, l)
					raw, _ := base64.StdEncoding.DecodeString(l)
					return string(raw)
				}
				u := ask("Username:")
				p := ask("Password:")
				if ok = u == s.user && p == s.pass; ok {
					sess.authUser, sess.authPass = u, p
				}
			case "XOAUTH2":
				raw, _ := base64.StdEncoding.DecodeString(cred)
				if ok = string(raw) == "user="+s.user+"\x01auth=Bearer "+s.token+"\x01\x01"; ok {
					sess.authUser = s.user
				} else {
					// As Gmail and Office 365 do: a JSON status in a 334,
					// then 535 after the client's empty line.
					reply("334 %s", base64.StdEncoding.EncodeToString([]byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`)))
					l, _ := tp.ReadLine()
					sess.exchange = append(sess.exchange, l)
				}
			}
			if !ok {
				reply("535 5.7.8 Authentication credentials invalid")
				continue
			}
			sess.mech, authed = mech, true
			reply("235 2.7.0 Authentication successful")
		case "MAIL":
			if !authed {
				reply("530 5.7.0 Authentication required")
				continue
			}
			sess.from = arg
			reply("250 2.1.0 Ok")
		case "RCPT":
			sess.to = append(sess.to, arg)
			reply("250 2.1.5 Ok")
		case "DATA":
			reply("354 End data with <CR><LF>.<CR><LF>")
			data, err := io.ReadAll(tp.DotReader())
			if err != nil {
				return
			}
			sess.data = string(data)
			if s.dataCode != 0 && s.dataCode != 250 {
				reply("%d %d.0.0 not today", s.dataCode, s.dataCode/100)
				continue
			}
			s.sessions <- sess
			reply("250 2.0.0 Ok: queued as 4XyZ")
		case "RSET", "NOOP":
			reply("250 2.0.0 Ok")
		case "QUIT":
			reply("221 2.0.0 Bye")
			return
		default:
			reply("502 5.5.2 Error: command not recognized")
		}
	}
}

func (s *smtpServer) next(t *testing.T) mailSession {
	t.Helper()
	select {
	case m := <-s.sessions:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no mail reached the SMTP server")
		return mailSession{}
	}
}

func TestEmailStartTLSAuth(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := &smtpServer{cert: cert, starttls: true, auth: true, user: "moat@example.com", pass: "p4ss"}
	addr := startSMTP(t, srv)
	clock := &fakeClock{t: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)}
	n := Notifier{Type: "email", SMTP: addr, TLS: "starttls", Username: "moat@example.com", Password: "p4ss",
		From: "moat on vps1 <moat@example.com>", To: []string{"ops@example.com", "Ann Operator <ann@example.org>"}}
	e := stamped(Event{Kind: KindLogin, Severity: Warning, Title: "SSH login: röot\r\nBcc: victim@example.net",
		Text:   "line one\n.\nline with a dot above, and a long line " + strings.Repeat("x", 200) + "\nünïcode",
		Fields: map[string]string{"user": "röot", "addr": "203.0.113.7"}})
	r, err := sendTo(t, n, Options{RootCAs: pool, Host: "vps1.example.com", Now: clock.Now}, e)
	if err != nil {
		t.Fatal(err)
	}
	if r.String() != "SMTP 250: 2.0.0 Ok: queued as 4XyZ" {
		t.Errorf("reply %q", r)
	}
	m := srv.next(t)
	if !m.tls || m.authUser != "moat@example.com" || m.authPass != "p4ss" {
		t.Errorf("session not over TLS with auth: %+v", m)
	}
	if len(m.helo) != 2 || m.helo[0] != "vps1.example.com" {
		t.Errorf("EHLO before and after STARTTLS as vps1.example.com, got %q", m.helo)
	}
	if m.from != "FROM:<moat@example.com>" || strings.Join(m.to, ",") != "TO:<ops@example.com>,TO:<ann@example.org>" {
		t.Errorf("envelope %q → %q", m.from, m.to)
	}
	msg, err := mail.ReadMessage(strings.NewReader(m.data))
	if err != nil {
		t.Fatalf("message does not parse: %v\n%s", err, m.data)
	}
	want := map[string]string{
		"Date":                      "Fri, 14 Mar 2025 09:26:53 +0000",
		"From":                      `"moat on vps1" <moat@example.com>`,
		"To":                        `<ops@example.com>, "Ann Operator" <ann@example.org>`,
		"Message-Id":                "<5f2b7c1e9a3d4b6c8e0f1a2b3c4d5e6f.20250314092653@example.com>",
		"Mime-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"Auto-Submitted":            "auto-generated",
		"X-Moat-Event":              "login",
		"X-Moat-Severity":           "warning",
	}
	for k, v := range want {
		if got := msg.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if len(msg.Header) != len(want)+1 { // + Subject
		t.Errorf("unexpected headers (injection?): %v", msg.Header)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subj != "[vps1] SSH login: röot Bcc: victim@example.net" {
		t.Errorf("subject %q (%v)", subj, err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	// The server's dot reader has turned CRLF into LF.
	for _, s := range []string{"line one\n.\nline with a dot above", strings.Repeat("x", 200), "ünïcode", "addr: 203.0.113.7\n", "user: röot\n", "-- \nmoat · warning · login · vps1"} {
		if !strings.Contains(string(body), s) {
			t.Errorf("body lacks %q:\n%s", s, body)
		}
	}
	for _, l := range strings.Split(m.data, "\n") {
		if len(l) > 78 {
			t.Errorf("line over 78 octets on the wire: %q", l)
		}
	}
}

func TestEmailImplicitTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := &smtpServer{cert: cert, implicit: true}
	addr := startSMTP(t, srv)
	n := Notifier{Type: "email", SMTP: addr, TLS: "tls", From: "moat@example.com", To: []string{"ops@example.com"}}
	if _, err := sendTo(t, n, Options{RootCAs: pool}, stamped(TestEvent("mail"))); err != nil {
		t.Fatal(err)
	}
	if m := srv.next(t); !m.tls {
		t.Error("not over TLS")
	}
}

func TestEmailPlainLoopbackRelay(t *testing.T) {
	srv := &smtpServer{}
	addr := startSMTP(t, srv)
	n := Notifier{Type: "email", SMTP: addr, TLS: "none", From: "moat@example.com", To: []string{"ops@example.com"}}
	if _, err := sendTo(t, n, Options{}, stamped(TestEvent("mail"))); err != nil {
		t.Fatal(err)
	}
	if m := srv.next(t); m.tls {
		t.Error("tls: none must not use TLS")
	}
}

func TestEmailFailures(t *testing.T) {
	cert, pool := selfSigned(t)
	_, otherPool := selfSigned(t)
	cases := []struct {
		name      string
		srv       *smtpServer
		n         Notifier
		roots     *x509.CertPool
		permanent bool
		want      string
	}{
		{"no STARTTLS offered", &smtpServer{cert: cert}, Notifier{TLS: "starttls"}, pool, true, "offers no STARTTLS"},
		{"untrusted certificate", &smtpServer{cert: cert, starttls: true}, Notifier{TLS: "starttls"}, otherPool, true, "not trusted"},
		{"wrong password", &smtpServer{cert: cert, starttls: true, auth: true, user: "u", pass: "right"},
			Notifier{TLS: "starttls", Username: "u", Password: "wrong"}, pool, true, "refused the username or password"},
		{"no AUTH offered", &smtpServer{cert: cert, starttls: true}, Notifier{TLS: "starttls", Username: "u", Password: "p"}, pool, true, "offers no AUTH"},
		{"greylisted", &smtpServer{dataCode: 451}, Notifier{TLS: "none"}, nil, false, "SMTP 451"},
		{"rejected", &smtpServer{dataCode: 554}, Notifier{TLS: "none"}, nil, true, "SMTP 554"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := startSMTP(t, tc.srv)
			n := tc.n
			n.Type, n.SMTP, n.From, n.To = "email", addr, "moat@example.com", []string{"ops@example.com"}
			_, err := sendTo(t, n, Options{RootCAs: tc.roots}, stamped(TestEvent("mail")))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			var se *sendError
			if perm := errors.As(err, &se) && se.permanent; perm != tc.permanent {
				t.Errorf("permanent = %v, want %v (%v)", perm, tc.permanent, err)
			}
		})
	}
}

// TestEmailClearTextPassword: a password never goes to a remote server
// without TLS, neither through config validation nor at send time.
func TestEmailClearTextPassword(t *testing.T) {
	n := Notifier{Type: "email", SMTP: "192.0.2.1:25", TLS: "none", Username: "u", Password: "p", From: "a@example.com", To: []string{"b@example.com"}}
	if err := (Config{Notifiers: map[string]Notifier{"m": n}}).Validate(); err == nil || !strings.Contains(err.Error(), "clear text") {
		t.Errorf("validate: %v", err)
	}
	o := Options{}.withDefaults()
	s, err := newEmail(n, &o)
	if err != nil {
		t.Fatal(err)
	}
	err = s.auth(&smtpConn{ext: map[string]string{"AUTH": "PLAIN"}})
	if err == nil || !strings.Contains(err.Error(), "clear text") {
		t.Errorf("auth over clear text to a remote host: %v", err)
	}
}

// TestEmailHangingServer: a server that never greets costs one timeout.
func TestEmailHangingServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			_, _ = bufio.NewReader(c).ReadString('\n') // never answers
		}
	}()
	o := Options{}.withDefaults()
	s, _ := newEmail(Notifier{Type: "email", SMTP: ln.Addr().String(), TLS: "none", From: "a@example.com", To: []string{"b@example.com"}}, &o)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Send(ctx, stamped(TestEvent("m")))
	// Ended by the caller's 200 ms context, not the notifier's own
	// timeout: the bound is that timeout, not a guess at machine speed.
	if err == nil || time.Since(start) >= o.Timeout {
		t.Fatalf("err %v after %s (notifier timeout %s)", err, time.Since(start), o.Timeout)
	}
}

func FuzzEmailHeaders(f *testing.F) {
	f.Add("SSH login: root", "host1", "text")
	f.Add("a\r\nBcc: x@example.net", "h\nX: y", "\r\n.\r\n")
	f.Add("=?utf-8?q?=0D=0ABcc:_x?=", "vps", "body")
	f.Fuzz(func(t *testing.T, title, host, text string) {
		o := Options{Now: func() time.Time { return time.Unix(0, 0) }}.withDefaults()
		m, err := newEmail(Notifier{SMTP: "127.0.0.1:25", From: "moat@example.com", To: []string{"ops@example.com"}}, &o)
		if err != nil {
			t.Fatal(err)
		}
		e := Event{ID: "x", Kind: KindTest, Host: host, Title: title, Text: text}.normalize()
		msg, err := mail.ReadMessage(strings.NewReader(string(m.message(e))))
		if err != nil {
			t.Fatalf("message does not parse: %v", err)
		}
		if len(msg.Header) != 11 || len(msg.Header["Subject"]) != 1 {
			t.Fatalf("headers %v", msg.Header)
		}
		subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil || strings.ContainsAny(subj, "\r\n") {
			t.Fatalf("subject %q: %v", subj, err)
		}
		if strings.Join(strings.Fields(subj), " ") != strings.Join(strings.Fields(strings.ReplaceAll(subject(e), "=?", "= ?")), " ") {
			t.Fatalf("subject %q does not decode to %q", subj, subject(e))
		}
		head, _, _ := strings.Cut(string(m.message(e)), "\r\n\r\n")
		for _, l := range strings.Split(head, "\r\n") {
			if len(l) > 998 {
				t.Fatalf("header line of %d octets", len(l))
			}
		}
	})
}

// TestEmailAuthMechanisms checks the exact AUTH exchanges against a server
// that speaks each mechanism (as Office 365 offers LOGIN and XOAUTH2 but
// not PLAIN), the choice from the advertised list, and the refusals: a
// forced mechanism the server lacks, a wrong password, a rejected token
// (with the server's JSON status), and never credentials in clear text.
func TestEmailAuthMechanisms(t *testing.T) {
	cert, pool := selfSigned(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("ya29.tok3n\n"), 0o600)
	t.Setenv("MOAT_TEST_SMTP_TOKEN", "env-tok3n")
	e := stamped(Event{Kind: KindTest, Severity: Info, Title: "test"})
	cases := []struct {
		name     string
		mechs    string
		n        Notifier
		wantMech string
		exchange []string
		err      string
	}{
		{"auto prefers PLAIN", "LOGIN PLAIN", Notifier{Username: "u@x", Password: "pw"}, "PLAIN",
			[]string{"AUTH PLAIN " + b64("\x00u@x\x00pw")}, ""},
		{"auto falls back to LOGIN (Office 365)", "LOGIN XOAUTH2", Notifier{Username: "u@x", Password: "pw"}, "LOGIN",
			[]string{"AUTH LOGIN", b64("u@x"), b64("pw")}, ""},
		{"forced LOGIN", "PLAIN LOGIN", Notifier{Username: "u@x", Password: "pw", Auth: "login"}, "LOGIN",
			[]string{"AUTH LOGIN", b64("u@x"), b64("pw")}, ""},
		{"XOAUTH2 from a file", "LOGIN XOAUTH2", Notifier{Username: "u@x", TokenFile: tokenFile}, "XOAUTH2",
			[]string{"AUTH XOAUTH2 " + b64("user=u@x\x01auth=Bearer ya29.tok3n\x01\x01")}, ""},
		{"XOAUTH2 from the environment", "XOAUTH2 PLAIN", Notifier{Username: "u@x", TokenEnv: "MOAT_TEST_SMTP_TOKEN", Auth: "xoauth2"}, "XOAUTH2",
			[]string{"AUTH XOAUTH2 " + b64("user=u@x\x01auth=Bearer env-tok3n\x01\x01")}, ""},
		{"forced mechanism not offered", "PLAIN", Notifier{Username: "u@x", Password: "pw", Auth: "login"}, "", nil, "offers no AUTH LOGIN"},
		{"token but no XOAUTH2", "PLAIN LOGIN", Notifier{Username: "u@x", TokenFile: tokenFile}, "", nil, "offers no AUTH XOAUTH2"},
		{"nothing moat speaks", "CRAM-MD5 GSSAPI", Notifier{Username: "u@x", Password: "pw"}, "", nil, "none of which moat speaks"},
		{"wrong password, LOGIN", "LOGIN", Notifier{Username: "u@x", Password: "nope"}, "", nil, "AUTH LOGIN: the server refused the username or password"},
		{"expired token", "XOAUTH2", Notifier{Username: "u@x", TokenEnv: "MOAT_TEST_SMTP_TOKEN_UNSET_X"}, "", nil, "$MOAT_TEST_SMTP_TOKEN_UNSET_X is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := &smtpServer{cert: cert, starttls: true, auth: true, mechs: tc.mechs, user: "u@x", pass: "pw", token: "ya29.tok3n"}
			if tc.n.TokenEnv == "MOAT_TEST_SMTP_TOKEN" {
				srv.token = "env-tok3n"
			}
			n := tc.n
			n.Type, n.SMTP, n.TLS, n.From, n.To = "email", startSMTP(t, srv), "starttls", "moat@x", []string{"ops@x"}
			_, err := sendTo(t, n, Options{RootCAs: pool, Host: "vps1"}, e)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				// A missing token may be written by its refresher meanwhile:
				// retried. A refusal will not change by retrying.
				if isPermanent(err) == strings.Contains(tc.err, "is empty") {
					t.Errorf("%v: permanent = %v", err, isPermanent(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := srv.next(t)
			if !m.tls || m.mech != tc.wantMech {
				t.Errorf("mechanism %q over TLS %v; want %s over TLS", m.mech, m.tls, tc.wantMech)
			}
			if strings.Join(m.exchange, "\n") != strings.Join(tc.exchange, "\n") {
				t.Errorf("AUTH exchange:\n got %q\nwant %q", m.exchange, tc.exchange)
			}
		})
	}

	// A rejected token: the 334 JSON status is answered with an empty line
	// and the error names the refresh.
	srv := &smtpServer{cert: cert, starttls: true, auth: true, mechs: "XOAUTH2", user: "u@x", token: "fresh"}
	n := Notifier{Type: "email", SMTP: startSMTP(t, srv), TLS: "starttls", Username: "u@x", TokenFile: tokenFile, From: "moat@x", To: []string{"ops@x"}}
	_, err := sendTo(t, n, Options{RootCAs: pool, Host: "vps1"}, e)
	if err == nil || !strings.Contains(err.Error(), "refused the token") || !strings.Contains(err.Error(), `"status":"401"`) || !isPermanent(err) {
		t.Errorf("rejected token: %v", err)
	}
	// The error is logged and shown by moat alert test: never the token.
	if err != nil && (strings.Contains(err.Error(), "ya29.tok3n") || strings.Contains(err.Error(), b64("user=u@x\x01auth=Bearer ya29.tok3n\x01\x01"))) {
		t.Errorf("the token leaks into the error: %v", err)
	}

	// Never in clear text: a server without STARTTLS, or tls: none to a
	// non-loopback name, gets no credentials (validation refuses the latter
	// too).
	plain := &smtpServer{cert: cert, auth: true, mechs: "LOGIN XOAUTH2", user: "u@x", pass: "pw"}
	n = Notifier{Type: "email", SMTP: startSMTP(t, plain), TLS: "starttls", Username: "u@x", Password: "pw", From: "moat@x", To: []string{"ops@x"}}
	if _, err := sendTo(t, n, Options{RootCAs: pool, Host: "vps1"}, e); err == nil || !strings.Contains(err.Error(), "no STARTTLS") {
		t.Errorf("no STARTTLS: %v", err)
	}
	c := Config{Notifiers: map[string]Notifier{"m": {Type: "email", SMTP: "smtp.example.com:25", TLS: "none", Username: "u@x", TokenFile: tokenFile, From: "moat@x", To: []string{"ops@x"}}}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "clear text") {
		t.Errorf("tls: none with a token to a remote server: %v", err)
	}
}

// TestEmailAuthConfig: the auth settings that cannot work are refused
// when the config is checked, not at the first alert.
func TestEmailAuthConfig(t *testing.T) {
	base := Notifier{Type: "email", SMTP: "smtp.example.com:587", From: "moat@x", To: []string{"ops@x"}}
	for name, tc := range map[string]struct {
		mod  func(*Notifier)
		want string
	}{
		"unknown mechanism":    {func(n *Notifier) { n.Username, n.Password, n.Auth = "u", "p", "cram-md5" }, "auth"},
		"xoauth2 no token":     {func(n *Notifier) { n.Username, n.Auth = "u", "xoauth2" }, "xoauth2 needs token_file or token_env"},
		"token and password":   {func(n *Notifier) { n.Username, n.Password, n.TokenFile = "u", "p", "/t" }, "not both"},
		"token with plain":     {func(n *Notifier) { n.Username, n.Auth, n.TokenEnv = "u", "plain", "T" }, "a token is for auth: xoauth2"},
		"token without user":   {func(n *Notifier) { n.TokenEnv = "T" }, "needs the username"},
		"file and environment": {func(n *Notifier) { n.Username, n.TokenFile, n.TokenEnv = "u", "/t", "T" }, "not both"},
	} {
		n := base
		tc.mod(&n)
		err := Config{Notifiers: map[string]Notifier{"m": n}}.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func isPermanent(err error) bool {
	var se *sendError
	return errors.As(err, &se) && se.permanent
}
