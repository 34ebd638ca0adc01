package change

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Every path a rollback (or a step's write) touches is reached through
// directory file descriptors, never by a path string the kernel resolves
// again later: a user who owns a directory on the way (their home, their
// ~/.ssh) could otherwise swap it for a symlink between moat's check and
// its chown, and have /etc chowned to them.
//
// The rule: a symlink is followed only where root placed it, in a
// directory owned by root that nobody else can write (/home -> /srv/home
// on some hosts). Anywhere below a directory another user can write, a
// symlink on the way is refused. The last component is never followed:
// it is renamed over, unlinked, or opened with O_NOFOLLOW.

// maxLinkHops bounds symlink resolution, as the kernel's ELOOP does.
const maxLinkHops = 40

// safeDir is an open directory reached by the rule above.
type safeDir struct {
	fd   int
	path string // as on the host, for messages
}

func (d *safeDir) Close() error { return unix.Close(d.fd) }

// openParent opens the directory that holds p (a host path, under root)
// and returns it with p's last component. With create, missing
// directories on the way are made (0755, root).
func openParent(root, p string, create bool) (*safeDir, string, error) {
	p = filepath.Clean("/" + p)
	if p == "/" {
		return nil, "", errors.New("no parent of /")
	}
	d, err := openSafeDir(root, filepath.Dir(p), create)
	if err != nil {
		return nil, "", err
	}
	return d, filepath.Base(p), nil
}

// openSafeDir opens dir (a host path) under root.
func openSafeDir(root, dir string, create bool) (*safeDir, error) {
	rootPath := root
	if rootPath == "" {
		rootPath = "/"
	}
	rfd, err := unix.Open(rootPath, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rootPath, Err: err}
	}
	defer unix.Close(rfd)
	rel := strings.TrimPrefix(filepath.Clean("/"+dir), "/")
	if rel == "" {
		fd, err := unix.Dup(rfd)
		if err != nil {
			return nil, err
		}
		unix.CloseOnExec(fd)
		return &safeDir{fd: fd, path: "/"}, nil
	}
	// Fast path: no symlink at all on the way.
	fd, err := unix.Openat2(rfd, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err == nil {
		return &safeDir{fd: fd, path: "/" + rel}, nil
	}
	// A symlink on the way (ELOOP), something missing, or no openat2
	// (ENOSYS, or a seccomp filter's EPERM): walk one component at a time.
	return walkDir(rfd, rel, create)
}

func walkDir(rfd int, rel string, create bool) (*safeDir, error) {
	cur, err := unix.Dup(rfd)
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(cur)
	shown := "/"
	comps := strings.Split(rel, "/")
	hops := 0
	fail := func(err error) (*safeDir, error) {
		unix.Close(cur)
		return nil, err
	}
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			// Only a root-placed link's target gets here.
			fd, err := unix.Openat(cur, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fail(&os.PathError{Op: "open", Path: filepath.Join(shown, ".."), Err: err})
			}
			unix.Close(cur)
			cur, shown = fd, filepath.Dir(shown)
			continue
		}
		next := filepath.Join(shown, c)
		var st unix.Stat_t
		err := unix.Fstatat(cur, c, &st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) && create {
			if err := unix.Mkdirat(cur, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				return fail(&os.PathError{Op: "mkdir", Path: next, Err: err})
			}
			err = unix.Fstatat(cur, c, &st, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return fail(&os.PathError{Op: "lstat", Path: next, Err: err})
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			if ok, owner := rootOnly(cur); !ok {
				return fail(fmt.Errorf("refused: %s is a symlink in %s, which %s can write (a restore through it could reach any file)", next, shown, owner))
			}
			if hops++; hops > maxLinkHops {
				return fail(&os.PathError{Op: "open", Path: next, Err: unix.ELOOP})
			}
			target, err := readlinkat(cur, c)
			if err != nil {
				return fail(&os.PathError{Op: "readlink", Path: next, Err: err})
			}
			if strings.HasPrefix(target, "/") {
				fd, err := unix.Dup(rfd)
				if err != nil {
					return fail(err)
				}
				unix.CloseOnExec(fd)
				unix.Close(cur)
				cur, shown = fd, "/"
			}
			comps = append(strings.Split(target, "/"), comps...)
		case unix.S_IFDIR:
			fd, err := unix.Openat(cur, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fail(&os.PathError{Op: "open", Path: next, Err: err})
			}
			unix.Close(cur)
			cur, shown = fd, next
		default:
			return fail(&os.PathError{Op: "open", Path: next, Err: unix.ENOTDIR})
		}
	}
	return &safeDir{fd: cur, path: shown}, nil
}

// rootOnly reports whether only root can change the directory's entries;
// else, who else can ("uid 1000", "group 27", "everyone").
func rootOnly(fd int) (bool, string) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, "someone (stat failed)"
	}
	switch {
	case st.Uid != 0:
		return false, fmt.Sprintf("uid %d", st.Uid)
	case st.Mode&0o002 != 0:
		return false, "everyone"
	case st.Mode&0o020 != 0 && st.Gid != 0:
		return false, fmt.Sprintf("group %d", st.Gid)
	}
	return true, ""
}

func readlinkat(fd int, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(fd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// node is a path as read through a safeDir.
type node struct {
	Kind  string // "absent", "file", "dir", "symlink" or "other"
	Mode  uint32
	UID   int
	GID   int
	MTime time.Time
	Data  []byte // a file's bytes (nil when larger than maxSnapshot: Big)
	Big   bool
	Link  string
}

func (d *safeDir) show(name string) string { return filepath.Join(d.path, name) }

// stat reads name without following it; a file's bytes too.
func (d *safeDir) stat(name string) (node, error) {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return node{Kind: "absent"}, nil
	}
	if err != nil {
		return node{}, &os.PathError{Op: "lstat", Path: d.show(name), Err: err}
	}
	n := node{Mode: st.Mode & 0o7777, UID: int(st.Uid), GID: int(st.Gid), MTime: time.Unix(st.Mtim.Unix())}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		n.Kind = "symlink"
		n.Link, err = readlinkat(d.fd, name)
	case unix.S_IFDIR:
		n.Kind = "dir"
	case unix.S_IFREG:
		n.Kind = "file"
		n.Data, n.Big, err = d.readFile(name)
	default:
		n.Kind = "other"
	}
	if err != nil {
		return n, &os.PathError{Op: "read", Path: d.show(name), Err: err}
	}
	return n, nil
}

// readFile reads a regular file without following a symlink, up to
// maxSnapshot bytes (big: it is longer).
func (d *safeDir) readFile(name string) (data []byte, big bool, err error) {
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, false, err
	}
	f := os.NewFile(uintptr(fd), d.show(name))
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	data, err = io.ReadAll(io.LimitReader(f, maxSnapshot+1))
	if err != nil {
		return nil, false, err
	}
	if len(data) > maxSnapshot {
		return nil, true, nil
	}
	if data == nil {
		data = []byte{}
	}
	return data, false, nil
}

func tmpName(name string) string {
	var b [6]byte
	rand.Read(b[:])
	return "." + name + ".moat-" + hex.EncodeToString(b[:])
}

// writeFile replaces name atomically with data: a temporary file in the
// directory (O_EXCL, so never through a planted link), chown and chmod
// on its descriptor, fsync, renameat over name, fsync of the directory.
func (d *safeDir) writeFile(name string, data []byte, mode uint32, uid, gid int, mtime time.Time) error {
	tmp := tmpName(name)
	fd, err := unix.Openat(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: d.show(tmp), Err: err}
	}
	f := os.NewFile(uintptr(fd), d.show(tmp))
	_, err = f.Write(data)
	if err == nil {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		// After chown, which clears set-id bits.
		err = unix.Fchmod(fd, mode&0o7777)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && !mtime.IsZero() {
		ts := unix.NsecToTimespec(mtime.UnixNano())
		err = unix.UtimesNanoAt(d.fd, tmp, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err == nil {
		err = unix.Renameat(d.fd, tmp, d.fd, name)
	}
	if err != nil {
		unix.Unlinkat(d.fd, tmp, 0)
		return fmt.Errorf("write %s: %w", d.show(name), err)
	}
	return unix.Fsync(d.fd)
}

// symlink points name at target, replacing what was there by rename.
func (d *safeDir) symlink(name, target string, uid, gid int) error {
	tmp := tmpName(name)
	if err := unix.Symlinkat(target, d.fd, tmp); err != nil {
		return &os.PathError{Op: "symlink", Path: d.show(name), Err: err}
	}
	err := unix.Fchownat(d.fd, tmp, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil {
		err = unix.Renameat(d.fd, tmp, d.fd, name)
	}
	if err != nil {
		unix.Unlinkat(d.fd, tmp, 0)
		return &os.PathError{Op: "symlink", Path: d.show(name), Err: err}
	}
	return unix.Fsync(d.fd)
}

// mkdir creates name with mode and owner, set on the new directory's
// descriptor; an existing directory is left as it is.
func (d *safeDir) mkdir(name string, mode uint32, uid, gid int) error {
	err := unix.Mkdirat(d.fd, name, 0o700)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil
		}
		// A link root placed (where only root can) to a directory will do.
		if ok, _ := rootOnly(d.fd); ok && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			if err := unix.Fstatat(d.fd, name, &st, 0); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				return nil
			}
		}
		return fmt.Errorf("mkdir %s: exists and is not a directory", d.show(name))
	}
	if err != nil {
		return &os.PathError{Op: "mkdir", Path: d.show(name), Err: err}
	}
	return d.setAttrs(name, "dir", mode, uid, gid)
}

// setAttrs sets the owner and mode of name, which must still be of kind
// (a file or a directory): it is opened with O_NOFOLLOW and changed
// through its descriptor, so a symlink put in its place is refused, not
// followed.
func (d *safeDir) setAttrs(name, kind string, mode uint32, uid, gid int) error {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	if kind == "dir" {
		flags |= unix.O_DIRECTORY
	}
	fd, err := unix.Openat(d.fd, name, flags, 0)
	if errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("refused: %s was replaced by a symlink", d.show(name))
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: d.show(name), Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if kind == "file" && st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("refused: %s is no longer a regular file", d.show(name))
	}
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return &os.PathError{Op: "chown", Path: d.show(name), Err: err}
	}
	if err := unix.Fchmod(fd, mode&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: d.show(name), Err: err}
	}
	return nil
}

// remove unlinks name; a directory with everything in it, each level
// opened with O_NOFOLLOW so that no symlink inside is followed.
func (d *safeDir) remove(name string) error {
	return removeAt(d.fd, name, d.show(name), 0)
}

func removeAt(dirfd int, name, shown string, depth int) error {
	if depth > 256 {
		return fmt.Errorf("remove %s: nested too deep", shown)
	}
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "lstat", Path: shown, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Unlinkat(dirfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return &os.PathError{Op: "remove", Path: shown, Err: err}
		}
		return nil
	}
	names, fd, err := readDirAt(dirfd, name)
	if err != nil {
		return &os.PathError{Op: "open", Path: shown, Err: err}
	}
	for _, n := range names {
		if err := removeAt(fd, n, filepath.Join(shown, n), depth+1); err != nil {
			unix.Close(fd)
			return err
		}
	}
	unix.Close(fd)
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "remove", Path: shown, Err: err}
	}
	return nil
}

// readDirAt opens the directory name under dirfd (not following a link)
// and lists it; the caller closes the returned descriptor.
func readDirAt(dirfd int, name string) ([]string, int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, -1, err
	}
	dup, err := unix.Dup(fd)
	if err != nil {
		unix.Close(fd)
		return nil, -1, err
	}
	f := os.NewFile(uintptr(dup), name)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		unix.Close(fd)
		return nil, -1, err
	}
	return names, fd, nil
}

// TreeItem is one path inside a directory moat created, as moat left it.
type TreeItem struct {
	Path string `json:"path"` // relative to the directory
	Kind string `json:"kind"`
	Size int64  `json:"size,omitempty"`
	Hash string `json:"sha256,omitempty"`
	Link string `json:"link,omitempty"`
}

// maxTree bounds a recorded tree: moat creates homes from /etc/skel and
// .ssh directories, not data.
const maxTree = 10000

// errTreeTooBig: a directory holds more than moat ever puts in one.
var errTreeTooBig = errors.New("more entries or levels than moat records")

// tree lists everything under name, without following links. With
// known set, only files at those paths are hashed: any other is foreign
// whatever it holds, and a 10 GB upload must not slow a rollback down.
func (d *safeDir) tree(name string, known map[string]bool) ([]TreeItem, error) {
	top := name
	var out []TreeItem
	var walk func(dirfd int, name, rel string, depth int) error
	walk = func(dirfd int, name, rel string, depth int) error {
		if depth > 64 || len(out) > maxTree {
			return fmt.Errorf("%s: %w", d.show(filepath.Join(top, rel)), errTreeTooBig)
		}
		names, fd, err := readDirAt(dirfd, name)
		if err != nil {
			return &os.PathError{Op: "open", Path: d.show(filepath.Join(top, rel)), Err: err}
		}
		defer unix.Close(fd)
		for _, n := range names {
			r := n
			if rel != "" {
				r = rel + "/" + n
			}
			var st unix.Stat_t
			if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return &os.PathError{Op: "lstat", Path: d.show(filepath.Join(top, r)), Err: err}
			}
			it := TreeItem{Path: r}
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				it.Kind = "dir"
				out = append(out, it)
				if err := walk(fd, n, r, depth+1); err != nil {
					return err
				}
				continue
			case unix.S_IFLNK:
				it.Kind = "symlink"
				it.Link, _ = readlinkat(fd, n)
			case unix.S_IFREG:
				it.Kind, it.Size = "file", st.Size
				if known != nil && !known[r] {
					break
				}
				h, err := hashAt(fd, n)
				if err != nil {
					return &os.PathError{Op: "read", Path: d.show(filepath.Join(top, r)), Err: err}
				}
				it.Hash = h
			default:
				it.Kind = "other"
			}
			out = append(out, it)
		}
		return nil
	}
	err := walk(d.fd, name, "", 0)
	return out, err
}

func hashAt(dirfd int, name string) (string, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
