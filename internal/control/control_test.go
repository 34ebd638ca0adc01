package control

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func startServer(t *testing.T) (*Server, string) {
	path := filepath.Join(t.TempDir(), "moat.sock")
	s := NewServer(path, slog.Default())
	s.Handle("echo", func(_ context.Context, args json.RawMessage) (any, error) {
		var v map[string]string
		if err := json.Unmarshal(args, &v); err != nil {
			return nil, err
		}
		return v, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(path); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s, path
}

func TestCallAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_PEERCRED admits root only; run as root")
	}
	_, path := startServer(t)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", st.Mode().Perm())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out map[string]string
	if err := Call(ctx, path, "echo", map[string]string{"a": "b"}, &out); err != nil || out["a"] != "b" {
		t.Fatalf("echo: %v %v", out, err)
	}
	if err := Call(ctx, path, "nope", nil, nil); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown command: %v", err)
	}
	// A second daemon on the same socket must refuse, not steal it.
	s2 := NewServer(path, slog.Default())
	if err := s2.Run(ctx); err == nil || !strings.Contains(err.Error(), "another moat daemon") {
		t.Errorf("second server: %v", err)
	}
}

// TestNonRootRefused connects as nobody through a copy of the socket's
// directory made accessible: the peer check must refuse even when the mode
// would let the connection in.
func TestNonRootRefused(t *testing.T) {
	if os.Getenv("MOAT_CONTROL_CLIENT") != "" {
		err := Call(context.Background(), os.Getenv("MOAT_CONTROL_CLIENT"), "echo", map[string]string{}, nil)
		if err == nil || !strings.Contains(err.Error(), "root-only") {
			t.Fatalf("as nobody: %v", err)
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to nobody")
	}
	dir, err := os.MkdirTemp("", "moat-control-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "moat.sock")
	s := NewServer(path, slog.Default())
	s.Handle("echo", func(context.Context, json.RawMessage) (any, error) { return "hi", nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(path); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.Chmod(path, 0o666) // as if someone loosened it
	self, _ := os.Executable()
	exe := filepath.Join(dir, "control.test")
	b, _ := os.ReadFile(self)
	os.WriteFile(exe, b, 0o755)
	cmd := exec.Command(exe, "-test.run=^TestNonRootRefused$")
	cmd.Env = append(os.Environ(), "MOAT_CONTROL_CLIENT="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
