package alert

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"strings"
	"time"
)

// email sends events over SMTP with a small client of its own rather than
// net/smtp: it needs the server's final reply for `moat alert test`,
// deadlines on every step, and the 4xx/5xx split for retries.
type email struct {
	addr     string // host:port
	host     string
	mode     string // starttls, tls, none
	user     string
	password string
	mech     string // auto, plain, login, xoauth2
	token    func() (string, error)
	from     *mail.Address
	to       []*mail.Address
	helo     string
	tls      *tls.Config
	now      func() time.Time
}

func newEmail(n Notifier, o *Options) (*email, error) {
	host, _, err := net.SplitHostPort(n.SMTP)
	if err != nil {
		return nil, fmt.Errorf("smtp %q: %w", n.SMTP, err)
	}
	m := &email{addr: n.SMTP, host: host, mode: or(n.TLS, "starttls"), user: n.Username, password: n.Password,
		helo: heloName(o.Host), now: o.Now}
	if m.from, err = parseAddress(n.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	for _, t := range n.To {
		a, err := parseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("to: %w", err)
		}
		m.to = append(m.to, a)
	}
	m.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	m.mech = or(n.Auth, "auto")
	switch {
	case n.TokenFile != "":
		path := n.TokenFile
		m.token = func() (string, error) {
			b, err := os.ReadFile(path)
			if err != nil {
				return "", fmt.Errorf("XOAUTH2 token: %w", err)
			}
			return strings.TrimSpace(string(b)), nil
		}
	case n.TokenEnv != "":
		name := n.TokenEnv
		m.token = func() (string, error) {
			if v := strings.TrimSpace(os.Getenv(name)); v != "" {
				return v, nil
			}
			return "", fmt.Errorf("XOAUTH2 token: $%s is empty", name)
		}
	}
	if m.token != nil && m.mech == "auto" {
		m.mech = "xoauth2"
	}
	return m, nil
}

// parseAddress accepts "a@b" or "Name <a@b>" with an ASCII address part:
// the address goes into SMTP commands verbatim.
func parseAddress(s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an e-mail address: %w", s, err)
	}
	for _, r := range a.Address {
		if r <= ' ' || r > '~' || r == '<' || r == '>' {
			return nil, fmt.Errorf("%q: the address must be plain ASCII", s)
		}
	}
	return a, nil
}

// heloName is the host name for EHLO: letters, digits, dots and dashes.
func heloName(h string) string {
	h = strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, h)
	return or(h, "localhost")
}

// smtpConn is one SMTP session.
type smtpConn struct {
	text *textproto.Conn
	ext  map[string]string // EHLO keywords (upper case) → parameters
}

// cmd sends a command and reads the reply, wanting a code of class want
// (2, 3) or exactly want (220, 235, 354).
func (c *smtpConn) cmd(want int, format string, args ...any) (Reply, string, error) {
	if err := c.text.PrintfLine(format, args...); err != nil {
		return Reply{}, "", err
	}
	return c.read(want)
}

func (c *smtpConn) read(want int) (Reply, string, error) {
	code, msg, err := c.text.ReadResponse(want)
	r := Reply{Proto: "SMTP", Code: code, Text: clean(strings.ReplaceAll(msg, "\n", " "), replyExcerpt, false)}
	var te *textproto.Error
	if errors.As(err, &te) {
		// 4xx: try later; 5xx: refused.
		return r, msg, &sendError{reply: r, permanent: code >= 500}
	}
	return r, msg, err
}

func (c *smtpConn) ehlo(name string) error {
	_, msg, err := c.cmd(250, "EHLO %s", name)
	if err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	c.ext = map[string]string{}
	lines := strings.Split(msg, "\n")
	for _, l := range lines[1:] { // the first line names the server
		k, v, _ := strings.Cut(l, " ")
		c.ext[strings.ToUpper(k)] = v
	}
	return nil
}

// session speaks SMTP on conn: greeting, EHLO, STARTTLS when asked for
// (never falling back to clear text), AUTH PLAIN when configured, the
// envelope and the message. It returns the reply to the message.
func (m *email) session(conn net.Conn, e Event) (Reply, error) {
	c := &smtpConn{text: textproto.NewConn(conn)}
	if _, _, err := c.read(220); err != nil {
		return Reply{}, fmt.Errorf("greeting: %w", err)
	}
	if err := c.ehlo(m.helo); err != nil {
		return Reply{}, err
	}
	if m.mode == "starttls" {
		if _, ok := c.ext["STARTTLS"]; !ok {
			return Reply{}, permanent(errors.New("the server offers no STARTTLS: set tls: tls for implicit TLS (port 465), or tls: none only for a relay on loopback"))
		}
		if _, _, err := c.cmd(220, "STARTTLS"); err != nil {
			return Reply{}, fmt.Errorf("STARTTLS: %w", err)
		}
		tc := tls.Client(conn, m.tls)
		if err := tc.Handshake(); err != nil {
			return Reply{}, tlsError(err)
		}
		c.text = textproto.NewConn(tc)
		if err := c.ehlo(m.helo); err != nil {
			return Reply{}, err
		}
	}
	if m.user != "" {
		if err := m.auth(c); err != nil {
			return Reply{}, err
		}
	}
	if _, _, err := c.cmd(250, "MAIL FROM:<%s>", m.from.Address); err != nil {
		return Reply{}, fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, to := range m.to {
		if _, _, err := c.cmd(25, "RCPT TO:<%s>", to.Address); err != nil { // 250 or 251
			return Reply{}, fmt.Errorf("RCPT TO %s: %w", to.Address, err)
		}
	}
	if _, _, err := c.cmd(354, "DATA"); err != nil {
		return Reply{}, fmt.Errorf("DATA: %w", err)
	}
	w := c.text.DotWriter() // dot-stuffs and ends with CRLF.CRLF
	if _, err := w.Write(m.message(e)); err != nil {
		return Reply{}, fmt.Errorf("send message: %w", err)
	}
	if err := w.Close(); err != nil {
		return Reply{}, fmt.Errorf("send message: %w", err)
	}
	r, _, err := c.read(250)
	if err != nil {
		return r, fmt.Errorf("message: %w", err)
	}
	_, _, _ = c.cmd(221, "QUIT") // delivered already; a rude goodbye is fine
	return r, nil
}

// auth authenticates with the configured mechanism, or with auto the
// best the server advertises (PLAIN, then LOGIN; XOAUTH2 when a token is
// set), and only over TLS or to a server on loopback: a password or token
// never crosses a network in clear text.
func (m *email) auth(c *smtpConn) error {
	if m.mode == "none" && !isLoopback(m.host) {
		return permanent(errors.New("refusing to send SMTP credentials in clear text: set tls: starttls or tls"))
	}
	mechs, ok := c.ext["AUTH"]
	if !ok {
		return permanent(errors.New("the server offers no AUTH: remove username, or use a server that authenticates"))
	}
	mech := strings.ToUpper(m.mech)
	if mech == "AUTO" {
		for _, w := range []string{"PLAIN", "LOGIN"} {
			if hasWord(mechs, w) {
				mech = w
				break
			}
		}
		if mech == "AUTO" {
			return permanent(fmt.Errorf("the server offers AUTH %s, none of which moat speaks with a password (PLAIN, LOGIN); for XOAUTH2 set token_file or token_env", mechs))
		}
	} else if !hasWord(mechs, mech) {
		return permanent(fmt.Errorf("the server offers no AUTH %s (it offers %q): set auth to one of those", mech, mechs))
	}
	var err error
	switch mech {
	case "PLAIN":
		_, _, err = c.cmd(235, "AUTH PLAIN %s", b64("\x00"+m.user+"\x00"+m.password))
	case "LOGIN":
		// RFC-less but universal: 334 asks for the user name, then the
		// password, each base64.
		if _, _, err = c.cmd(334, "AUTH LOGIN"); err == nil {
			if _, _, err = c.cmd(334, "%s", b64(m.user)); err == nil {
				_, _, err = c.cmd(235, "%s", b64(m.password))
			}
		}
	case "XOAUTH2":
		tok, terr := m.token()
		if terr != nil {
			return terr
		}
		var r Reply
		var msg string
		r, msg, err = c.cmd(235, "AUTH XOAUTH2 %s", b64("user="+m.user+"\x01auth=Bearer "+tok+"\x01\x01"))
		if r.Code == 334 {
			// A failure comes as a 334 challenge carrying a JSON status; the
			// client answers with an empty line and gets the final 535.
			detail, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(msg))
			_, _, err = c.cmd(235, "")
			if err != nil {
				return permanent(fmt.Errorf("AUTH XOAUTH2: the server refused the token for %s (%s): refresh the token", m.user, clean(string(detail), replyExcerpt, false)))
			}
		}
	}
	if err != nil {
		var se *sendError
		if errors.As(err, &se) && se.reply.Code == 535 {
			return permanent(fmt.Errorf("AUTH %s: the server refused the username or password (%s)", mech, se.reply))
		}
		return fmt.Errorf("AUTH %s: %w", mech, err)
	}
	return nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// tlsError wraps a failed handshake; a certificate moat does not trust
// will not become trusted by retrying.
func tlsError(err error) error {
	err = fmt.Errorf("TLS handshake: %w", err)
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return permanent(fmt.Errorf("%w (the SMTP server's certificate is not trusted for this name)", err))
	}
	return err
}

func hasWord(list, w string) bool {
	for _, f := range strings.Fields(list) {
		if strings.EqualFold(f, w) {
			return true
		}
	}
	return false
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// message renders the e-mail: headers built only from configuration,
// constants and the cleaned one-line subject (RFC 2047-encoded), so event
// text cannot inject headers; the body quoted-printable, safe for any
// line length and any character.
func (m *email) message(e Event) []byte {
	var b bytes.Buffer
	now := m.now()
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("Date", now.Format(time.RFC1123Z))
	h("From", m.from.String())
	to := make([]string, len(m.to))
	for i, a := range m.to {
		to[i] = a.String()
	}
	h("To", strings.Join(to, ", "))
	// "=?" would let a title pose as an encoded-word of its own.
	subj := strings.ReplaceAll(clean(subject(e), maxTitle+110, false), "=?", "= ?")
	b.WriteString(fold("Subject", mime.QEncoding.Encode("utf-8", subj)))
	h("Message-ID", "<"+or(e.ID, newID())+"."+now.UTC().Format("20060102150405")+"@"+domainOf(m.from.Address)+">")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	h("Auto-Submitted", "auto-generated") // RFC 3834: no auto-replies
	h("X-Moat-Event", e.Kind)
	h("X-Moat-Severity", e.Severity.String())
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(emailBody(e)))
	_ = qp.Close()
	return b.Bytes()
}

// fold writes a header, folding at spaces to keep lines within 78
// octets where words allow (RFC 5322 2.2.3). Encoded-words come separated
// by spaces, and spaces between them vanish on decoding.
func fold(name, value string) string {
	var b strings.Builder
	b.WriteString(name + ":")
	n := len(name) + 1
	for _, w := range strings.Split(value, " ") {
		if n+1+len(w) > 78 && n > len(name)+1 {
			b.WriteString("\r\n")
			n = 0
		}
		b.WriteString(" " + w)
		n += 1 + len(w)
	}
	b.WriteString("\r\n")
	return b.String()
}

func emailBody(e Event) string {
	var b strings.Builder
	b.WriteString(or(e.Text, e.Title))
	b.WriteString("\n")
	if len(e.Fields) > 0 {
		b.WriteString("\n")
		for _, k := range sortedKeys(e.Fields) {
			fmt.Fprintf(&b, "%s: %s\n", k, e.Fields[k])
		}
	}
	b.WriteString("\n-- \n" + footer(e) + "\n")
	return b.String()
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 && i+1 < len(addr) {
		return addr[i+1:]
	}
	return "moat.invalid"
}

func (m *email) Send(ctx context.Context, e Event) (Reply, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return Reply{}, fmt.Errorf("connect to %s: %w", m.addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// An ending ctx (shutdown) interrupts a blocked read or write.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if m.mode == "tls" {
		tc := tls.Client(conn, m.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return Reply{}, tlsError(err)
		}
		conn = tc
	}
	r, err := m.session(conn, e)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return r, err
}
