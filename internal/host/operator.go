package host

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The operator's session: one answer, used by moat init, plan, apply,
// confirm, the firewall's lockout check and the daemon's ignore list.

// Conn is an SSH connection: the client's address and the address it
// reached on this host.
type Conn struct {
	Client, Server netip.AddrPort
}

// Valid reports whether c holds a connection.
func (c Conn) Valid() bool { return c.Client.IsValid() && c.Server.IsValid() }

// String prints c as SSH_CONNECTION does.
func (c Conn) String() string {
	if !c.Valid() {
		return ""
	}
	return fmt.Sprintf("%s %d %s %d", c.Client.Addr(), c.Client.Port(), c.Server.Addr(), c.Server.Port())
}

// ParseSSHConnection reads SSH_CONNECTION: "client_ip client_port
// server_ip server_port". IPv4-mapped addresses are unmapped.
func ParseSSHConnection(s string) (Conn, bool) {
	f := strings.Fields(s)
	if len(f) != 4 {
		return Conn{}, false
	}
	ca, err1 := netip.ParseAddr(f[0])
	sa, err2 := netip.ParseAddr(f[2])
	cp, err3 := strconv.ParseUint(f[1], 10, 16)
	sp, err4 := strconv.ParseUint(f[3], 10, 16)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return Conn{}, false
	}
	return Conn{
		Client: netip.AddrPortFrom(ca.Unmap(), uint16(cp)),
		Server: netip.AddrPortFrom(sa.Unmap(), uint16(sp)),
	}, true
}

// Operator is the SSH session a process runs in, as far as /proc tells.
type Operator struct {
	// Conn is the session's connection: read from the sshd process's own
	// socket when /proc shows it (nothing the user sets can change that),
	// else from SSH_CONNECTION.
	Conn Conn
	// ConnFrom says where Conn came from: "socket", "environment" (of the
	// process itself) or "environment of PID N" (an ancestor: sudo drops
	// SSH_CONNECTION); "" when none was found.
	ConnFrom string
	// SSHD is the nearest sshd ancestor: the process serving this
	// connection, forked when it was accepted. 0 when there is none (a
	// console, tmux or screen detached from its login, a systemd unit).
	SSHD int
	// SSHDStart is when SSHD started, in clock ticks since boot
	// (/proc/PID/stat field 22).
	SSHDStart uint64
	// User is the login name sshd shows in its process title
	// ("sshd: deploy@pts/0"), "" when unknown.
	User string
}

// InSSH reports whether an sshd session was found above the process.
func (o Operator) InSSH() bool { return o.SSHD > 0 }

// ClockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture moat runs on.
const ClockTicks = 100

// sshdNames are the comm names of the processes sshd runs a connection
// in: sshd before OpenSSH 9.8, sshd-session after.
var sshdNames = []string{"sshd", "sshd-session", "sshd-auth"}

// maxAncestors bounds the walk up the process tree.
const maxAncestors = 64

// Operator finds the SSH session process pid runs in: it walks up the
// parent chain to the nearest sshd process, takes the connection from
// that process's socket (or, failing that, from SSH_CONNECTION of the
// nearest process at or below it that has it), and the user from its
// title. getenv, when set, is pid's own environment (os.Getenv for the
// calling process, whose /proc environ may be stale).
func (h *Host) Operator(pid int, getenv func(string) string) Operator {
	var o Operator
	var envConn Conn
	for i, p := 0, pid; i < maxAncestors && p > 1; i++ {
		st, err := h.procStat(p)
		if err != nil {
			break
		}
		if isSSHD(st.Comm) && h.sshdBinary(p) {
			o.SSHD, o.SSHDStart = p, st.Start
			o.User = h.sshdUser(p)
			break
		}
		if !envConn.Valid() {
			v := ""
			if i == 0 && getenv != nil {
				v = getenv("SSH_CONNECTION")
			} else if b, err := h.ReadFile("/proc/" + strconv.Itoa(p) + "/environ"); err == nil {
				v = EnvironValue(b, "SSH_CONNECTION")
			}
			if c, ok := ParseSSHConnection(v); ok {
				envConn = c
				o.ConnFrom = "environment"
				if i > 0 {
					o.ConnFrom = "environment of PID " + strconv.Itoa(p)
				}
			}
		}
		p = st.PPid
	}
	if o.SSHD > 0 {
		if c, ok := h.sshdSocket(o.SSHD); ok {
			o.Conn, o.ConnFrom = c, "socket"
			return o
		}
	}
	if envConn.Valid() {
		o.Conn = envConn
	} else if getenv != nil && o.SSHD == 0 {
		// Not below sshd at all (a fixture, or /proc unreadable): the
		// environment is all there is.
		if c, ok := ParseSSHConnection(getenv("SSH_CONNECTION")); ok {
			o.Conn, o.ConnFrom = c, "environment"
		}
	}
	return o
}

// Self is the operator's session of the calling process.
func (h *Host) Self() Operator { return h.Operator(os.Getpid(), os.Getenv) }

// sshdDirs are where OpenSSH's sshd and sshd-session are installed.
var sshdDirs = []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin",
	"/usr/lib/openssh", "/usr/libexec/openssh", "/usr/libexec", "/usr/local/libexec", "/usr/lib/ssh", "/usr/libexec/ssh"}

// sshdBinary reports whether pid runs an sshd binary from a system
// directory: a copy of bash named /tmp/sshd is not a login. A process
// whose executable cannot be read (a fixture tree) is taken at its name.
func (h *Host) sshdBinary(pid int) bool {
	exe, err := os.Readlink(h.Path("/proc/" + strconv.Itoa(pid) + "/exe"))
	if err != nil {
		return !h.Live()
	}
	exe = strings.TrimSuffix(exe, " (deleted)") // sshd upgraded under a running session
	return isSSHD(filepath.Base(exe)) && slices.Contains(sshdDirs, filepath.Dir(exe))
}

func isSSHD(comm string) bool {
	for _, n := range sshdNames {
		if comm == n {
			return true
		}
	}
	return false
}

// loggedInTitle reports whether an sshd process title is a logged-in
// session's, "sshd: USER@TTY" (pts/N or notty), and not a connection still
// authenticating ("sshd: USER [net]", "[priv]", "[accepted]"), whose user
// name the client chose and may spell with an '@'.
func loggedInTitle(title string) bool {
	title = strings.ReplaceAll(title, "\x00", " ")
	rest, ok := strings.CutPrefix(title, "sshd: ")
	if !ok {
		if rest, ok = strings.CutPrefix(title, "sshd-session: "); !ok {
			return false
		}
	}
	f := strings.Fields(rest)
	if len(f) != 1 {
		return false
	}
	i := strings.LastIndexByte(f[0], '@')
	if i <= 0 {
		return false
	}
	tty := f[0][i+1:]
	return tty == "notty" || strings.HasPrefix(tty, "pts/") || strings.HasPrefix(tty, "tty")
}

// netns is the network namespace of /proc/PID ("self" for this process),
// "" when it cannot be read (a fixture tree, or not permitted).
func (h *Host) netns(pid string) string {
	if !h.Live() {
		return ""
	}
	l, err := os.Readlink("/proc/" + pid + "/ns/net")
	if err != nil {
		return ""
	}
	return l
}

// sshdUser reads the user from sshd's process title: "sshd: USER@pts/0",
// "sshd: USER [priv]", "sshd-session: USER@notty".
func (h *Host) sshdUser(pid int) string {
	b, err := h.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return SSHDTitleUser(string(bytes.TrimRight(b, "\x00")))
}

// SSHDTitleUser extracts the user from sshd's process title, "" when the
// title names none (the listener, "[net]", "[accepted]").
func SSHDTitleUser(title string) string {
	title = strings.ReplaceAll(title, "\x00", " ")
	rest, ok := strings.CutPrefix(title, "sshd: ")
	if !ok {
		if rest, ok = strings.CutPrefix(title, "sshd-session: "); !ok {
			return ""
		}
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return ""
	}
	u := f[0]
	if i := strings.IndexByte(u, '@'); i >= 0 {
		u = u[:i]
	} else if len(f) < 2 || f[1] != "[priv]" {
		return ""
	}
	if u == "" || strings.HasPrefix(u, "/") || strings.ContainsAny(u, "[]:") {
		return ""
	}
	return u
}

// sshdSocket finds the established TCP connection among pid's open
// files, in pid's own network namespace.
func (h *Host) sshdSocket(pid int) (Conn, bool) {
	dir := h.Path("/proc/" + strconv.Itoa(pid))
	ents, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return Conn{}, false
	}
	inodes := map[uint64]bool{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, "fd", e.Name()))
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(l, "socket:["); ok && strings.HasSuffix(s, "]") {
			if n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				inodes[n] = true
			}
		}
	}
	if len(inodes) == 0 {
		return Conn{}, false
	}
	for _, proto := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join(dir, "net", proto))
		if err != nil {
			continue
		}
		socks, err := ParseProcNet(f, proto)
		f.Close()
		if err != nil {
			continue
		}
		for _, s := range socks {
			if inodes[s.Inode] && s.State == tcpEstablished {
				return Conn{
					Client: netip.AddrPortFrom(s.Remote.Addr().Unmap(), s.Remote.Port()),
					Server: netip.AddrPortFrom(s.Local.Addr().Unmap(), s.Local.Port()),
				}, true
			}
		}
	}
	return Conn{}, false
}

// tcpEstablished is TCP_ESTABLISHED in /proc/net/tcp.
const tcpEstablished = 0x01

// ProcStat is what moat reads of /proc/PID/stat.
type ProcStat struct {
	Comm  string
	State byte
	PPid  int
	// Start is the process's start time in clock ticks since boot.
	Start uint64
}

func (h *Host) procStat(pid int) (ProcStat, error) {
	b, err := h.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ProcStat{}, err
	}
	return ParseProcStat(b)
}

// ParseProcStat reads a /proc/PID/stat line. The command name sits in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted from its last closing parenthesis.
func ParseProcStat(b []byte) (ProcStat, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return ProcStat{}, errors.New("proc stat: no (comm)")
	}
	st := ProcStat{Comm: string(b[open+1 : end])}
	f := strings.Fields(string(b[end+1:]))
	// After comm: state(3) ppid(4) … starttime(22): index 0 is field 3.
	if len(f) < 20 || len(f[0]) != 1 {
		return ProcStat{}, errors.New("proc stat: too few fields")
	}
	st.State = f[0][0]
	ppid, err := strconv.Atoi(f[1])
	if err != nil || ppid < 0 {
		return ProcStat{}, fmt.Errorf("proc stat: ppid %q", f[1])
	}
	st.PPid = ppid
	if st.Start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return ProcStat{}, fmt.Errorf("proc stat: starttime %q", f[19])
	}
	return st, nil
}

// ProcStart returns when pid started, in clock ticks since boot, and
// whether it runs (a zombie does not).
func (h *Host) ProcStart(pid int) (uint64, bool) {
	if pid <= 0 {
		return 0, false
	}
	st, err := h.procStat(pid)
	if err != nil || st.State == 'Z' || st.State == 'X' {
		return 0, false
	}
	return st.Start, true
}

// EnvironValue returns the value of key in a /proc/PID/environ image
// (NUL-separated KEY=VALUE), "" when absent. The first occurrence wins,
// as getenv(3) does.
func EnvironValue(environ []byte, key string) string {
	prefix := key + "="
	for kv := range strings.SplitSeq(string(environ), "\x00") {
		if v, ok := strings.CutPrefix(kv, prefix); ok {
			return v
		}
	}
	return ""
}

// BootTicks is the time since boot in clock ticks, on the clock
// /proc/PID/stat's start times use (CLOCK_BOOTTIME), truncated as the
// kernel truncates them: a process whose start is greater than this
// started after the call; one whose start is equal may have started
// just before or just after it, in the same tick.
func BootTicks() (uint64, error) {
	ns, err := bootNanos()
	if err != nil {
		return 0, err
	}
	return ns / (1_000_000_000 / ClockTicks), nil
}

// BootID is the kernel's boot ID: start times compare only within one.
func (h *Host) BootID() string {
	b, err := h.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func bootNanos() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_BOOTTIME): %w", err)
	}
	return uint64(ts.Sec)*1_000_000_000 + uint64(ts.Nsec), nil
}

// OwnAddr reports whether a is loopback or one of the host's own
// addresses: an SSH connection from there is a hop from a shell already
// on the host, not a login from outside.
func (h *Host) OwnAddr(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() || a.IsUnspecified() {
		return true
	}
	ifs, err := h.Interfaces()
	if err != nil {
		return false
	}
	for _, i := range ifs {
		for _, p := range i.Addrs {
			if p.Addr().Unmap() == a {
				return true
			}
		}
	}
	return false
}

// SSHSessions lists the SSH sessions open now: every sshd process that
// serves a logged-in user ("sshd: USER@…") and whose connection its
// socket shows. A daemon started by systemd has no session of its own;
// this is how it finds the operator's address all the same.
func (h *Host) SSHSessions() ([]Operator, error) {
	pids, err := h.pids()
	if err != nil {
		return nil, err
	}
	var out []Operator
	seen := map[Conn]bool{}
	ownNet := h.netns("self")
	for _, pid := range pids {
		st, err := h.procStat(pid)
		if err != nil || !isSSHD(st.Comm) || !h.sshdBinary(pid) {
			continue
		}
		// An sshd of another network namespace (a container's) serves
		// connections to other addresses than this host's.
		if ownNet != "" && h.netns(strconv.Itoa(pid)) != ownNet {
			continue
		}
		b, err := h.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil || !loggedInTitle(string(bytes.TrimRight(b, "\x00"))) {
			continue
		}
		c, ok := h.sshdSocket(pid)
		if !ok || seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, Operator{Conn: c, ConnFrom: "socket", SSHD: pid, SSHDStart: st.Start, User: SSHDTitleUser(string(bytes.TrimRight(b, "\x00")))})
	}
	return out, nil
}
