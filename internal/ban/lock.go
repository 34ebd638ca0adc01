package ban

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockName is the lock file in the state directory.
const LockName = "moat.lock"

// ErrLocked is returned by LockStateDir when another process holds the
// state directory.
var ErrLocked = errors.New("state directory in use")

// Lock is the exclusive hold of a state directory by one `moat run` for
// its whole life: two daemons on one moat.db would each reconcile, expire
// and tail the same logs. It is an flock(2) on dir/moat.lock, so the
// kernel releases it when the process dies, however it dies.
type Lock struct{ f *os.File }

// LockStateDir takes the state directory dir (creating it, 0700) or fails
// at once with an error wrapping ErrLocked that names the holder's pid.
func LockStateDir(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := "another process"
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = fmt.Sprintf("process %d", pid)
			}
			return nil, fmt.Errorf("%w: %s holds %s (another moat run on the same --state directory; stop it first)", ErrLocked, holder, path)
		}
		return nil, fmt.Errorf("state directory lock %s: %w", path, err)
	}
	// The pid is for the message above only: the flock is the lock.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release gives the directory up.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the only descriptor drops the flock
	l.f = nil
	return err
}
