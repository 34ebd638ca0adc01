package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// kmsg reads the kernel log (/dev/kmsg) from where it stood when opened,
// for the names of the processes the OOM killer killed: /proc/vmstat
// counts kills but does not name them.
//
// The fd is read directly and non-blocking: an os.File would hand it to
// the runtime poller, and Read would wait for a record instead of
// reporting that there is none.
type kmsg struct {
	fd  int
	buf []byte
}

func openKmsg() (*kmsg, error) {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open kernel log: %w", err)
	}
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("seek kernel log: %w", err)
	}
	// A record is at most about 8 KiB (the kernel's CONSOLE_EXT_LOG_MAX).
	return &kmsg{fd: fd, buf: make([]byte, 8192)}, nil
}

// maxKmsgRecords bounds one drain: a kernel logging faster than the
// monitor reads cannot keep it busy.
const maxKmsgRecords = 20000

// drain hands the message of every record logged since the last drain
// to fn.
func (k *kmsg) drain(fn func(msg []byte)) {
	for range maxKmsgRecords {
		n, err := unix.Read(k.fd, k.buf)
		switch {
		case errors.Is(err, unix.EPIPE):
			continue // records were overwritten before we read them; go on from the next
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil || n <= 0:
			return // EAGAIN: nothing more for now
		}
		if msg, ok := kmsgMessage(k.buf[:n]); ok {
			fn(msg)
		}
	}
}

func (k *kmsg) Close() { unix.Close(k.fd) }

// kmsgMessage returns a /dev/kmsg record's text: "prio,seq,usec,flags;text\n"
// followed by continuation lines of key=value pairs.
func kmsgMessage(rec []byte) ([]byte, bool) {
	_, msg, ok := bytes.Cut(rec, []byte{';'})
	if !ok {
		return nil, false
	}
	msg, _, _ = bytes.Cut(msg, []byte{'\n'})
	return msg, true
}

// oomVictim is a process the OOM killer killed.
type oomVictim struct {
	pid  int
	comm string
}

// parseOOMKill reads the kernel's line for an OOM kill:
// "Out of memory: Killed process 4321 (stress) total-vm:…" (also "Memory
// cgroup out of memory: …", and "Kill process" on old kernels).
func parseOOMKill(msg []byte) (oomVictim, bool) {
	i := bytes.Index(msg, []byte("ut of memory: "))
	if i < 1 || msg[i-1] != 'o' && msg[i-1] != 'O' {
		return oomVictim{}, false
	}
	rest := msg[i+len("ut of memory: "):]
	var ok bool
	if rest, ok = bytes.CutPrefix(rest, []byte("Killed process ")); !ok {
		if rest, ok = bytes.CutPrefix(rest, []byte("Kill process ")); !ok {
			return oomVictim{}, false
		}
	}
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return oomVictim{}, false
	}
	pid, err := strconv.Atoi(string(rest[:sp]))
	if err != nil || pid <= 0 {
		return oomVictim{}, false
	}
	rest = rest[sp+1:]
	if len(rest) < 2 || rest[0] != '(' {
		return oomVictim{}, false
	}
	// A command name is at most 15 bytes and may itself hold ')': the
	// name ends at the last ')' it could reach.
	window := rest[1:min(len(rest), 1+16)]
	end := bytes.LastIndexByte(window, ')')
	if end <= 0 {
		return oomVictim{}, false
	}
	return oomVictim{pid: pid, comm: string(window[:end])}, true
}
