package probe

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hostile is a loopback server that misbehaves the same way on every
// connection, and counts what it managed to send.
type hostile struct {
	ln   net.Listener
	sent atomic.Int64
	wg   sync.WaitGroup
	stop chan struct{}
}

func startHostile(t *testing.T, behave func(c net.Conn, h *hostile)) *hostile {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostile{ln: ln, stop: make(chan struct{})}
	h.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.wg.Go(func() {
				defer c.Close()
				go io.Copy(io.Discard, c)
				behave(c, h)
			})
		}
	})
	t.Cleanup(func() { close(h.stop); ln.Close(); h.wg.Wait() })
	return h
}

func (h *hostile) addr() netip.AddrPort { return netip.MustParseAddrPort(h.ln.Addr().String()) }

func (h *hostile) write(c net.Conn, b []byte) bool {
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	n, err := c.Write(b)
	h.sent.Add(int64(n))
	return err == nil
}

// TestHostileServers: servers that send garbage, an endless stream, one
// byte at a time forever, or nothing at all. The examination of each port
// ends on its own deadlines, reads a bounded amount, and reports only
// printable text.
func TestHostileServers(t *testing.T) {
	cases := map[string]func(c net.Conn, h *hostile){
		"garbage": func(c net.Conn, h *hostile) {
			b := make([]byte, 3000)
			rand.Read(b)
			h.write(c, b)
		},
		"endless": func(c net.Conn, h *hostile) {
			b := make([]byte, 64<<10)
			for i := range b {
				pat := "SSH-2.0-\x1b[31m\r\n"
				b[i] = pat[i%len(pat)]
			}
			for h.sent.Load() < 1<<30 && h.write(c, b) {
				select {
				case <-h.stop:
					return
				default:
				}
			}
		},
		"endless-http": func(c net.Conn, h *hostile) {
			h.write(c, []byte("HTTP/1.1 200 OK\r\nServer: x\r\n"))
			for h.sent.Load() < 1<<30 && h.write(c, []byte("X-Junk: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")) {
			}
		},
		"slow": func(c net.Conn, h *hostile) {
			for _, b := range []byte("SSH-2.0-slowloris_but_never_ending_the_line") {
				select {
				case <-h.stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if !h.write(c, []byte{b}) {
					return
				}
			}
			<-h.stop
		},
		"silent": func(c net.Conn, h *hostile) { <-h.stop },
	}
	for name, behave := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := startHostile(t, behave)
			p := &Prober{Timeout: 500 * time.Millisecond, BannerWait: 200 * time.Millisecond, Names: []string{"app.test"}}
			// A liveness bound, far above what the deadlines allow: the
			// test fails only if the probe hangs.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			done := make(chan Service, 1)
			go func() { done <- p.identify(ctx, h.addr()) }()
			var s Service
			select {
			case s = <-done:
			case <-ctx.Done():
				t.Fatalf("the probe of a %s server did not end", name)
			}
			printable(t, "banner", s.Banner)
			printable(t, "summary", summary(&s))
			// What the server got out is bounded by our reads plus the
			// kernel's socket buffers, never its 1 GiB.
			if n := h.sent.Load(); n > 64<<20 {
				t.Errorf("the server sent %d bytes: reads are not bounded", n)
			}
			t.Logf("%s: identified as %q, server sent %d bytes", name, s.Name, h.sent.Load())
		})
	}
}
