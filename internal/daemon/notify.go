package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moat-sh/moat/internal/control"
)

// sd_notify without libsystemd: under Type=notify systemd passes a
// datagram socket in $NOTIFY_SOCKET (a path, or an abstract name starting
// with @) and waits for READY=1 before it counts moat as started (and
// before `systemctl start` returns). RELOADING=1 and READY=1 bracket a
// reload, STOPPING=1 announces the shutdown, WATCHDOG=1 keeps
// WatchdogSec= from restarting a live daemon.

// Environment variables systemd sets for a Type=notify service.
const (
	envNotifySocket = "NOTIFY_SOCKET"
	envWatchdogUsec = "WATCHDOG_USEC"
	envWatchdogPID  = "WATCHDOG_PID"
)

// notifier writes state to systemd's notify socket. A nil notifier (no
// $NOTIFY_SOCKET: not under systemd) does nothing.
type notifier struct {
	addr     *net.UnixAddr
	log      *slog.Logger
	watchdog time.Duration // the ping interval: half of WATCHDOG_USEC; 0 when off
}

// newNotifier returns the notifier for socket ($NOTIFY_SOCKET), nil when
// it is empty. watchdogUsec and watchdogPID are $WATCHDOG_USEC and
// $WATCHDOG_PID: the watchdog is on when the first is set and the second
// is empty or this process.
func newNotifier(socket, watchdogUsec, watchdogPID string, log *slog.Logger) *notifier {
	if socket == "" || (socket[0] != '/' && socket[0] != '@') {
		return nil
	}
	// Go maps a leading @ to the abstract namespace (a NUL byte), as
	// systemd means it.
	n := &notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}, log: log}
	if us, err := strconv.ParseUint(watchdogUsec, 10, 63); err == nil && us > 0 {
		if watchdogPID == "" || watchdogPID == strconv.Itoa(os.Getpid()) {
			n.watchdog = time.Duration(us) * time.Microsecond / 2
		}
	}
	return n
}

// notifierFromEnv is newNotifier from the process environment.
func notifierFromEnv(log *slog.Logger) *notifier {
	return newNotifier(os.Getenv(envNotifySocket), os.Getenv(envWatchdogUsec), os.Getenv(envWatchdogPID), log)
}

// send writes one datagram of newline-separated KEY=VALUE assignments.
func (n *notifier) send(state ...string) error {
	if n == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(state, "\n") + "\n")); err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
	}
	return nil
}

// notify sends state and logs a failure: systemd being unreachable must
// not stop the daemon (it would time the start out and say so itself).
func (n *notifier) notify(state ...string) {
	if err := n.send(state...); err != nil && n.log != nil {
		n.log.Warn("notify systemd", "err", err)
	}
}

// ready says the daemon serves: its jails, gateway and control socket run.
func (n *notifier) ready(status string) {
	n.notify("READY=1", "STATUS="+status)
}

// reloading says a reload began; ready must follow when it ends, applied
// or refused.
func (n *notifier) reloading() {
	n.notify("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(monotonicUsec(), 10))
}

// reloaded ends a reload.
func (n *notifier) reloaded(err error) {
	status := "running; config reloaded"
	if err != nil {
		status = "running; reload refused, the previous config stays"
	}
	n.notify("READY=1", "STATUS="+status)
}

// stopping says the daemon is shutting down.
func (n *notifier) stopping() { n.notify("STOPPING=1") }

// runWatchdog pings systemd's watchdog until ctx ends.
func (n *notifier) runWatchdog(ctx context.Context) error {
	if n == nil || n.watchdog <= 0 {
		return nil
	}
	t := time.NewTicker(n.watchdog)
	defer t.Stop()
	for {
		n.notify("WATCHDOG=1")
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// notifyReady says READY=1 once the control socket accepts connections
// (everything else started before it), then runs the watchdog.
func (d *Daemon) notifyReady(ctx context.Context, srv *control.Server, jails int) error {
	if d.sd == nil {
		return nil
	}
	select {
	case <-srv.Listening():
	case <-ctx.Done():
		return nil
	}
	d.sd.ready(fmt.Sprintf("running: %d jails", jails))
	return d.sd.runWatchdog(ctx)
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, the clock systemd
// compares a reload's MONOTONIC_USEC with.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
