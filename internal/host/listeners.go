package host

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Listener is a socket that accepts traffic: a listening TCP socket or a
// bound, unconnected UDP socket, with the process that holds it.
type Listener struct {
	Proto   string         // "tcp" or "udp"
	Addr    netip.AddrPort // IPv4-mapped IPv6 addresses are unmapped
	Inode   uint64
	UID     int    // owner of the socket as the kernel records it
	PID     int    // lowest PID holding the socket open; 0 if none was found
	Process string // comm of PID
	Cmdline string // arguments of PID, separated by spaces
	Scope   Scope
	// V6Only is IPV6_V6ONLY of an IPv6 socket: a [::] listener without it
	// takes IPv4 too. V6OnlyKnown is false where the kernel was not asked
	// (UDP, or /proc/net without sock_diag).
	V6Only, V6OnlyKnown bool
	// OwnerUnknown is set when PID is 0 and some processes' file
	// descriptors could not be read (not root), so the owner may be
	// hidden. PID 0 without it means no process holds the socket, as
	// for a kernel WireGuard socket.
	OwnerUnknown bool
}

// Listeners returns every listening TCP socket and bound UDP socket in the
// reader's network namespace, with their owners, sorted by protocol, port
// and address. SO_REUSEPORT groups (several sockets on one address) are
// reported once. Owners are found by scanning <root>/proc/<pid>/fd for
// "socket:[inode]" links, lowest PID first, stopping as soon as every
// socket has an owner.
func (h *Host) Listeners() ([]Listener, error) {
	type key struct {
		proto string
		addr  netip.AddrPort
	}
	var (
		order  []key
		groups = map[key][]Socket{}
	)
	add := func(s Socket) {
		s.Local = netip.AddrPortFrom(s.Local.Addr().Unmap(), s.Local.Port())
		k := key{s.Proto, s.Local}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s)
	}
	sources := []string{"tcp", "tcp6", "udp", "udp6"}
	if h.Live() {
		// Ask the kernel for TCP listeners only; /proc/net/tcp remains
		// the fallback where sock_diag is missing (some sandboxes).
		if socks, err := sockDiagListeningTCP(); err == nil {
			for _, s := range socks {
				add(s)
			}
			sources = sources[2:]
		}
	}
	for _, proto := range sources {
		f, err := os.Open(h.Path("/proc/net/" + proto))
		if errors.Is(err, fs.ErrNotExist) {
			continue // IPv6 disabled, or a fixture without it
		}
		if err != nil {
			return nil, fmt.Errorf("listeners: %w", hint(err))
		}
		err = parseProcNet(f, proto, true, add)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("listeners: %w", err)
		}
	}

	owners := make(map[uint64]int, len(groups))
	for _, g := range groups {
		for _, s := range g {
			if s.Inode != 0 { // inode 0: a kernel socket (WireGuard, NFS) with no fd anywhere
				owners[s.Inode] = 0
			}
		}
	}
	denied, err := h.findSocketOwners(owners)
	if err != nil {
		return nil, fmt.Errorf("listeners: %w", err)
	}

	vpn, _ := h.VPNPrefixes() // best effort: without it VPN addresses look private
	procs := map[int]*Process{}
	out := make([]Listener, 0, len(order))
	for _, k := range order {
		g := groups[k]
		l := Listener{Proto: k.proto, Addr: k.addr, Inode: g[0].Inode, UID: g[0].UID,
			Scope: ClassifyAddr(k.addr.Addr(), vpn), V6OnlyKnown: true}
		for _, s := range g {
			// A SO_REUSEPORT group takes IPv4 if any of its sockets does.
			l.V6Only = l.V6OnlyKnown && s.V6OnlyKnown && (s.V6Only || !k.addr.Addr().Is6())
			l.V6OnlyKnown = l.V6OnlyKnown && s.V6OnlyKnown
			if !l.V6Only && l.V6OnlyKnown {
				break
			}
		}
		if k.addr.Addr().Is4() {
			l.V6Only, l.V6OnlyKnown = false, true
		}
		for _, s := range g {
			if pid := owners[s.Inode]; pid != 0 && (l.PID == 0 || pid < l.PID) {
				l.PID, l.Inode, l.UID = pid, s.Inode, s.UID
			}
		}
		if l.PID == 0 {
			l.OwnerUnknown = denied && l.Inode != 0
		} else {
			p, ok := procs[l.PID]
			if !ok {
				p = h.process(l.PID)
				procs[l.PID] = p
			}
			if p != nil {
				l.Process, l.Cmdline = p.Comm, p.Cmdline
			}
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Listener) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto),
			cmp.Compare(a.Addr.Port(), b.Addr.Port()),
			a.Addr.Addr().Compare(b.Addr.Addr()))
	})
	return out, nil
}

// findSocketOwners fills owners (inode → 0 on entry) with the lowest PID
// holding each socket. It reports whether any process's fd table could
// not be read for lack of permission.
func (h *Host) findSocketOwners(owners map[uint64]int) (denied bool, err error) {
	left := len(owners)
	if left == 0 {
		return false, nil
	}
	pids, err := h.pids()
	if err != nil {
		return false, err
	}
	var (
		link = make([]byte, 64)
		base = h.Path("/proc") + "/"
		dir  = []byte(base)
	)
	for _, pid := range pids {
		dir = strconv.AppendInt(dir[:len(base)], int64(pid), 10)
		dir = append(dir, "/fd"...)
		d, err := os.Open(string(dir))
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				denied = true
			}
			continue // most likely the process exited meanwhile
		}
		names, err := d.Readdirnames(-1)
		if err != nil && errors.Is(err, fs.ErrPermission) {
			denied = true
		}
		dfd := int(d.Fd())
		for _, name := range names {
			n, err := unix.Readlinkat(dfd, name, link)
			if err != nil {
				continue
			}
			ino, ok := socketInode(link[:n])
			if !ok {
				continue
			}
			if pid0, want := owners[ino]; want && pid0 == 0 {
				owners[ino] = pid
				if left--; left == 0 {
					d.Close()
					return denied, nil
				}
			}
		}
		d.Close()
	}
	return denied, nil
}

// socketInode parses a "socket:[12345]" fd link target.
func socketInode(b []byte) (uint64, bool) {
	const prefix = "socket:["
	if len(b) < len(prefix)+2 || string(b[:len(prefix)]) != prefix || b[len(b)-1] != ']' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[len(prefix):len(b)-1]), 10, 64)
	return n, err == nil
}

// pids lists the numeric entries of <root>/proc in ascending order.
func (h *Host) pids() ([]int, error) {
	d, err := os.Open(h.Path("/proc"))
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", hint(err))
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", hint(err))
	}
	pids := make([]int, 0, len(names))
	for _, name := range names {
		if name == "" || name[0] < '1' || name[0] > '9' {
			continue
		}
		if pid, err := strconv.Atoi(name); err == nil {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// process reads what is known of one process; nil if it has gone.
func (h *Host) process(pid int) *Process {
	dir := h.Path(filepath.Join("/proc", strconv.Itoa(pid)))
	comm, err := os.ReadFile(filepath.Join(dir, "comm"))
	if err != nil {
		return nil
	}
	p := &Process{PID: pid, Comm: strings.TrimSuffix(string(comm), "\n")}
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		b = bytes.TrimRight(b, "\x00")
		if len(b) > 0 {
			p.Args = strings.Split(string(b), "\x00")
			p.Cmdline = strings.Join(p.Args, " ")
		}
	}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		p.Exe = filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	}
	return p
}
