package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/lab"
)

// The real daemon under a stand-in for systemd: `moat run` (this test
// binary acting as moat, in a lab namespace so its kernel sets are its
// own) is given $NOTIFY_SOCKET and $WATCHDOG_USEC as systemd gives them
// to a Type=notify unit, and the test reads what it says: READY=1 once it
// serves, RELOADING=1 then READY=1 around `moat reload` and SIGHUP (also
// a refused one), WATCHDOG=1 pings, STOPPING=1 on SIGTERM.
func TestSystemdNotifyRealDaemon(t *testing.T) {
	lab.RequireRoot(t) // the control socket answers root only; the lab needs root
	lab.RequireTool(t, "ip", "nft")
	dir := t.TempDir()
	authLog := filepath.Join(dir, "auth.log")
	os.WriteFile(authLog, nil, 0o600)
	cfgPath := filepath.Join(dir, "moat.yaml")
	good := "guard:\n  jails:\n    sshd:\n      source: file\n      paths: [" + authLog + "]\n"
	if err := os.WriteFile(cfgPath, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	notifyPath := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs := make(chan string, 256)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	// next returns the next message that is not a watchdog ping, counting
	// the pings.
	pings := 0
	next := func(what string) string {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed waiting for %s", what)
				}
				if m == "WATCHDOG=1\n" {
					pings++
					continue
				}
				return m
			case <-deadline:
				t.Fatalf("no %s from moat run within 30s", what)
			}
		}
	}

	t.Setenv(envAsMoat, "1")
	t.Setenv("NOTIFY_SOCKET", notifyPath)
	t.Setenv("WATCHDOG_USEC", "200000")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "moat.sock")
	h := lab.New(t).Host("vps")
	p := h.Start(t, exe, "run", "-c", cfgPath, "--state", filepath.Join(dir, "state"), "--socket", sock)

	if m := next("READY=1"); !strings.HasPrefix(m, "READY=1\nSTATUS=running") {
		t.Fatalf("first message %q, want READY=1", m)
	}
	// Ready means serving: the control socket answers at once.
	if out, errOut, code := runMain("status", "--socket", sock, "--json"); code != ExitOK {
		t.Fatalf("moat status right after READY=1: %d %s %s", code, out, errOut)
	}
	reload := func(how string, wantStatus string) {
		t.Helper()
		switch how {
		case "moat reload":
			runMain("reload", "--socket", sock)
		case "SIGHUP":
			if err := p.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
		m := next("RELOADING=1 (" + how + ")")
		if !strings.HasPrefix(m, "RELOADING=1\nMONOTONIC_USEC=") {
			t.Fatalf("%s: got %q, want RELOADING=1 with MONOTONIC_USEC", how, m)
		}
		if m := next("READY=1 after " + how); !strings.HasPrefix(m, "READY=1\n") || !strings.Contains(m, wantStatus) {
			t.Fatalf("%s: got %q, want READY=1 with %q", how, m, wantStatus)
		}
	}
	reload("moat reload", "config reloaded")
	reload("SIGHUP", "config reloaded")
	// A refused reload still ends with READY=1: systemd would otherwise
	// hold the unit in "reloading" until its timeout.
	os.WriteFile(cfgPath, []byte("guard:\n  jails: [\n"), 0o600)
	reload("moat reload", "reload refused")

	deadline := time.Now().Add(30 * time.Second)
	for pings < 2 && time.Now().Before(deadline) {
		select {
		case m := <-msgs:
			if m != "WATCHDOG=1\n" {
				t.Fatalf("unexpected %q", m)
			}
			pings++
		case <-time.After(time.Second):
		}
	}
	if pings < 2 {
		t.Fatalf("%d watchdog pings with WATCHDOG_USEC=200000", pings)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if m := next("STOPPING=1"); m != "STOPPING=1\n" {
		t.Fatalf("on SIGTERM got %q, want STOPPING=1", m)
	}
	select {
	case <-p.Done():
		if err := p.Wait(); err != nil {
			t.Fatalf("moat run exited: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("moat run did not exit within 30s of SIGTERM")
	}
}
