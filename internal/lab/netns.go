package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

var errGoexit = errors.New("lab: function ended its goroutine inside Do (t.FailNow or runtime.Goexit from a helper goroutine?)")

// Do runs fn on an OS thread switched into h's namespace and returns its
// error. Sockets fn creates stay in h's namespace for their whole life, from
// any goroutine. fn must not start goroutines that expect to be inside h: they
// run on other threads. A panic in fn is re-raised in the caller.
func (h *Host) Do(fn func() error) error {
	type result struct {
		err   error
		panic any
		stack []byte
	}
	done := make(chan result, 1)
	go func() {
		// A fresh goroutine: its locked thread is ours alone, and if the
		// original namespace cannot be restored the goroutine exits still
		// locked, which makes the runtime throw the thread away instead of
		// handing it, stuck in h, to unrelated goroutines.
		runtime.LockOSThread()
		res := result{err: errGoexit}
		defer func() { done <- res }()

		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			res.err = fmt.Errorf("lab: open own netns: %w", err)
			runtime.UnlockOSThread()
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(filepath.Join(netnsDir, h.ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			res.err = fmt.Errorf("lab: open netns of host %s: %w", h.name, err)
			runtime.UnlockOSThread()
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			res.err = fmt.Errorf("lab: enter host %s: %w", h.name, err)
			runtime.UnlockOSThread()
			return
		}
		defer func() {
			if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
				res.err = errors.Join(res.err, fmt.Errorf("lab: leave host %s (thread discarded): %w", h.name, err))
				return // stay locked
			}
			runtime.UnlockOSThread()
		}()
		defer func() {
			if v := recover(); v != nil {
				res = result{panic: v, stack: debug.Stack()}
			}
		}()
		res.err = fn()
	}()
	r := <-done
	if r.stack != nil {
		panic(fmt.Sprintf("%v [in lab host %s]\n\n%s", r.panic, h.name, r.stack))
	}
	return r.err
}

// Listen is net.Listen inside h.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// ListenPacket is net.ListenPacket inside h.
func (h *Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := h.Do(func() (err error) {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

// Dial connects from h. The address's host must be an IP literal.
func (h *Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := checkLiteral(network, addr); err != nil {
		return nil, err
	}
	var c net.Conn
	err := h.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("from %s: %w", h.name, err)
	}
	return c, nil
}

// DialTimeout is Dial with a timeout.
func (h *Host) DialTimeout(network, addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return h.Dial(ctx, network, addr)
}

// checkLiteral refuses host names: with one, the net package may dial from
// goroutines on other threads, outside the namespace.
func checkLiteral(network, addr string) error {
	if !strings.HasPrefix(network, "tcp") && !strings.HasPrefix(network, "udp") {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("lab: dial %s: %w", addr, err)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("lab: dial %s: the host must be an IP literal, not a name", addr)
	}
	return nil
}

// udpProbe is what CanConnect sends over UDP and expects back.
var udpProbe = []byte("moat-lab-probe\n")

// CanConnect reports whether h reaches addr within timeout. For TCP that is
// a completed handshake. For UDP it is a reply equal to a probe datagram,
// so the far end must echo, as ServeUDP does; a drop, a reject and a silent
// server all read as false.
func (h *Host) CanConnect(network, addr string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := h.Dial(ctx, network, addr)
	if err != nil {
		return false
	}
	defer c.Close()
	if !strings.HasPrefix(network, "udp") {
		return true
	}
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	if _, err := c.Write(udpProbe); err != nil {
		return false
	}
	buf := make([]byte, 2*len(udpProbe))
	n, err := c.Read(buf)
	return err == nil && bytes.Equal(buf[:n], udpProbe)
}

// HTTPClient returns a client whose connections are dialed from h. Its
// Transport is an *http.Transport: set TLSClientConfig on it (ServerName,
// RootCAs) to talk TLS to a name while the URL holds an IP literal. Idle
// connections are closed when the lab ends.
func (h *Host) HTTPClient() *http.Client {
	tr := &http.Transport{
		DialContext:         h.Dial,
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        10,
		IdleConnTimeout:     30 * time.Second,
	}
	h.lab.mu.Lock()
	h.lab.transports = append(h.lab.transports, tr)
	h.lab.mu.Unlock()
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// WaitListen waits until some socket in h listens on port: a TCP socket in
// LISTEN state for "tcp", a bound UDP socket for "udp". It is how a test
// waits for a server it started with Start.
func (h *Host) WaitListen(ctx context.Context, network string, port int) error {
	files := map[string][2]string{
		"tcp": {"tcp", "tcp6"}, "tcp4": {"tcp", ""}, "tcp6": {"tcp6", ""},
		"udp": {"udp", "udp6"}, "udp4": {"udp", ""}, "udp6": {"udp6", ""},
	}[network]
	if files[0] == "" {
		return fmt.Errorf("lab: wait listen: network %q: want tcp or udp", network)
	}
	state := stateListen
	if strings.HasPrefix(network, "udp") {
		state = stateUDPBound
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var found bool
		err := h.Do(func() error {
			for _, f := range files {
				if f == "" {
					continue
				}
				// thread-self: /proc/self/net would show the main thread's namespace.
				b, err := os.ReadFile("/proc/thread-self/net/" + f)
				if err != nil && !isNotExist(err) {
					return err
				}
				if hasSocket(b, port, state) {
					found = true
				}
			}
			return nil
		})
		if err != nil || found {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab: nothing listens on %s port %d in host %s: %w", network, port, h.name, ctx.Err())
		case <-tick.C:
		}
	}
}

const (
	stateListen   = "0A" // TCP_LISTEN in /proc/net/tcp
	stateUDPBound = "07" // TCP_CLOSE, which unconnected UDP sockets report
)

// hasSocket scans a /proc/net/{tcp,udp}[6] table for a socket on local port
// port in the given state.
func hasSocket(table []byte, port int, state string) bool {
	want := fmt.Sprintf(":%04X", port)
	lines := bytes.Split(table, []byte("\n"))
	for _, line := range lines[min(1, len(lines)):] { // skip the header
		f := strings.Fields(string(line))
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == state {
			return true
		}
	}
	return false
}

func writeFile(path, value string) error { return os.WriteFile(path, []byte(value), 0o644) }

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
