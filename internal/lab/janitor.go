package lab

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Ownership of lab names: each test process claims a random token by holding
// an flock on lockDir/<token>.lock for its whole life. The kernel drops the
// lock however the process dies, so a token whose lock can be taken belongs to
// a dead process and its namespaces are garbage.
const (
	lockDir   = "/run/moat-lab"
	netnsDir  = "/run/netns"
	etcNetns  = "/etc/netns"
	orphanAge = 10 * time.Minute // for names whose lock file is gone
)

var owner struct {
	once  sync.Once
	token string
	lock  *os.File // held open, never closed: the flock lives as long as we do
	err   error
	labs  uint64
	mu    sync.Mutex
}

// processToken claims this process's token on first use and sweeps what dead
// processes left behind.
func processToken() (string, error) {
	owner.once.Do(func() {
		owner.token, owner.lock, owner.err = claimToken()
		if owner.err == nil {
			sweep(owner.token)
		}
	})
	return owner.token, owner.err
}

func nextLab() uint64 {
	owner.mu.Lock()
	defer owner.mu.Unlock()
	owner.labs++
	return owner.labs
}

func lockPath(token string) string { return filepath.Join(lockDir, token+".lock") }

func claimToken() (string, *os.File, error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return "", nil, fmt.Errorf("lab lock dir: %w", err)
	}
	// Lock a private file first and only then link it into place, so no
	// janitor ever sees our token's lock file unlocked.
	f, err := os.CreateTemp(lockDir, ".claim-")
	if err != nil {
		return "", nil, fmt.Errorf("lab lock file: %w", err)
	}
	defer os.Remove(f.Name())
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	for range 32 {
		token := strings.ToLower(rand.Text()[:tokenLen])
		err := os.Link(f.Name(), lockPath(token)) // unlike rename, fails on a taken token
		if err == nil {
			return token, f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			f.Close()
			return "", nil, fmt.Errorf("claim lab token: %w", err)
		}
	}
	f.Close()
	return "", nil, errors.New("claim lab token: every try was taken; clean " + lockDir)
}

// sweep removes namespaces, /etc/netns dirs and lock files of dead owners.
// It is best effort: whatever it cannot remove now, a later run retries.
func sweep(self string) {
	names := map[string][]string{} // token → lab names
	oldNames := map[string]bool{}  // names older than orphanAge
	for _, dir := range []string{netnsDir, etcNetns} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			tok := tokenOf(e.Name())
			if tok == "" || tok == self {
				continue
			}
			names[tok] = append(names[tok], e.Name())
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > orphanAge {
				oldNames[e.Name()] = true
			}
		}
	}
	entries, _ := os.ReadDir(lockDir)
	for _, e := range entries {
		n := e.Name()
		if tok, ok := strings.CutSuffix(n, ".lock"); ok && tok != self {
			if _, seen := names[tok]; !seen {
				names[tok] = nil
			}
		} else if strings.HasPrefix(n, ".claim-") {
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > orphanAge {
				os.Remove(filepath.Join(lockDir, n))
			}
		}
	}
	for tok, ns := range names {
		sweepToken(tok, ns, oldNames)
	}
}

func sweepToken(tok string, names []string, old map[string]bool) {
	f, err := os.Open(lockPath(tok))
	if errors.Is(err, fs.ErrNotExist) {
		// No owner on record (a janitor died mid-sweep, or someone cleaned
		// lockDir): only age tells these are garbage.
		for _, n := range names {
			if old[n] {
				removeNetns(n)
			}
		}
		return
	}
	if err != nil {
		return
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return // owner alive, or another janitor is on it
	}
	if !samePath(f, lockPath(tok)) {
		return // another janitor finished it and the token was claimed anew
	}
	var failed bool
	for _, n := range names {
		if removeNetns(n) != nil {
			failed = true
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix(tok)+"*"))
	for _, d := range dirs {
		if os.RemoveAll(d) != nil {
			failed = true
		}
	}
	if !failed {
		os.Remove(lockPath(tok))
	}
}

// tempPrefix starts the names of temporary dirs the lab makes outside
// t.TempDir, so the sweep can find a dead owner's.
func tempPrefix(token string) string { return "moat-lab-" + token + "-" }

func samePath(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// removeNetns kills every process in the named namespace, deletes it and its
// /etc/netns dir. Missing pieces are not errors.
func removeNetns(name string) error {
	var errs []error
	path := filepath.Join(netnsDir, name)
	if _, err := os.Stat(path); err == nil {
		for _, pid := range pidsIn(path) {
			unix.Kill(pid, unix.SIGKILL)
		}
		if out, err := ipCmd("netns", "del", name).CombinedOutput(); err != nil {
			if _, statErr := os.Stat(path); statErr == nil {
				errs = append(errs, fmt.Errorf("ip netns del %s: %w: %s", name, err, strings.TrimSpace(string(out))))
			}
		}
	}
	if err := os.RemoveAll(filepath.Join(etcNetns, name)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// pidsIn lists the processes whose network namespace is the one bound at
// nsPath, as `ip netns pids` does, leaving out this process: one of our
// threads may be visiting through Host.Do.
func pidsIn(nsPath string) []int {
	var want unix.Stat_t
	if unix.Stat(nsPath, &want) != nil {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/ns/net", &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			pids = append(pids, pid)
		}
	}
	return pids
}
