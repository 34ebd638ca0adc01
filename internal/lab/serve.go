package lab

import (
	"io"
	"net"
	"sync"
	"testing"
)

// ServeTCP runs a TCP echo server on addr inside h until t ends and returns
// the address it listens on (addr may use port 0).
func (h *Host) ServeTCP(t testing.TB, addr string) net.Addr {
	t.Helper()
	ln, err := h.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("lab: serve tcp on host %s: %v", h.name, err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at cleanup
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				io.Copy(c, c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr()
}

// ServeUDP runs a UDP echo server on addr inside h until t ends and returns
// the address it listens on. CanConnect("udp", ...) expects such a server.
func (h *Host) ServeUDP(t testing.TB, addr string) net.Addr {
	t.Helper()
	pc, err := h.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("lab: serve udp on host %s: %v", h.name, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed at cleanup
			}
			pc.WriteTo(buf[:n], from)
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return pc.LocalAddr()
}
