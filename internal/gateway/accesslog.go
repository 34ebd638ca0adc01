package gateway

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// accessLog writes one JSON object per request. Requests only append to a
// memory buffer under a short lock; a goroutine writes the buffer out every
// logFlushEvery or when it passes logFlushAt. When the disk cannot keep up
// and the buffer reaches logBufMax, lines are dropped (and counted), so a
// slow disk never slows the request path.
type accessLog struct {
	out  io.Writer
	file *os.File // nil for stdout
	lost prometheus.Counter

	mu     sync.Mutex
	buf    []byte
	closed bool
	kick   chan struct{}
	done   chan struct{}
}

const (
	logFlushEvery = 200 * time.Millisecond
	logFlushAt    = 64 << 10
	logBufMax     = 4 << 20
	logMaxPath    = 1024
	logMaxAgent   = 256
)

// openAccessLog opens path ("stdout" or a file, appended to, created 0640).
func openAccessLog(path string, lost prometheus.Counter) (*accessLog, error) {
	l := &accessLog{lost: lost, kick: make(chan struct{}, 1), done: make(chan struct{})}
	if path == "stdout" {
		l.out = os.Stdout
	} else {
		// The directory too (/var/log/moat on a fresh host), as moat
		// config check promised it could be.
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("open access log: %w (check moat may create the directory)", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("open access log: %w (check the directory exists and moat may write it)", err)
		}
		l.out, l.file = f, f
	}
	go l.flusher()
	return l, nil
}

func (l *accessLog) write(line []byte) {
	l.mu.Lock()
	if l.closed || len(l.buf)+len(line) > logBufMax {
		l.mu.Unlock()
		l.lost.Inc()
		return
	}
	l.buf = append(l.buf, line...)
	full := len(l.buf) >= logFlushAt
	l.mu.Unlock()
	if full {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

func (l *accessLog) flusher() {
	defer close(l.done)
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	var spare []byte
	for {
		select {
		case <-t.C:
		case <-l.kick:
		}
		l.mu.Lock()
		out, closed := l.buf, l.closed
		l.buf = spare[:0]
		l.mu.Unlock()
		if len(out) > 0 {
			l.out.Write(out)
		}
		spare = out
		if closed {
			return
		}
	}
}

// close flushes what is buffered and closes the file. Later writes are
// dropped.
func (l *accessLog) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	<-l.done
	if l.file != nil {
		l.file.Close()
	}
}

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// logRequest appends st's line to the log.
func (l *accessLog) logRequest(st *reqState, now time.Time) {
	bp := lineBufs.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","site":`...)
	b = appendJSONString(b, st.host, 256)
	if st.route != nil {
		b = append(b, `,"route":`...)
		b = appendJSONString(b, st.route.path, logMaxPath)
	}
	b = append(b, `,"client":"`...)
	b = st.client.AppendTo(b)
	b = append(b, '"')
	if st.trusted {
		b = append(b, `,"peer":"`...)
		b = st.peer.AppendTo(b)
		b = append(b, '"')
	}
	r := st.req
	b = append(b, `,"method":`...)
	b = appendJSONString(b, r.Method, 32)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, r.URL.Path, logMaxPath)
	b = append(b, `,"proto":`...)
	b = appendJSONString(b, r.Proto, 16)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(st.w.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, st.w.bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(now.Sub(st.start).Microseconds())/1000, 'f', 3, 64)
	if ua := r.Header["User-Agent"]; len(ua) > 0 {
		b = append(b, `,"ua":`...)
		b = appendJSONString(b, ua[0], logMaxAgent)
	}
	if st.denied != "" {
		b = append(b, `,"deny":`...)
		b = appendJSONString(b, st.denied, 32)
	}
	if st.user != "" {
		b = append(b, `,"user":`...)
		b = appendJSONString(b, st.user, 64)
	}
	b = append(b, "}\n"...)
	l.write(b)
	*bp = b
	lineBufs.Put(bp)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, cut to at most limit bytes
// of input, with invalid UTF-8 replaced: request fields are the client's
// and may be anything.
func appendJSONString(b []byte, s string, limit int) []byte {
	if len(s) > limit {
		s = s[:limit]
	}
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
