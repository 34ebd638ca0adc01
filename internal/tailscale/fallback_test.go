package tailscale_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/tailscale"
	"github.com/moat-sh/moat/internal/tailscale/tailscaletest"
)

// TestCLIFallback: without the socket, `tailscale status --json
// --peers=false` and `tailscale serve status --json` are read.
func TestCLIFallback(t *testing.T) {
	dir := t.TempDir()
	status, _ := filepath.Abs(tailscaletest.Fixture("status-funnel.json"))
	serve, _ := filepath.Abs(tailscaletest.Fixture("serve-funnel.json"))
	script := filepath.Join(dir, "tailscale")
	os.WriteFile(script, []byte(`#!/bin/sh
case "$*" in
"status --json --peers=false") exec cat `+status+` ;;
"serve status --json") exec cat `+serve+` ;;
esac
echo "unexpected: $*" >&2
exit 1
`), 0o755)
	st, err := (&tailscale.Client{Socket: filepath.Join(dir, "none.sock"), CLI: script}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Source != "tailscale CLI" || !st.Running() || len(st.Funnels()) != 2 || st.Prefs != nil {
		t.Errorf("state from the CLI: %+v", st)
	}
}

// TestHungAPITimesOut: a socket that accepts and never answers costs
// the timeout, not a hang.
func TestHungAPITimesOut(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "hung.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	done := make(chan error, 1)
	go func() {
		_, err := (&tailscale.Client{Socket: sock, CLI: "-", Timeout: 200 * time.Millisecond}).Read(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a silent socket gave a state")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Read did not return: the timeout does not bound it")
	}
}
