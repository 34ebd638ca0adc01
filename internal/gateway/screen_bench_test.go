package gateway

import (
	"bytes"
	"crypto/tls"
	"testing"
)

// What the screens cost per connection, beside a TLS handshake's
// milliseconds of CPU.
func BenchmarkReadClientHello(b *testing.B) {
	hello := capturedHello(&tls.Config{ServerName: "app.example.com", NextProtos: []string{"h2", "http/1.1"}})
	b.SetBytes(int64(len(hello)))
	b.ReportAllocs()
	for b.Loop() {
		if _, h, err := readClientHello(bytes.NewReader(hello)); err != nil || h.serverName != "app.example.com" {
			b.Fatal(h, err)
		}
	}
}

func BenchmarkCheckHead(b *testing.B) {
	head := []byte("GET /some/path?q=1 HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Language: en\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n\r\n")
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		if !checkHead(head[:headEnd(head, 0)]) {
			b.Fatal("refused")
		}
	}
}
