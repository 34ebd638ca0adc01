package daemon

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listenNotify listens where systemd would: a datagram socket at addr.
func listenNotify(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read notify socket: %v", err)
	}
	return string(buf[:n])
}

// Both kinds of $NOTIFY_SOCKET systemd hands out: a path, and an
// abstract name written with a leading @ (a NUL on the wire).
func TestNotifySocketKinds(t *testing.T) {
	for _, addr := range []string{
		filepath.Join(t.TempDir(), "notify"),
		fmt.Sprintf("@moat-notify-test-%d-%d", os.Getpid(), time.Now().UnixNano()),
	} {
		c := listenNotify(t, addr)
		n := newNotifier(addr, "", "", nil)
		n.ready("running: 1 jails")
		if got := readNotify(t, c); got != "READY=1\nSTATUS=running: 1 jails\n" {
			t.Errorf("%s: got %q", addr, got)
		}
		n.reloading()
		got := readNotify(t, c)
		usec, ok := strings.CutPrefix(strings.Split(got, "\n")[1], "MONOTONIC_USEC=")
		if v, err := strconv.ParseInt(usec, 10, 64); !strings.HasPrefix(got, "RELOADING=1\n") || !ok || err != nil || v <= 0 {
			t.Errorf("%s: reloading sent %q", addr, got)
		}
		if now := monotonicUsec(); now < 0 {
			t.Errorf("monotonic clock %d", now)
		}
		n.stopping()
		if got := readNotify(t, c); got != "STOPPING=1\n" {
			t.Errorf("%s: got %q", addr, got)
		}
	}
}

// No socket, a relative name (not systemd's) or another process's
// watchdog: nothing is sent, nothing fails.
func TestNotifierOff(t *testing.T) {
	for _, s := range []string{"", "relative/path"} {
		if n := newNotifier(s, "1000000", "", nil); n != nil {
			t.Errorf("newNotifier(%q) = %+v, want nil", s, n)
		}
	}
	var n *notifier
	n.ready("x")
	n.stopping()
	if err := n.runWatchdog(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := newNotifier("/x", "1000000", "1", nil); n.watchdog != 0 {
		t.Errorf("watchdog for pid 1 runs here: %v", n.watchdog)
	}
	if n := newNotifier("/x", "1000000", strconv.Itoa(os.Getpid()), nil); n.watchdog != 500*time.Millisecond {
		t.Errorf("watchdog interval %v, want half of WATCHDOG_USEC", n.watchdog)
	}
	// A socket nobody listens on: an error, not a hang or a panic.
	if err := newNotifier(filepath.Join(t.TempDir(), "gone"), "", "", nil).send("READY=1"); err == nil {
		t.Error("send to a missing socket succeeded")
	}
}
