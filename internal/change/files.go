package change

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moat-sh/moat/internal/host"
)

// maxSnapshot bounds one snapshotted file: moat snapshots configuration,
// account databases and keys, never data.
const maxSnapshot = 16 << 20

// HostPath maps an absolute host path to the file under root.
func HostPath(root, p string) string {
	if root == "" || root == "/" {
		return filepath.Clean(p)
	}
	return filepath.Join(root, filepath.Clean("/"+p))
}

// WriteFile replaces root+f.Path atomically: a temporary file in the same
// directory, written, chmod'ed, chown'ed and fsynced, renamed over the
// target, and the directory fsynced. A reader sees the old file or the new
// one, never a part, and a crash leaves one of them. Missing parent
// directories are created 0755, owned by root.
func WriteFile(root string, f File) error {
	uid, gid, err := resolveOwner(root, f.Owner, f.Group)
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o644
	}
	if err := writeAtomic(HostPath(root, f.Path), f.Data, mode, uid, gid, time.Time{}); err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	return nil
}

// Mkdir creates root+d.Path (and missing parents, 0755 root) with d's mode
// and owner; an existing directory is left as it is.
func Mkdir(root string, d Dir) error {
	p := HostPath(root, d.Path)
	if fi, err := os.Stat(p); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("mkdir %s: exists and is not a directory", d.Path)
		}
		return nil
	}
	uid, gid, err := resolveOwner(root, d.Owner, d.Group)
	if err != nil {
		return fmt.Errorf("mkdir %s: %w", d.Path, err)
	}
	mode := d.Mode
	if mode == 0 {
		mode = 0o755
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", d.Path, err)
	}
	if err := os.Mkdir(p, mode); err != nil {
		return fmt.Errorf("mkdir %s: %w", d.Path, err)
	}
	// Mkdir's mode passes through the umask; chmod is exact.
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	return os.Chown(p, uid, gid)
}

// WriteAtomic writes data to path, owned by root with mode, the way every
// file moat writes is written: a temporary file beside it, fsync, rename,
// fsync of the directory. Readers see the old file or the new, never half.
// A file that already holds data is left alone but for its mode, so
// re-applying the same config touches nothing.
func WriteAtomic(path string, data []byte, mode fs.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return os.Chmod(path, mode)
	}
	return writeAtomic(path, data, mode, 0, 0, time.Time{})
}

// SymlinkAtomic points path at target, replacing what was there by rename.
func SymlinkAtomic(target, path string) error { return symlinkAtomic(target, path, 0, 0) }

func writeAtomic(path string, data []byte, mode fs.FileMode, uid, gid int, mtime time.Time) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".moat-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	_, err = f.Write(data)
	if err == nil {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		// After chown, which clears set-id bits.
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(tmp, mtime, mtime); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func symlinkAtomic(target, path string, uid, gid int) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".moat-link")
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Lchown(tmp, uid, gid); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// resolveOwner finds the IDs of a user and group by name in the root's
// account files; "" is root (0). A group left empty with a user named is
// the user's primary group.
func resolveOwner(root, user, group string) (uid, gid int, err error) {
	if user == "" && group == "" {
		return 0, 0, nil
	}
	h := host.New(root)
	if user != "" {
		users, uerr := h.Users()
		found := false
		for _, u := range users {
			if u.Name == user {
				uid, gid, found = u.UID, u.GID, true
				break
			}
		}
		if !found {
			if uerr != nil && len(users) == 0 {
				return 0, 0, fmt.Errorf("look up user %s: %w", user, uerr)
			}
			return 0, 0, fmt.Errorf("no user %s in %s", user, HostPath(root, "/etc/passwd"))
		}
	}
	if group != "" {
		groups, err := h.Groups()
		if err != nil {
			return 0, 0, fmt.Errorf("look up group %s: %w", group, err)
		}
		g, ok := groups[group]
		if !ok {
			return 0, 0, fmt.Errorf("no group %s in %s", group, HostPath(root, "/etc/group"))
		}
		gid = g.GID
	}
	return uid, gid, nil
}

// Entry is one snapshotted path.
type Entry struct {
	Path string `json:"path"`
	// Kind is what the path was: "file", "symlink", "dir" or "absent".
	Kind  string    `json:"kind"`
	Mode  uint32    `json:"mode,omitempty"` // permission and set-id bits, as chmod takes them
	UID   int       `json:"uid"`
	GID   int       `json:"gid"`
	MTime time.Time `json:"mtime,omitzero"`
	Link  string    `json:"link,omitempty"` // symlink target
	Size  int64     `json:"size,omitempty"`
	// Snap is the snapshot's file name in the change directory.
	Snap string `json:"snap,omitempty"`
}

// capture records path as it is now; a regular file's bytes go to snap.
// A directory declared as a file (or the reverse) is refused: restoring it
// byte for byte would need a tree copy moat never makes.
func capture(root string, d declared, snap string) (Entry, error) {
	p := HostPath(root, d.path)
	e := Entry{Path: d.path}
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		e.Kind = "absent"
		return e, nil
	}
	if err != nil {
		return e, err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.UID, e.GID = int(st.Uid), int(st.Gid)
	}
	e.Mode = unixMode(fi.Mode())
	e.MTime = fi.ModTime()
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		e.Kind = "symlink"
		e.Link, err = os.Readlink(p)
		return e, err
	case fi.IsDir():
		if !d.dir {
			return e, fmt.Errorf("snapshot %s: is a directory, expected a file", d.path)
		}
		e.Kind = "dir"
		return e, nil
	case !fi.Mode().IsRegular():
		return e, fmt.Errorf("snapshot %s: not a regular file (%s)", d.path, fi.Mode().Type())
	case d.dir:
		return e, fmt.Errorf("snapshot %s: is a file, expected a directory", d.path)
	case fi.Size() > maxSnapshot:
		return e, fmt.Errorf("snapshot %s: %d bytes, more than moat snapshots (%d)", d.path, fi.Size(), maxSnapshot)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return e, err
	}
	e.Kind, e.Size = "file", int64(len(data))
	if err := writeAtomic(snap, data, 0o600, 0, 0, time.Time{}); err != nil {
		return e, fmt.Errorf("snapshot %s: %w", d.path, err)
	}
	return e, nil
}

// restore puts path back as e recorded it, reading the bytes from snap.
// Directories that did not exist are removed with their contents.
func restore(root string, e Entry, snap string) error {
	p := HostPath(root, e.Path)
	switch e.Kind {
	case "absent":
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return os.RemoveAll(p)
		}
		return os.Remove(p)
	case "dir":
		// Left in place: only its mode and owner are restored.
		if err := os.Chown(p, e.UID, e.GID); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Chmod(p, fsMode(e.Mode)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	case "symlink":
		return symlinkAtomic(e.Link, p, e.UID, e.GID)
	case "file":
		data, err := os.ReadFile(snap)
		if err != nil {
			return fmt.Errorf("read snapshot: %w", err)
		}
		if int64(len(data)) != e.Size {
			return fmt.Errorf("snapshot %s is %d bytes, recorded %d", snap, len(data), e.Size)
		}
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			// A step turned a file into a directory; put the file back.
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
		return writeAtomic(p, data, fsMode(e.Mode), e.UID, e.GID, e.MTime)
	}
	return fmt.Errorf("unknown snapshot kind %q", e.Kind)
}

// matches reports whether path is as e recorded it (bytes, kind, mode,
// owner), for the check after a restore.
func matches(root string, e Entry, snap string) error {
	p := HostPath(root, e.Path)
	fi, err := os.Lstat(p)
	if e.Kind == "absent" {
		if err == nil {
			return fmt.Errorf("%s exists, but did not before", e.Path)
		}
		return nil
	}
	if err != nil {
		return err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st != nil && (int(st.Uid) != e.UID || int(st.Gid) != e.GID) {
		return fmt.Errorf("%s is owned by %d:%d, was %d:%d", e.Path, st.Uid, st.Gid, e.UID, e.GID)
	}
	switch e.Kind {
	case "symlink":
		l, err := os.Readlink(p)
		if err != nil || l != e.Link {
			return fmt.Errorf("%s links to %q, was %q", e.Path, l, e.Link)
		}
		return nil
	case "dir":
		if !fi.IsDir() {
			return fmt.Errorf("%s is no longer a directory", e.Path)
		}
	case "file":
		want, err := os.ReadFile(snap)
		if err != nil {
			return err
		}
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s differs from its snapshot", e.Path)
		}
	}
	if m := unixMode(fi.Mode()); m != e.Mode {
		return fmt.Errorf("%s has mode %04o, was %04o", e.Path, m, e.Mode)
	}
	return nil
}

// unixMode keeps the permission and set-id bits of m, as chmod(2) wants.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= syscall.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		u |= syscall.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		u |= syscall.S_ISVTX
	}
	return u
}

func fsMode(u uint32) fs.FileMode {
	m := fs.FileMode(u & 0o777)
	if u&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if u&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if u&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// ReadCurrent returns the bytes at root+p now; nil with no error when the
// file does not exist. Plans diff Files against it.
func ReadCurrent(root, p string) ([]byte, error) {
	b, err := os.ReadFile(HostPath(root, p))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// validPath refuses declared paths that are not absolute and clean.
func validPath(p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsRune(p, 0) {
		return fmt.Errorf("path %q must be absolute and clean", p)
	}
	return nil
}
