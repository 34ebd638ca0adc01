// Package tailscaletest serves recorded tailscaled local API answers on a
// Unix socket, for tests: a fake tailscaled that checks the Host header
// as the real one does.
package tailscaletest

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// Answers maps a local API path (without the query) to the file whose
// bytes answer it; a path not listed answers 404.
type Answers map[string]string

// Serve starts a fake local API on a socket under t's temporary
// directory answering with the files of a, and returns the socket's path.
func Serve(t testing.TB, a Answers) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ts")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "tailscaled.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// tailscaled refuses any other Host (DNS rebinding).
		if r.Host != "local-tailscaled.sock" || r.Method != http.MethodGet {
			http.Error(w, "invalid localapi request", http.StatusForbidden)
			return
		}
		f, ok := a[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		b, err := os.ReadFile(f)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// Fixture is the path of a recorded answer in internal/tailscale/testdata,
// from a test in a package directory beside it (internal/X).
func Fixture(name string) string { return filepath.Join("..", "tailscale", "testdata", name) }
