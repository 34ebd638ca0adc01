package harden

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/sshd"
)

// testConfig asks sshd whether the configuration under root is valid:
// sshd -t on the live system (as root), sshd -T on a copy otherwise.
func testConfig(ctx context.Context, f *facts, root string) error {
	if f.live && os.Geteuid() == 0 {
		bin, err := sshdBinary(f.opt.SSHD)
		if err != nil {
			return err
		}
		return run(ctx, 30*time.Second, []string{bin, "-t", "-f", MainConfig})
	}
	_, err := sshdRunner(f, root).effective(ctx, []sshd.Context{{}})
	return err
}

func sshdBinary(name string) (string, error) {
	if name != "" {
		return name, nil
	}
	if p, err := exec.LookPath("sshd"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
		return "/usr/sbin/sshd", nil
	}
	return "", errors.New("sshd not found (install openssh-server)")
}

// ReloadSSHD makes the running sshd read its configuration under root
// again, once sshd has accepted that configuration (a reload into a
// config sshd rejects would stop it). Live under systemd it runs
// systemctl reload; otherwise it sends SIGHUP to the listener found
// through sshd's pid file (under root) or, live, its listening socket.
// Sessions in progress are not affected. It waits, bounded, until sshd
// accepts connections again, and says what it did.
func ReloadSSHD(ctx context.Context, root string) (string, error) {
	h := host.New(root)
	r := sshd.Runner{Root: root, Unprivileged: h.Live() && os.Geteuid() != 0}
	eff, err := r.Effective(ctx, sshd.Context{})
	if err != nil {
		return "", fmt.Errorf("not reloading sshd, which rejects its configuration: %w", err)
	}
	listen := eff.All("listenaddress")
	if h.Live() {
		if sd, _ := h.SystemdPID1(); sd {
			socket := false
			// Socket-activated sshd (Ubuntu 24.04's ssh.socket): the
			// listening ports come from a generator reading sshd_config,
			// so a port move needs the generator run again and the socket
			// restarted. Sessions are not affected.
			if exec.CommandContext(ctx, "systemctl", "is-active", "--quiet", "ssh.socket").Run() == nil {
				if err := run(ctx, 30*time.Second, []string{"systemctl", "daemon-reload"}); err != nil {
					return "", err
				}
				if err := run(ctx, 30*time.Second, []string{"systemctl", "restart", "ssh.socket"}); err != nil {
					return "", err
				}
				socket = true
			}
			for _, unit := range []string{"ssh.service", "sshd.service"} {
				if exec.CommandContext(ctx, "systemctl", "is-active", "--quiet", unit).Run() == nil {
					if err := run(ctx, 30*time.Second, []string{"systemctl", "reload", unit}); err != nil {
						return "", err
					}
					waitListening(ctx, listen)
					return "systemctl reload " + unit, nil
				}
			}
			if socket {
				waitListening(ctx, listen)
				return "systemctl restart ssh.socket", nil
			}
		}
	}
	pid := pidFromFile(root, eff.Get("pidfile"))
	if pid == 0 && h.Live() {
		if ls, err := h.Listeners(); err == nil {
			for _, l := range ls {
				if l.Process == "sshd" && l.Proto == "tcp" && l.PID > 0 {
					pid = l.PID
					break
				}
			}
		}
	}
	if pid == 0 {
		return "sshd is not running: nothing to reload", nil
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return "", fmt.Errorf("reload sshd (SIGHUP to %d): %w", pid, err)
	}
	waitListening(ctx, listen)
	return "SIGHUP to sshd " + strconv.Itoa(pid), nil
}

// SSHDRunning reports whether an sshd serves the configuration under
// root: always assumed on the live system (a VPS without sshd fails its
// self-probe, as it should), and under a fixture root only when sshd's
// pid file there names a running sshd (a lab's).
func SSHDRunning(ctx context.Context, root string) bool {
	if host.New(root).Live() {
		return true
	}
	eff, err := sshd.Runner{Root: root}.Effective(ctx, sshd.Context{})
	return err == nil && pidFromFile(root, eff.Get("pidfile")) > 0
}

// pidFromFile reads sshd's pid file under root and checks that the pid is
// an sshd.
func pidFromFile(root, file string) int {
	if file == "" || file == "none" {
		return 0
	}
	b, err := os.ReadFile(change.HostPath(root, file))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(comm)), "sshd") {
		return 0
	}
	return pid
}

// waitListening waits, bounded, for sshd to accept connections on one of
// its listen addresses after a reload: sshd closes its sockets and
// re-executes itself, so the listener first goes, then comes back.
func waitListening(ctx context.Context, listen []string) {
	var addrs []string
	for _, l := range listen {
		ap, err := netip.ParseAddrPort(l)
		if err != nil {
			continue
		}
		a := ap.Addr()
		if a.IsUnspecified() {
			a = netip.MustParseAddr("127.0.0.1")
			if ap.Addr().Is6() {
				a = netip.IPv6Loopback()
			}
		}
		addrs = append(addrs, netip.AddrPortFrom(a, ap.Port()).String())
	}
	if len(addrs) == 0 {
		return
	}
	up := func() bool {
		for _, a := range addrs {
			c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err == nil {
				c.Close()
				return true
			}
		}
		return false
	}
	// Let the old listener go first: sshd notices the signal at once,
	// closes its sockets and re-executes itself.
	time.Sleep(50 * time.Millisecond)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		if up() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}
