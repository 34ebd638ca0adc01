package probe

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/moat-sh/moat/internal/sshd"
)

// printable checks what a reader hands to a report: no control
// characters a hostile server could use to rewrite a terminal.
func printable(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("%s: invalid UTF-8 %q", what, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) {
			t.Fatalf("%s: control character %U in %q", what, r, s)
		}
	}
}

func FuzzParseBanner(f *testing.F) {
	f.Add([]byte("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"))
	f.Add([]byte("220 mail.example.com ESMTP Postfix\r\n"))
	f.Add([]byte("220 (vsFTPd 3.0.3)\r\n"))
	f.Add([]byte("+OK Dovecot ready.\r\n"))
	f.Add([]byte("* OK [CAPABILITY IMAP4rev1] ready\r\n"))
	f.Add([]byte("J\x00\x00\x00\x0a8.0.36\x00\x08\x00\x00\x00"))
	f.Add([]byte("\x45\x00\x00\x00\xffj\x04Host '203.0.113.2' is not allowed to connect"))
	f.Add([]byte("SSH-\x1b[2J\x1b]0;pwned\x07"))
	f.Fuzz(func(t *testing.T, b []byte) {
		bn := ParseBanner(b)
		printable(t, "line", bn.Line)
		printable(t, "product", bn.Product)
		printable(t, "version", bn.Version)
		if len(bn.Line) > 4*200+100 {
			t.Fatalf("line not clipped: %d bytes", len(bn.Line))
		}
	})
}

func FuzzDatastoreReplies(f *testing.F) {
	f.Add([]byte("+PONG\r\n"))
	f.Add([]byte("-NOAUTH Authentication required.\r\n"))
	f.Add([]byte("-DENIED Redis is running in protected mode\r\n"))
	f.Add([]byte("R\x00\x00\x00\x08\x00\x00\x00\x00"))
	f.Add([]byte("R\x00\x00\x00\x17\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00"))
	f.Add([]byte("E\x00\x00\x00\x40SFATAL\x00C28000\x00Mno pg_hba.conf entry for host\x00\x00"))
	f.Add(mongoOK())
	f.Add([]byte("STAT pid 1\r\nSTAT version 1.6.18\r\nEND\r\n"))
	f.Add([]byte("J\x00\x00\x00\x0a5.5.5-10.11.6-MariaDB\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, ok := ParseRedisReply(b); ok {
			printable(t, "redis", r.Text)
		}
		printable(t, "redis info", RedisInfo(b))
		if r, ok := ParsePostgresReply(b); ok {
			printable(t, "postgres", r.Error)
		}
		if r, ok := ParseMongoReply(b); ok {
			printable(t, "mongo", r.Version+r.Error+strings.Join(r.Fields, ""))
		}
		if v, ok := ParseMemcachedStats(b); ok {
			printable(t, "memcached", v)
		}
		if g, ok := ParseMySQLGreeting(b); ok {
			printable(t, "mysql", g.Version+g.Error)
		}
		if what, ok := parseDNSAnswer(b); ok {
			printable(t, "dns", what)
		}
		parseNTPAnswer(b)
		parseSNMPAnswer(b)
		parseQUICAnswer(b)
	})
}

// FuzzSSHGreeting feeds the SSH identification and KEXINIT reader (shared
// with moat audit's live probe) whatever a server may send.
func FuzzSSHGreeting(f *testing.F) {
	f.Add([]byte("SSH-2.0-OpenSSH_9.2p1\r\n"), []byte{})
	f.Add([]byte("banner line\r\nSSH-2.0-x\r\n"), kexInitPacket([]string{"curve25519-sha256", sshd.StrictKexServer}))
	f.Add([]byte("SSH-2.0-x\n"), []byte{0xff, 0xff, 0xff, 0xff, 4})
	f.Fuzz(func(t *testing.T, ident, packet []byte) {
		v, k, err := sshd.ReadServerGreeting(bytes.NewReader(append(ident, packet...)))
		if err == nil {
			printable(t, "version", Clean([]byte(v), 200))
			for _, n := range k.Kex {
				printable(t, "kex", n)
			}
		}
	})
}

// FuzzHTTPResponse reads a response the way the probe does: bounded
// headers and body, the title picked from what came.
func FuzzHTTPResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Length: 44\r\n\r\n<html><title>Welcome to nginx!</title></html>"))
	f.Add([]byte("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n"))
	f.Add([]byte("HTTP/1.0 302 Found\r\nLocation: http://\x00evil\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
		if err != nil {
			return
		}
		var body bytes.Buffer
		body.ReadFrom(http.MaxBytesReader(nil, resp.Body, 1<<20))
		resp.Body.Close()
		printable(t, "title", htmlTitle(body.Bytes()))
		for _, v := range resp.Header.Values("Server") {
			printable(t, "server", Clean([]byte(v), 100))
		}
	})
}

// FuzzIdentify runs the whole examination of an open port against a
// server that answers every connection with the same bytes and closes:
// the TLS client, the HTTP client, the SSH probe and every datastore
// reader see them. It must end, and print nothing unsafe.
func FuzzIdentify(f *testing.F) {
	f.Add([]byte("SSH-2.0-OpenSSH_9.2p1\r\n"), uint16(22))
	f.Add([]byte("\x16\x03\x03\x00\x02\x02\x28"), uint16(443)) // a TLS alert-shaped record
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), uint16(80))
	f.Add([]byte("+PONG\r\n"), uint16(6379))
	f.Add([]byte("N"), uint16(5432))
	f.Add(mongoOK(), uint16(27017))
	f.Add([]byte("STAT pid 1\r\n"), uint16(11211))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{\"ApiVersion\":\"1.43\",\"Version\":\"24.0\"}"), uint16(2375))
	f.Fuzz(func(t *testing.T, answer []byte, port uint16) {
		if port == 0 {
			port = 1
		}
		p := &Prober{Dial: pipeServer(answer), Timeout: 300 * time.Millisecond, BannerWait: 50 * time.Millisecond, Names: []string{"app.test"}}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s := p.identify(ctx, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), port))
		printable(t, "banner", s.Banner)
		printable(t, "product", s.Product+s.Version)
		printable(t, "summary", summary(&s))
	})
}

// pipeServer is a dial whose every connection gets answer, then EOF.
func pipeServer(answer []byte) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c1, c2 := net.Pipe()
		go func() {
			defer c2.Close()
			go func() { // drain what the client sends
				buf := make([]byte, 4096)
				for {
					if _, err := c2.Read(buf); err != nil {
						return
					}
				}
			}()
			c2.SetWriteDeadline(time.Now().Add(2 * time.Second))
			c2.Write(answer)
		}()
		return c1, nil
	}
}

func mongoOK() []byte {
	// {ok: 1.0}
	doc := []byte{0, 0, 0, 0, 0x01, 'o', 'k', 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0}
	doc[0] = byte(len(doc))
	msg := make([]byte, 21)
	msg[0] = byte(21 + len(doc))
	msg[12], msg[13] = 0xdd, 0x07
	return append(msg, doc...)
}

func kexInitPacket(kex []string) []byte {
	var payload bytes.Buffer
	payload.WriteByte(20)
	payload.Write(make([]byte, 16))
	lists := [][]string{kex, {"ssh-ed25519"}, {"aes128-ctr"}, {"aes128-ctr"}, {"hmac-sha2-256"}, {"hmac-sha2-256"}, {"none"}, {"none"}, {}, {}}
	for _, l := range lists {
		s := strings.Join(l, ",")
		payload.Write([]byte{0, 0, byte(len(s) >> 8), byte(len(s))})
		payload.WriteString(s)
	}
	payload.Write([]byte{0, 0, 0, 0, 0})
	pad := 8 - (payload.Len()+5)%8
	if pad < 4 {
		pad += 8
	}
	n := payload.Len() + pad + 1
	out := []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), byte(pad)}
	out = append(out, payload.Bytes()...)
	return append(out, make([]byte, pad)...)
}
