package tailscale

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"time"
)

// DefaultSocket is tailscaled's local API socket on Linux.
const DefaultSocket = "/var/run/tailscale/tailscaled.sock"

// localAPIHost is the Host the local API requires: it refuses others, so
// a web page cannot reach it through DNS rebinding.
const localAPIHost = "local-tailscaled.sock"

// ErrAbsent means tailscaled is not on this host: no socket, no CLI.
var ErrAbsent = errors.New("tailscaled is not running here (no local API socket, no tailscale command)")

// Client reads tailscaled's state.
type Client struct {
	// Socket is the local API's socket (DefaultSocket when empty).
	Socket string
	// CLI is the tailscale command for the fallback ("tailscale" on
	// PATH when empty; "-" disables the fallback).
	CLI string
	// Timeout bounds the whole read (5s when zero).
	Timeout time.Duration
}

// maxBody bounds one answer: a status with thousands of peers fits.
const maxBody = 16 << 20

// Read returns tailscaled's state: from the local API when its socket
// answers, else from the tailscale command. ErrAbsent when neither is
// there.
func (c *Client) Read(ctx context.Context) (*State, error) {
	to := c.Timeout
	if to == 0 {
		to = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	sock := c.Socket
	if sock == "" {
		sock = DefaultSocket
	}
	st, apiErr := c.readAPI(ctx, sock)
	if apiErr == nil {
		return st, nil
	}
	st, cliErr := c.readCLI(ctx)
	if cliErr == nil {
		return st, nil
	}
	if errors.Is(apiErr, fs.ErrNotExist) && errors.Is(cliErr, exec.ErrNotFound) {
		return nil, ErrAbsent
	}
	return nil, fmt.Errorf("read tailscaled's state: local API: %w; tailscale command: %v", apiErr, cliErr)
}

func (c *Client) readAPI(ctx context.Context, sock string) (*State, error) {
	if _, err := os.Stat(sock); err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}}
	st := &State{Source: "local API"}
	// Peers are not needed: a large tailnet's status is megabytes.
	if err := getJSON(ctx, hc, "/localapi/v0/status?peers=false", &st.Status); err != nil {
		return nil, err
	}
	var sc ServeConfig
	if err := getJSON(ctx, hc, "/localapi/v0/serve-config", &sc); err == nil {
		st.Serve = &sc
	}
	var p Prefs
	if err := getJSON(ctx, hc, "/localapi/v0/prefs", &p); err == nil {
		st.Prefs = &p
	}
	return st, nil
}

func getJSON(ctx context.Context, hc *http.Client, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+localAPIHost+path, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if len(body) > maxBody {
		return fmt.Errorf("GET %s: answer larger than %d bytes", path, maxBody)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(body[:min(len(body), 200)]))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

func (c *Client) readCLI(ctx context.Context) (*State, error) {
	cli := c.CLI
	if cli == "-" {
		return nil, exec.ErrNotFound
	}
	if cli == "" {
		cli = "tailscale"
	}
	path, err := exec.LookPath(cli)
	if err != nil {
		return nil, err
	}
	run := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, path, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &limited{w: &out, n: maxBody}, &limited{w: &errb, n: 4096}
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%s %v: %w: %s", cli, args, err, bytes.TrimSpace(errb.Bytes()))
		}
		return out.Bytes(), nil
	}
	st := &State{Source: "tailscale CLI"}
	out, err := run("status", "--json", "--peers=false")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(out, &st.Status); err != nil {
		return nil, fmt.Errorf("tailscale status --json: %w", err)
	}
	if out, err := run("serve", "status", "--json"); err == nil {
		var sc ServeConfig
		if json.Unmarshal(out, &sc) == nil {
			st.Serve = &sc
		}
	}
	return st, nil
}

// limited writes at most n bytes to w and drops the rest.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	k := min(len(p), l.n)
	if k > 0 {
		if _, err := l.w.Write(p[:k]); err != nil {
			return 0, err
		}
		l.n -= k
	}
	return len(p), nil
}
