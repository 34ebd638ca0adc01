package firewall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// nftPath finds nft.
func nftPath() (string, error) {
	p, err := toolPath("nft")
	if err != nil {
		return "", errors.New("nft not found (install nftables: apt install nftables)")
	}
	return p, nil
}

// toolPath finds a program on PATH or in the sbin directories, which a
// non-login PATH often lacks.
func toolPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// runNFT runs nft with args, feeding stdin when it is not nil. It runs in
// the calling goroutine's thread, so a caller locked into a network
// namespace runs nft there. Errors carry nft's own message.
func runNFT(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	path, err := nftPath()
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("nft %s: %w:\n%s", strings.Join(args, " "), err, msg)
		}
		return nil, fmt.Errorf("nft %s: %w", strings.Join(args, " "), err)
	}
	return stdout.Bytes(), nil
}

// inScratch runs fn on an OS thread moved into a new, empty network
// namespace, so nft can load a candidate table without touching the host.
// The namespace goes away with the thread, which is never handed back to
// the scheduler.
func inScratch(fn func() error) error {
	type result struct {
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		var res result
		defer func() {
			if v := recover(); v != nil {
				res.panic = v
			}
			done <- res
		}()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			res.err = fmt.Errorf("create a scratch network namespace: %w (moat needs root)", err)
			return
		}
		res.err = fn()
	}()
	r := <-done
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// Check asks the kernel whether script would load, without committing it
// (nft -c), in the caller's network namespace: the live tables are in
// place, so a delete of a table that does not exist fails here as it
// would for real.
func Check(ctx context.Context, script string) error {
	if _, err := runNFT(ctx, []byte(script), "-c", "-f", "-"); err != nil {
		return fmt.Errorf("the rendered table does not load: %w", err)
	}
	return nil
}
