package ruleset

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// require skips the test, or fails it under MOAT_TEST_STRICT=1 (a private
// copy of lab.Require, to keep this package's tests free of the lab).
func require(t testing.TB, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("MOAT_TEST_STRICT") == "1" {
		t.Fatalf("%s (MOAT_TEST_STRICT=1: not skipping)", reason)
	}
	t.Skip(reason)
}

func requireRoot(t testing.TB) {
	t.Helper()
	require(t, os.Geteuid() == 0, "needs root: run the tests as root")
}

func requireTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		_, err := host{}.lookPath(n)
		require(t, err == nil, fmt.Sprintf("needs %s: %v (apt install nftables iptables iproute2)", n, err))
	}
}

// caseDir holds the rulesets the tests load: NAME.nft (nft -f),
// NAME.rules/.rules6 (ip(6)tables-nft-restore), NAME.legacy/.legacy6
// (ip(6)tables-legacy-restore), and their captures: NAME.json (nft -j list
// ruleset), NAME.nft-save/.nft-save6 and NAME.legacy-save/.legacy-save6.
const caseDir = "testdata/cases"

// caseNames lists the cases: every base name with a source file.
func caseNames(t testing.TB) []string {
	t.Helper()
	seen := map[string]bool{}
	var names []string
	for _, pat := range []string{"*.nft", "*.rules", "*.legacy"} {
		m, err := filepath.Glob(filepath.Join(caseDir, pat))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			n := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	return names
}

// caseSystem plays the host for live(): the commands' output comes from a
// case's captures.
type caseSystem struct{ name string }

var captureOf = map[string]string{
	"nft":                   ".json",
	"iptables-nft-save":     ".nft-save",
	"ip6tables-nft-save":    ".nft-save6",
	"iptables-legacy-save":  ".legacy-save",
	"ip6tables-legacy-save": ".legacy-save6",
}

func (s caseSystem) file(ext string) string { return filepath.Join(caseDir, s.name+ext) }

func (s caseSystem) lookPath(name string) (string, error) {
	ext, ok := captureOf[name]
	if !ok {
		return "", exec.ErrNotFound
	}
	if _, err := os.Stat(s.file(ext)); err != nil {
		return "", exec.ErrNotFound
	}
	return name, nil
}

func (s caseSystem) run(_ context.Context, path string, _ ...string) ([]byte, error) {
	return os.ReadFile(s.file(captureOf[path]))
}

func (s caseSystem) readFile(name string) ([]byte, error) {
	ext := ".legacy-save"
	if strings.Contains(name, "ip6") {
		ext = ".legacy-save6"
	}
	if _, err := os.Stat(s.file(ext)); err != nil {
		return nil, fs.ErrNotExist
	}
	return []byte("filter\n"), nil
}

// loadCase reads a case's captures the way Live reads a host.
func loadCase(t testing.TB, name string) *Ruleset {
	t.Helper()
	rs, err := live(context.Background(), caseSystem{name})
	if err != nil {
		t.Fatalf("load case %s: %v", name, err)
	}
	return rs
}

// netns is a network namespace the test created; it is deleted on cleanup.
type netns struct{ name string }

func newNetns(t testing.TB, name string) netns {
	t.Helper()
	sweepOnce.Do(sweepStale)
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	ns := netns{name}
	ns.run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// run runs a command inside the namespace.
func (n netns) run(t testing.TB, args ...string) string {
	t.Helper()
	return mustRun(t, append([]string{"ip", "netns", "exec", n.name}, args...)...)
}

func mustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, err := runCmd(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runCmd(args ...string) (string, error) {
	path, err := host{}.lookPath(args[0])
	if err != nil {
		return "", err
	}
	var stdout, stderr strings.Builder
	cmd := exec.Command(path, args[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// do runs fn on an OS thread that entered the namespace. The thread is
// never handed back to the scheduler: it ends with the goroutine.
func (n netns) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no Unlock: the thread dies with the goroutine
		f, err := os.Open(filepath.Join("/run/netns", n.name))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// loadInto loads a case's sources into the namespace.
func loadInto(t testing.TB, ns netns, name string) {
	t.Helper()
	loaders := []struct{ ext, tool string }{
		{".nft", "nft"},
		{".rules", "iptables-nft-restore"},
		{".rules6", "ip6tables-nft-restore"},
		{".legacy", "iptables-legacy-restore"},
		{".legacy6", "ip6tables-legacy-restore"},
	}
	for _, l := range loaders {
		f := filepath.Join(caseDir, name+l.ext)
		if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if l.tool == "nft" {
			ns.run(t, "nft", "-f", f)
		} else {
			ns.run(t, l.tool, f)
		}
	}
}

// nsPrefix marks the namespaces these tests create; the pid after it says
// whose they are.
const nsPrefix = "rulesettest-"

// uniqueName returns a namespace name unique to this process.
func uniqueName(tag string) string {
	return fmt.Sprintf("%s%d-%s", nsPrefix, os.Getpid(), tag)
}

var sweepOnce sync.Once

// sweepStale deletes namespaces left by runs of these tests that were
// killed before their cleanups ran (their pid is gone).
func sweepStale() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		pid, _, _ := strings.Cut(rest, "-")
		if _, err := os.Stat("/proc/" + pid); errors.Is(err, fs.ErrNotExist) {
			_ = exec.Command("ip", "netns", "del", e.Name()).Run()
		}
	}
}

func readCase(t testing.TB, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(caseDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// kernel fails: captured cases are nft's JSON, read by the fallback.
func (s caseSystem) kernel() (*Ruleset, error) { return nil, errors.New("netlink: captured case") }
