package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MemInfo is the part of /proc/meminfo moat cares about, in bytes.
type MemInfo struct {
	MemTotal     uint64
	MemAvailable uint64
	SwapTotal    uint64
	SwapFree     uint64
}

// Memory reads <root>/proc/meminfo.
func (h *Host) Memory() (MemInfo, error) {
	b, err := h.ReadFile("/proc/meminfo")
	if err != nil {
		return MemInfo{}, fmt.Errorf("memory: %w", err)
	}
	var m MemInfo
	fields := map[string]*uint64{
		"MemTotal": &m.MemTotal, "MemAvailable": &m.MemAvailable,
		"SwapTotal": &m.SwapTotal, "SwapFree": &m.SwapFree,
	}
	for _, line := range strings.Split(string(b), "\n") {
		key, rest, ok := strings.Cut(line, ":")
		dst := fields[key]
		if !ok || dst == nil {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return MemInfo{}, fmt.Errorf("memory: /proc/meminfo %s: %q is not a number", key, f[0])
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		*dst = v
	}
	return m, nil
}

// Swap is an active swap area from /proc/swaps.
type Swap struct {
	Filename string
	Type     string // "file" or "partition"
	Size     uint64 // bytes
	Used     uint64 // bytes
	Priority int
	// Mode is the swap file's mode (0 for partitions or when it cannot
	// be read): a swap file readable by others leaks memory contents.
	Mode fs.FileMode
}

// Swaps reads the active swap areas from <root>/proc/swaps.
func (h *Host) Swaps() ([]Swap, error) {
	b, err := h.ReadFile("/proc/swaps")
	if err != nil {
		return nil, fmt.Errorf("swaps: %w", err)
	}
	var out []Swap
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 {
			continue // header
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("swaps: /proc/swaps line %d: want 5 fields", i+1)
		}
		size, err1 := strconv.ParseUint(f[2], 10, 64)
		used, err2 := strconv.ParseUint(f[3], 10, 64)
		prio, err3 := strconv.Atoi(f[4])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("swaps: /proc/swaps line %d: %w", i+1, err)
		}
		s := Swap{Filename: unescapeOctal(f[0]), Type: f[1], Size: size * 1024, Used: used * 1024, Priority: prio}
		if s.Type == "file" {
			if fi, err := os.Stat(h.Path(s.Filename)); err == nil {
				s.Mode = fi.Mode()
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// unescapeOctal undoes the kernel's \ooo escaping of spaces, tabs,
// newlines and backslashes in paths (/proc/swaps, /proc/self/mounts).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Disk is a mounted filesystem backed by storage, with its usage.
type Disk struct {
	Device     string `json:"device"`
	Mountpoint string `json:"mountpoint"`
	FSType     string `json:"fstype"`
	Size       uint64 `json:"size"`  // bytes
	Used       uint64 `json:"used"`  // bytes
	Avail      uint64 `json:"avail"` // bytes available to unprivileged users
	Inodes     uint64 `json:"inodes"`
	InodesFree uint64 `json:"inodes_free"`
}

// diskFS are the filesystem types that hold data on storage. Network and
// FUSE filesystems are left out on purpose: statfs on a dead NFS server
// would hang the audit.
var diskFS = map[string]bool{
	"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true, "zfs": true,
	"f2fs": true, "vfat": true, "exfat": true, "jfs": true, "reiserfs": true,
	"nilfs2": true, "bcachefs": true, "ntfs": true, "ntfs3": true,
}

// Disks lists the storage-backed filesystems from <root>/proc/self/mounts
// with their usage, one entry per device (the first, usually shortest,
// mount point). Pseudo filesystems (proc, sysfs, tmpfs…), squashfs
// snaps and overlay mounts are skipped, except an overlay mounted on /
// (a container's root, whose usage is the real disk's). Under a fixture,
// statfs is meaningless: Disks reads <root>/.fixture/df.json (a JSON
// list of Disk with the json field names above) or returns nothing.
func (h *Host) Disks() ([]Disk, error) {
	if !h.Live() {
		b, err := os.ReadFile(h.fixture("df.json"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("disks: %w", err)
		}
		var out []Disk
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, fmt.Errorf("disks: .fixture/df.json: %w", err)
		}
		return out, nil
	}
	mounts, err := h.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil, fmt.Errorf("disks: %w", err)
	}
	var out []Disk
	seen := map[string]bool{}
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		dev, mnt, typ := unescapeOctal(f[0]), unescapeOctal(f[1]), f[2]
		if !diskFS[typ] && !(typ == "overlay" && mnt == "/") {
			continue
		}
		if seen[dev] {
			continue
		}
		var st unix.Statfs_t
		if err := unix.Statfs(mnt, &st); err != nil {
			continue // unmounted meanwhile, or hidden from us
		}
		seen[dev] = true
		bs := uint64(st.Bsize)
		out = append(out, Disk{
			Device: dev, Mountpoint: mnt, FSType: typ,
			Size: st.Blocks * bs, Used: (st.Blocks - st.Bfree) * bs, Avail: st.Bavail * bs,
			Inodes: st.Files, InodesFree: st.Ffree,
		})
	}
	return out, nil
}
