package gateway

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// On the plain-HTTP port net/http answers a request it cannot parse
// itself, before any handler runs: 400 for a bad request line, a bad or
// missing Host, bad header names or values; 431 for oversized headers;
// 501 for an unknown Transfer-Encoding; 505 for another HTTP version; 417
// for an Expect other than 100-continue. Each of those answers tells a
// scanner that knows no host name that a Go HTTP server listens.
// screenHead reads the request head first and lets net/http see only heads
// it will hand to the handler, which closes unknown hosts unanswered too.
// The port serves one request per connection (see newGeneration), so the
// first head is the only one.

// screenHead reads a request head from c, bounded as net/http bounds it
// (maxHeaderBytes plus its 4 KiB allowance for the request line), and
// approves it when checkHead does. The bytes read, the start of a body
// included, are returned for replay.
func (g *Gateway) screenHead(c net.Conn, maxHeaderBytes int) ([]byte, bool) {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = http.DefaultMaxHeaderBytes
	}
	limit := maxHeaderBytes + 4096
	buf := make([]byte, 0, min(limit, 4096))
	scanned := 0
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(cap(buf), limit-len(buf)))...)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if end := headEnd(buf, scanned); end > 0 {
			if checkHead(buf[:end]) {
				return buf, true
			}
			g.metrics.dropped.WithLabelValues(dropBadRequest).Inc()
			return nil, false
		}
		scanned = max(0, len(buf)-2)
		if len(buf) >= limit {
			g.metrics.dropped.WithLabelValues(dropBadRequest).Inc() // net/http: 431
			return nil, false
		}
		if err != nil {
			return nil, false
		}
	}
}

// headEnd returns the length of the head in b (through the empty line
// that ends it, CRLF or bare LF as net/http accepts), or 0 when b holds no
// complete head. from is where to resume looking.
func headEnd(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return i + 3
		}
	}
	return 0
}

// checkHead reports whether net/http's HTTP/1 server would hand the
// request whose head is head (through its empty line) to its handler
// rather than answer it itself. It parses with net/http's own parser,
// then applies the checks its server adds (net/http's conn.readRequest
// and the Expect handling in conn.serve). It may refuse more than
// net/http (odd Expect lists); it must never pass less.
func checkHead(head []byte) bool {
	req, err := http.ReadRequest(bufio.NewReaderSize(bytes.NewReader(head), len(head)+16))
	if err != nil {
		return false // 400, 501 (Transfer-Encoding), bad Content-Length
	}
	if req.ProtoMajor != 1 {
		return false // 505; "PRI * HTTP/2.0" (h2c) is not served here either
	}
	// ReadRequest removed the Host header: read the head's fields again,
	// with the same textproto reader (continuation lines folded alike).
	tp := textproto.NewReader(bufio.NewReaderSize(bytes.NewReader(head), len(head)+16))
	tp.ReadLine() // the request line, parsed above
	fields, err := tp.ReadMIMEHeader()
	if err != nil {
		return false
	}
	hostValues := fields["Host"]
	hosts := len(hostValues)
	var host string
	if hosts > 0 {
		host = hostValues[0]
	}
	switch {
	case hosts == 0 && req.ProtoAtLeast(1, 1) && req.Method != "CONNECT":
		return false // 400 missing Host
	case hosts > 1:
		return false // 400 too many Host headers
	case hosts == 1 && (!httpguts.ValidHostHeader(host) || !httpguts.ValidHeaderFieldValue(host)):
		return false // 400 malformed Host
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	if e := req.Header.Get("Expect"); e != "" && !strings.EqualFold(strings.TrimSpace(e), "100-continue") {
		return false // 417
	}
	return true
}
