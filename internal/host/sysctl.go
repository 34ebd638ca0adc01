package host

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Sysctl reads a kernel parameter from <root>/proc/sys. The name follows
// sysctl(8): dots separate levels, and a slash stands for a dot inside a
// level, as in an interface name (net.ipv4.conf.eth0/100.rp_filter reads
// net/ipv4/conf/eth0.100/rp_filter). A name whose first separator is a
// slash is taken as a path as is. Multi-value parameters keep their tabs.
func (h *Host) Sysctl(name string) (string, error) {
	p, err := sysctlPath(name)
	if err != nil {
		return "", err
	}
	b, err := h.ReadFile("/proc/sys/" + p)
	if err != nil {
		return "", fmt.Errorf("sysctl %s: %w", name, err)
	}
	return string(bytes.TrimRight(b, "\n")), nil
}

func sysctlPath(name string) (string, error) {
	p := name
	if i := strings.IndexAny(name, "./"); i >= 0 && name[i] == '.' {
		p = strings.Map(func(r rune) rune {
			switch r {
			case '.':
				return '/'
			case '/':
				return '.'
			}
			return r
		}, name)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("sysctl %q: not a parameter name (want e.g. net.ipv4.ip_forward)", name)
		}
	}
	return p, nil
}

// Virt says whether moat runs inside a container.
type Virt struct {
	Container bool
	Kind      string // docker, podman, lxc, systemd-nspawn, kubernetes, … or "container" when unnamed
	Signal    string // the evidence, e.g. "/.dockerenv" or "/proc/1/environ"
}

// Virtualization detects a container the way systemd-detect-virt
// --container does, trying in order: /proc/vz without /proc/bc (OpenVZ),
// /.dockerenv, /run/.containerenv, container= in /proc/1/environ
// (readable by root only), /run/systemd/container, docker/lxc/kubepods in
// /proc/1/cgroup, PID 1 not being PID 1 in /proc/1/sched (a PID
// namespace), and an overlay root filesystem in /proc/self/mountinfo.
// Hardening a container's kernel settings, clock or firewall is usually
// not possible from inside it.
func (h *Host) Virtualization() (Virt, error) {
	if exists(h.Path("/proc/vz")) && !exists(h.Path("/proc/bc")) {
		return Virt{true, "openvz", "/proc/vz"}, nil
	}
	if exists(h.Path("/.dockerenv")) {
		return Virt{true, "docker", "/.dockerenv"}, nil
	}
	if exists(h.Path("/run/.containerenv")) {
		return Virt{true, "podman", "/run/.containerenv"}, nil
	}
	if b, err := h.ReadFile("/proc/1/environ"); err == nil {
		for _, kv := range bytes.Split(b, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("container=")); ok && len(v) > 0 {
				return Virt{true, string(v), "/proc/1/environ"}, nil
			}
		}
	}
	if b, err := h.ReadFile("/run/systemd/container"); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return Virt{true, string(bytes.TrimSpace(b)), "/run/systemd/container"}, nil
	}
	if b, err := h.ReadFile("/proc/1/cgroup"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.SplitN(line, ":", 3) // id:controllers:path
			if len(f) != 3 {
				continue
			}
			path := f[2]
			for _, kind := range []string{"docker", "lxc", "kubepods", "libpod"} {
				if strings.Contains(path, "/"+kind) {
					if kind == "kubepods" {
						kind = "kubernetes"
					}
					if kind == "libpod" {
						kind = "podman"
					}
					return Virt{true, kind, "/proc/1/cgroup"}, nil
				}
			}
		}
	}
	if pid, ok := schedPID(h); ok && pid != 1 {
		return Virt{true, "container", "/proc/1/sched"}, nil
	}
	if b, err := h.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			// id parent major:minor root mountpoint opts … - fstype source superopts
			f := strings.Fields(line)
			if len(f) < 5 || f[4] != "/" {
				continue
			}
			if i := slices.Index(f, "-"); i >= 0 && i+1 < len(f) && f[i+1] == "overlay" {
				return Virt{true, "container", "/proc/self/mountinfo"}, nil
			}
		}
	}
	return Virt{}, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// schedPID reads the PID the kernel reports for our PID 1 in
// /proc/1/sched ("init (4711, #threads: 1)"): inside a PID namespace on
// kernels that print the outer PID there it is not 1.
func schedPID(h *Host) (int, bool) {
	b, err := h.ReadFile("/proc/1/sched")
	if err != nil {
		return 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	open := bytes.LastIndexByte(line, '(')
	if open < 0 {
		return 0, false
	}
	num, _, ok := bytes.Cut(line[open+1:], []byte(","))
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(num)))
	return n, err == nil
}
