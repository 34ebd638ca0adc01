package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
)

// The fast path's response framing (RFC 9112 6.3), kept strict on
// purpose: a connection is offered for reuse only when the response was
// unambiguous and read exactly to its end. Anything odd either fails the
// request (502) or closes the connection after it; none of it is guessed
// at. The head is read with net/textproto and chunked bodies with
// net/http/httputil, the parsers net/http itself uses.

// maxUpstreamHead bounds a response head (and a chunked trailer section)
// read from an upstream.
const maxUpstreamHead = 1 << 20

// max1xx bounds the informational answers skipped before the final one.
const max1xx = 8

var (
	errFraming       = errors.New("upstream response framing is invalid")
	errSwitched      = errors.New("upstream switched protocols unasked")
	errTooMany1xx    = errors.New("upstream sent too many informational responses")
	errHeadTooLarge  = errors.New("upstream response head is too large")
	errUnsupportedTE = errors.New("upstream used a transfer coding other than chunked")
)

// upHead is a response head with its framing decided.
type upHead struct {
	status int
	header http.Header
	// length is the body's length: 0 for none, -1 for chunked or
	// read-until-close.
	length  int64
	chunked bool
	// reusable is false when the framing alone rules out reuse: HTTP/1.0,
	// Connection: close, a body delimited by the close, Content-Length
	// beside Transfer-Encoding, a repeated Content-Length.
	reusable bool
}

// limitedReader is the reader under a fast connection's bufio.Reader: it
// caps how much a head may take (n) and counts what was read, so that a
// failure on a reused connection can tell "closed before any byte" from
// "answered badly".
type limitedReader struct {
	r    io.Reader
	n    int64 // bytes left before the head limit; MaxInt64 while reading a body
	read int64 // bytes read since the last reset
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	l.read += int64(n)
	return n, err
}

func (l *limitedReader) reset(limit int64) { l.n, l.read = limit, 0 }

// readHead reads the final response head to a request of method,
// skipping 100 Continue and 103 Early Hints.
func readHead(br *bufio.Reader, method string) (*upHead, error) {
	tp := textproto.NewReader(br)
	for range max1xx {
		h, err := readOneHead(tp, method)
		if err != nil {
			return nil, err
		}
		if h.status == http.StatusSwitchingProtocols {
			return nil, errSwitched
		}
		if h.status >= 200 {
			return h, nil
		}
	}
	return nil, errTooMany1xx
}

func readOneHead(tp *textproto.Reader, method string) (*upHead, error) {
	line, err := tp.ReadLine()
	if err != nil {
		return nil, err
	}
	// HTTP/1.x SP 3DIGIT [SP reason]
	var h upHead
	switch {
	case strings.HasPrefix(line, "HTTP/1.1 "):
		h.reusable = true
	case strings.HasPrefix(line, "HTTP/1.0 "):
	default:
		return nil, errFraming
	}
	code := line[len("HTTP/1.1 "):]
	if len(code) < 3 || (len(code) > 3 && code[3] != ' ') {
		return nil, errFraming
	}
	for i := range 3 {
		if code[i] < '0' || code[i] > '9' {
			return nil, errFraming
		}
	}
	h.status, _ = strconv.Atoi(code[:3])
	if h.status < 100 {
		return nil, errFraming
	}
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	h.header = http.Header(mh)
	if h.status < 200 {
		return &h, nil
	}
	for _, v := range h.header["Connection"] {
		if hasToken(v, "close") {
			h.reusable = false
		}
	}
	// Both framing headers are checked whether or not a body follows.
	te, hasTE := h.header["Transfer-Encoding"]
	cl, hasCL := h.header["Content-Length"]
	var n int64
	if hasTE {
		if len(te) != 1 || !strings.EqualFold(textproto.TrimString(te[0]), "chunked") {
			return nil, errUnsupportedTE
		}
		if strings.HasPrefix(line, "HTTP/1.0") {
			return nil, errFraming // chunked in HTTP/1.0 does not exist
		}
		if hasCL {
			// RFC 9112 6.1: chunked wins, but this is how responses are
			// split; never reuse.
			h.reusable = false
			delete(h.header, "Content-Length")
			hasCL = false
		}
	}
	if hasCL {
		var many, ok bool
		if n, many, ok = parseContentLength(cl); !ok {
			return nil, errFraming
		}
		if many {
			h.reusable = false
			h.header["Content-Length"] = []string{strconv.FormatInt(n, 10)}
		}
	}
	switch {
	case method == http.MethodHead || h.status == http.StatusNoContent || h.status == http.StatusNotModified:
		// No body, whatever the headers say; a body sent anyway is
		// caught as bytes left over, and the connection is closed.
		h.length = 0
	case hasTE:
		h.chunked, h.length = true, -1
	case hasCL:
		h.length = n
	default:
		h.length = -1 // until the upstream closes
		h.reusable = false
	}
	return &h, nil
}

// parseContentLength accepts one or more Content-Length values (repeated
// headers or a comma list) that all agree; many reports a repetition.
func parseContentLength(vv []string) (n int64, many, ok bool) {
	n = -1
	count := 0
	for _, v := range vv {
		for f := range strings.SplitSeq(v, ",") {
			f = textproto.TrimString(f)
			if f == "" || len(f) > 18 {
				return 0, false, false
			}
			var x int64
			for i := 0; i < len(f); i++ {
				if f[i] < '0' || f[i] > '9' {
					return 0, false, false
				}
				x = x*10 + int64(f[i]-'0')
			}
			if n >= 0 && x != n {
				return 0, false, false
			}
			n = x
			count++
		}
	}
	return n, count > 1, n >= 0
}

// hasToken reports whether the comma list v holds token, without regard to
// case.
func hasToken(v, token string) bool {
	for f := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(textproto.TrimString(f), token) {
			return true
		}
	}
	return false
}

// upBody reads a response body to exactly its framing end. done is set
// when the end was reached cleanly (io.EOF returned).
type upBody struct {
	br      *bufio.Reader
	lr      *limitedReader
	left    int64 // Content-Length bytes left; -1 when chunked or until close
	chunked io.Reader
	trailer http.Header
	done    bool
	err     error
}

func newUpBody(br *bufio.Reader, lr *limitedReader, h *upHead) *upBody {
	b := new(upBody)
	b.init(br, lr, h)
	return b
}

func (b *upBody) init(br *bufio.Reader, lr *limitedReader, h *upHead) {
	*b = upBody{br: br, lr: lr, left: h.length}
	if h.chunked {
		b.chunked = httputil.NewChunkedReader(br)
	}
	if h.length == 0 {
		b.done = true
		b.err = io.EOF
	}
}

// whole returns a Content-Length body that is entirely buffered already,
// without consuming it (consumed does), or nil.
func (b *upBody) whole() []byte {
	if b.chunked != nil || b.left <= 0 || b.err != nil || int64(b.br.Buffered()) < b.left {
		return nil
	}
	p, err := b.br.Peek(int(b.left))
	if err != nil {
		return nil
	}
	return p
}

// consumed marks the body returned by whole as read.
func (b *upBody) consumed() {
	b.br.Discard(int(b.left))
	b.left, b.done, b.err = 0, true, io.EOF
}

func (b *upBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	switch {
	case b.chunked != nil:
		n, err = b.chunked.Read(p)
		if err == io.EOF {
			// The trailer section ends the message, bounded like a head.
			b.lr.reset(maxUpstreamHead)
			var mh textproto.MIMEHeader
			var terr error
			if p2, perr := b.br.Peek(2); perr != nil {
				terr = perr // net/http wants two more bytes too
			} else if string(p2) == "\r\n" {
				b.br.Discard(2)
			} else if !upcomingDoubleCRLF(b.br) {
				terr = errFraming // as net/http: a trailer section ends within the buffer
			} else {
				mh, terr = textproto.NewReader(b.br).ReadMIMEHeader()
			}
			b.lr.reset(math.MaxInt64)
			if terr != nil {
				err = io.ErrUnexpectedEOF
				break
			}
			if len(mh) > 0 {
				b.trailer = http.Header(mh)
			}
			b.done = true
		} else if err != nil && err != io.ErrUnexpectedEOF {
			err = errFraming // a malformed chunk
		}
	case b.left > 0:
		if int64(len(p)) > b.left {
			p = p[:b.left]
		}
		n, err = b.br.Read(p)
		b.left -= int64(n)
		if b.left == 0 {
			b.done, err = true, io.EOF
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	default: // until close
		n, err = b.br.Read(p)
		if err == io.EOF {
			b.done = true
		}
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// upcomingDoubleCRLF reports whether the buffered input holds a CRLF CRLF,
// the end of a trailer section, as net/http requires before reading one.
func upcomingDoubleCRLF(br *bufio.Reader) bool {
	for n := 4; ; n++ {
		buf, err := br.Peek(n)
		if bytes.HasSuffix(buf, []byte("\r\n\r\n")) {
			return true
		}
		if err != nil {
			return false
		}
	}
}
