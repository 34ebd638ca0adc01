package logwatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The directory is watched, not the file: a rename+create rotation is a
// create event in the directory, and writes to the renamed file still
// arrive as modify events under its new name.
const watchMask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// maxOpened bounds the files opened ahead of the reader.
const maxOpened = 8

// watcher reports activity on one file name (and its rotated siblings) in
// a directory through inotify.
type watcher struct {
	file *os.File
	path string
	base []byte
	// wake is signalled (coalesced) on any event for the name or its
	// siblings.
	wake chan struct{}
	// mu orders the opening of path: by the watcher as soon as a new
	// file appears there (holding on to a file that may be rotated away
	// again before the reader gets to it), and by the reader's own look.
	// Opened under mu, the files are queued in the order they were at
	// path.
	mu     sync.Mutex
	opened []*segment
	// gone is set when the watch ended (directory removed or moved, or
	// the inotify descriptor failed); the owner makes a new watcher.
	gone atomic.Bool
	done chan struct{}
}

func watch(path string) (*watcher, error) {
	dir := filepath.Dir(path)
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w (raise fs.inotify.max_user_instances)", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, watchMask); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	w := &watcher{
		// A non-blocking descriptor makes the File pollable, so Close
		// interrupts a blocked Read.
		file: os.NewFile(uintptr(fd), "inotify:"+dir),
		path: path,
		base: []byte(filepath.Base(path)),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	go w.loop()
	return w, nil
}

func (w *watcher) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) loop() {
	defer close(w.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := w.file.Read(buf)
		if err != nil {
			w.gone.Store(true)
			w.signal()
			return
		}
		wake := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			off += unix.SizeofInotifyEvent
			name := buf[off:min(off+nameLen, n)]
			off += nameLen
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			switch {
			case mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_UNMOUNT) != 0:
				w.gone.Store(true)
				wake = true
			case mask&unix.IN_Q_OVERFLOW != 0:
				wake = true
			case bytes.Equal(name, w.base):
				if mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
					w.open()
				}
				wake = true
			case bytes.HasPrefix(name, w.base):
				wake = true
			}
		}
		if wake {
			w.signal()
		}
	}
}

func (w *watcher) open() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.opened) >= maxOpened {
		return
	}
	// Fingerprinted now, before it can be truncated.
	if g, err := openSegment(w.path); err == nil {
		w.opened = append(w.opened, g)
	}
	// else gone again, or not readable: the reader's own look will tell
}

func (w *watcher) close() {
	w.file.Close()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, g := range w.opened {
		g.f.Close()
	}
	w.opened = nil
}
