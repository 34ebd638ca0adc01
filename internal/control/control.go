// Package control is the daemon's control socket: a unix socket, root-only
// (mode 0600, and the peer's uid checked with SO_PEERCRED), carrying one
// JSON request and one JSON response per connection. `moat bans`, `moat ban`,
// `moat status` and friends are its clients.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// DefaultPath is where `moat run` listens.
const DefaultPath = "/run/moat/moat.sock"

// maxRequest bounds a request's size: requests are small commands.
const maxRequest = 64 << 10

// Request is one command with its arguments.
type Request struct {
	Command string          `json:"command"`
	Args    json.RawMessage `json:"args,omitempty"`
}

// Response carries a result or an error message.
type Response struct {
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Handler answers one command. args is the request's raw arguments.
type Handler func(ctx context.Context, args json.RawMessage) (any, error)

// Server serves commands on a unix socket.
type Server struct {
	path     string
	log      *slog.Logger
	mu       sync.RWMutex
	handlers map[string]Handler
	// allowUID is the uid allowed besides root (tests); -1 for root only.
	allowUID int
	// listening is closed once the socket accepts connections.
	listening chan struct{}
}

// NewServer returns a server for path (DefaultPath if empty).
func NewServer(path string, log *slog.Logger) *Server {
	if path == "" {
		path = DefaultPath
	}
	return &Server{path: path, log: log, handlers: map[string]Handler{}, allowUID: -1, listening: make(chan struct{})}
}

// Listening is closed once Run accepts connections: a caller that says
// "ready" (systemd's READY=1) waits for it.
func (s *Server) Listening() <-chan struct{} { return s.listening }

// Handle registers a command.
func (s *Server) Handle(command string, h Handler) {
	s.mu.Lock()
	s.handlers[command] = h
	s.mu.Unlock()
}

// Run listens until ctx ends. A stale socket from a crashed daemon is
// replaced; a live one (another daemon answering) is an error.
func (s *Server) Run(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", s.path, 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another moat daemon is running (hint: stop it first)", s.path)
	}
	os.Remove(s.path)
	// The socket is created 0600 by the umask, not chmod'ed after, so there
	// is no window in which others could connect.
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", s.path)
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	defer os.Remove(s.path)
	close(s.listening)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("control socket: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serve(ctx, c.(*net.UnixConn))
		}()
	}
}

func (s *Server) serve(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	// The request is read before the peer is judged, so a refused client
	// gets the refusal rather than a broken pipe; nothing runs before the
	// check.
	var req Request
	decErr := json.NewDecoder(io.LimitReader(c, maxRequest)).Decode(&req)
	if err := s.checkPeer(c); err != nil {
		writeResponse(c, Response{Error: err.Error()})
		return
	}
	if decErr != nil {
		writeResponse(c, Response{Error: "bad request: " + decErr.Error()})
		return
	}
	s.mu.RLock()
	h, ok := s.handlers[req.Command]
	s.mu.RUnlock()
	if !ok {
		writeResponse(c, Response{Error: fmt.Sprintf("unknown command %q", req.Command)})
		return
	}
	res, err := h(ctx, req.Args)
	if err != nil {
		writeResponse(c, Response{Error: err.Error()})
		return
	}
	b, err := json.Marshal(res)
	if err != nil {
		writeResponse(c, Response{Error: "encode result: " + err.Error()})
		return
	}
	writeResponse(c, Response{OK: true, Result: b})
}

// checkPeer admits root (and the test uid) only: the socket's mode already
// keeps others out; this holds even if the mode were changed.
func (s *Server) checkPeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var serr error
	raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if serr != nil {
		return fmt.Errorf("peer credentials: %w", serr)
	}
	if cred.Uid != 0 && int(cred.Uid) != s.allowUID {
		return errors.New("permission denied: the control socket is root-only")
	}
	return nil
}

func writeResponse(w io.Writer, r Response) {
	json.NewEncoder(w).Encode(r)
}

// Call sends one command to the daemon at path and decodes its result into
// out (which may be nil).
func Call(ctx context.Context, path, command string, args, out any) error {
	if path == "" {
		path = DefaultPath
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("connect to moat daemon at %s: %w (hint: is `moat run` running? are you root?)", path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	req := Request{Command: command}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return err
		}
		req.Args = b
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return fmt.Errorf("send to moat daemon: %w", err)
	}
	var resp Response
	if err := json.NewDecoder(io.LimitReader(c, 64<<20)).Decode(&resp); err != nil {
		return fmt.Errorf("read from moat daemon: %w", err)
	}
	if !resp.OK {
		return errors.New(resp.Error)
	}
	if out != nil && len(resp.Result) > 0 {
		return json.Unmarshal(resp.Result, out)
	}
	return nil
}
