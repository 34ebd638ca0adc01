package cli

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/tailscale"
)

// fakeTailscaled serves a recorded status on a Unix socket laid out as
// tailscaled's under root.
func fakeTailscaled(t *testing.T, root, status string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "tailscale", "testdata", status))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(root, tailscale.DefaultSocket)
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/localapi/v0/status") {
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// The SSH-behind-VPN gate asks tailscaled: a node whose key expiry is
// disabled is a second path; one whose key is near expiry is not, and the
// refusal says what to do.
func TestTailscaleSecondPathWired(t *testing.T) {
	c := &config.Config{}
	if pc := tailscaleSecondPath(c, t.TempDir()); pc != nil {
		t.Fatal("no tailscaled and no tailscale interface: no check")
	}

	root := t.TempDir()
	fakeTailscaled(t, root, "status-expiry-disabled.json")
	pc := tailscaleSecondPath(c, root)
	if pc == nil {
		t.Fatal("tailscaled's socket is there: the check applies")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := pc(ctx)
	if err != nil || !strings.Contains(ev, "key expiry disabled") {
		t.Fatalf("expiry disabled: %q, %v", ev, err)
	}

	root = t.TempDir()
	fakeTailscaled(t, root, "status-expiry-near.json") // expiry a fixed date: near now, past later; refused either way
	if _, err := tailscaleSecondPath(c, root)(ctx); err == nil || !strings.Contains(err.Error(), "expire") {
		t.Fatalf("expiry near: want a refusal naming the expiry, got %v", err)
	}

	// Named in the config but not running: a refusal, not a pass.
	c.VPN.Interfaces = []string{"tailscale0"}
	if _, err := tailscaleSecondPath(c, t.TempDir())(ctx); err == nil {
		t.Fatal("tailscale0 configured, tailscaled absent: want a refusal")
	}
}
