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
// directories are created 0755, owned by root. The directory is reached
// without following a symlink a non-root user could have placed (see
// safefs.go): a user's ~/.ssh swapped for a link to /root/.ssh is refused.
func WriteFile(root string, f File) error {
	uid, gid, err := resolveOwner(root, f.Owner, f.Group)
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o644
	}
	d, base, err := openParent(root, f.Path, true)
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	defer d.Close()
	if err := d.writeFile(base, f.Data, unixMode(mode), uid, gid, time.Time{}); err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	return nil
}

// Mkdir creates root+d.Path (and missing parents, 0755 root) with d's mode
// and owner, set on the new directory's descriptor; an existing directory
// is left as it is.
func Mkdir(root string, d Dir) error {
	uid, gid, err := resolveOwner(root, d.Owner, d.Group)
	if err != nil {
		return fmt.Errorf("mkdir %s: %w", d.Path, err)
	}
	mode := d.Mode
	if mode == 0 {
		mode = 0o755
	}
	pd, base, err := openParent(root, d.Path, true)
	if err != nil {
		return fmt.Errorf("mkdir %s: %w", d.Path, err)
	}
	defer pd.Close()
	if err := pd.mkdir(base, unixMode(mode), uid, gid); err != nil {
		return fmt.Errorf("mkdir %s: %w", d.Path, err)
	}
	return nil
}

// WriteAtomic writes data to path, owned by root with mode, the way every
// file moat writes is written: a temporary file beside it, fsync, rename,
// fsync of the directory. Readers see the old file or the new, never half.
// A file that already holds data is left alone but for its mode, so
// re-applying the same config touches nothing.
func WriteAtomic(path string, data []byte, mode fs.FileMode) error {
	d, base, err := openParent("", path, true)
	if err != nil {
		return err
	}
	defer d.Close()
	if n, err := d.stat(base); err == nil && n.Kind == "file" && bytes.Equal(n.Data, data) {
		return d.setAttrs(base, "file", unixMode(mode), n.UID, n.GID)
	}
	return d.writeFile(base, data, unixMode(mode), 0, 0, time.Time{})
}

// SymlinkAtomic points path at target, replacing what was there by rename.
func SymlinkAtomic(target, path string) error { return symlinkAtomic(target, path, 0, 0) }

func writeAtomic(path string, data []byte, mode fs.FileMode, uid, gid int, mtime time.Time) error {
	d, base, err := openParent("", path, true)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.writeFile(base, data, unixMode(mode), uid, gid, mtime)
}

func symlinkAtomic(target, path string, uid, gid int) error {
	d, base, err := openParent("", path, true)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.symlink(base, target, uid, gid)
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

// Entry is one snapshotted path: as it was before the change, and (After)
// as moat's step left it.
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
	// After is the path as moat left it, recorded when the step that
	// declared it ended: what the rollback reverts. Nil when no step got
	// that far (then whatever is there counts as moat's).
	After *Shot `json:"after,omitempty"`
	// Confirm is what confirm changed here, if anything.
	Confirm *ConfirmEdit `json:"confirm,omitempty"`
}

// Shot is a path as moat's step left it.
type Shot struct {
	Kind string `json:"kind"`
	Mode uint32 `json:"mode,omitempty"`
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
	Link string `json:"link,omitempty"`
	Size int64  `json:"size,omitempty"`
	Snap string `json:"snap,omitempty"`
	// Tree lists what a directory moat created held: the rollback
	// removes it only if it holds nothing else.
	Tree []TreeItem `json:"tree,omitempty"`
}

// readNode reads root+p without following a symlink a non-root user
// could have placed on the way; a missing parent reads as absent.
func readNode(root, p string) (node, error) {
	d, base, err := openParent(root, p, false)
	if errors.Is(err, fs.ErrNotExist) {
		return node{Kind: "absent"}, nil
	}
	if err != nil {
		return node{}, err
	}
	defer d.Close()
	return d.stat(base)
}

// capture records path as it is now; a regular file's bytes go to snap.
// A directory declared as a file (or the reverse) is refused: restoring it
// byte for byte would need a tree copy moat never makes.
func capture(root string, d declared, snap string) (Entry, error) {
	e := Entry{Path: d.path}
	n, err := readNode(root, d.path)
	if err != nil {
		return e, fmt.Errorf("snapshot %s: %w", d.path, err)
	}
	e.Kind, e.Mode, e.UID, e.GID, e.MTime, e.Link = n.Kind, n.Mode, n.UID, n.GID, n.MTime, n.Link
	switch {
	case n.Kind == "absent":
		e.Mode, e.MTime = 0, time.Time{}
		return e, nil
	case n.Kind == "symlink":
		return e, nil
	case n.Kind == "dir":
		if !d.dir {
			return e, fmt.Errorf("snapshot %s: is a directory, expected a file", d.path)
		}
		return e, nil
	case n.Kind != "file":
		return e, fmt.Errorf("snapshot %s: not a regular file", d.path)
	case d.dir:
		return e, fmt.Errorf("snapshot %s: is a file, expected a directory", d.path)
	case n.Big:
		return e, fmt.Errorf("snapshot %s: more than moat snapshots (%d bytes)", d.path, maxSnapshot)
	}
	e.Size = int64(len(n.Data))
	if err := writeAtomic(snap, n.Data, 0o600, 0, 0, time.Time{}); err != nil {
		return e, fmt.Errorf("snapshot %s: %w", d.path, err)
	}
	return e, nil
}

// shoot records path as moat's step left it; a file's bytes go to snap,
// a directory the step created gets its tree listed.
func shoot(root string, e Entry, snap string) (*Shot, error) {
	d, base, err := openParent(root, e.Path, false)
	if errors.Is(err, fs.ErrNotExist) {
		return &Shot{Kind: "absent"}, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	n, err := d.stat(base)
	if err != nil {
		return nil, err
	}
	sh := &Shot{Kind: n.Kind, Mode: n.Mode, UID: n.UID, GID: n.GID, Link: n.Link}
	switch {
	case n.Kind == "absent":
		sh.Mode = 0
	case n.Kind == "file" && n.Big:
		return nil, fmt.Errorf("%s: more than moat snapshots (%d bytes)", e.Path, maxSnapshot)
	case n.Kind == "file":
		sh.Size = int64(len(n.Data))
		if err := writeAtomic(snap, n.Data, 0o600, 0, 0, time.Time{}); err != nil {
			return nil, err
		}
	case n.Kind == "dir" && e.Kind == "absent":
		if sh.Tree, err = d.tree(base, nil); err != nil {
			return nil, err
		}
	}
	return sh, nil
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
