package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/control"
	"github.com/moat-sh/moat/internal/lab"
)

// TestReloadAllOrNothing breaks each part of a reload in turn (a jail's
// new pipeline, the alert dispatcher, the gateway) under a new config
// that changes every part: the reload is refused and every part runs as
// before: the same jails, with their old settings and sources, still
// banning; the same notifiers. Then the same config unbroken takes
// everywhere.
func TestReloadAllOrNothing(t *testing.T) {
	// The control socket answers root only.
	lab.RequireRoot(t)
	dir := t.TempDir()
	logA, logB, logC := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log"), filepath.Join(dir, "c.log")
	for _, p := range []string{logA, logB, logC} {
		os.WriteFile(p, nil, 0o600)
	}
	cfgPath := filepath.Join(dir, "moat.yaml")
	write := func(s string) {
		if err := os.WriteFile(cfgPath, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const alerts = `alerts:
  notifiers:
    %s:
      type: webhook
      url: http://127.0.0.1:9/hook
`
	before := fmt.Sprintf(`guard:
  filters:
    app:
      regex: ['app: login failed ip=<HOST>']
  jails:
    sshd:
      source: file
      paths: [%s]
      maxretry: 3
      bantime: 1d
    app:
      filter: app
      source: file
      paths: [%s]
`+alerts, logA, logC, "hook")
	// Every part changes: sshd's source and maxretry (a restart), app
	// goes, web comes, the notifier is renamed.
	after := func(web string) string {
		return fmt.Sprintf(`guard:
  filters:
    app:
      regex: ['app: login failed ip=<HOST>']
  jails:
    sshd:
      source: file
      paths: [%s]
      maxretry: 5
      bantime: 1d
    app:
      enabled: false
    web:
      filter: app
%s
`+alerts, logB, web, "hook2")
	}
	goodWeb := "      source: file\n      paths: [" + logC + "]"
	// Passes config validation, fails when its source is built.
	badWeb := "      source: journal\n      journal: ['+', '_COMM=app']"
	write(before)

	var failAlerts, failGateway atomic.Bool
	faults := &reloadFaults{
		alerts: func() error {
			if failAlerts.Load() {
				return errors.New("notifier hook2: broken for the test")
			}
			return nil
		},
		gateway: func() error {
			if failGateway.Load() {
				return errors.New("listen: broken for the test")
			}
			return nil
		},
	}
	sock := filepath.Join(dir, "moat.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: cfgPath, Explicit: true, Socket: sock, StateDir: filepath.Join(dir, "state"),
			Log: slog.New(slog.DiscardHandler), Sets: &recordingSets{elems: map[netip.Prefix]bool{}},
			CheckEvery: time.Hour, AuditEvery: time.Hour, reloadFaults: faults})
	}()
	defer func() {
		cancel()
		<-done
	}()
	call := func(cmd string, out any) error {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		return control.Call(cctx, sock, cmd, nil, out)
	}
	// state renders what runs: each jail with its maxretry and source,
	// and the notifiers.
	state := func() string {
		var js []jailStatus
		var st Status
		if call(control.CmdJails, &js) != nil || call(control.CmdStatus, &st) != nil {
			return "?"
		}
		var parts []string
		for _, j := range js {
			parts = append(parts, fmt.Sprintf("%s/%d/%s", j.Name, j.MaxRetry, filepath.Base(j.Source)))
		}
		for _, n := range st.Notifiers {
			parts = append(parts, "notifier "+n.Name)
		}
		slices.Sort(parts)
		return strings.Join(parts, " ")
	}
	const stateBefore = "app/5/c.log notifier hook sshd/3/a.log"
	waitUntil(t, 20*time.Second, "the jails to start", func() bool { return state() == stateBefore })
	jails := func() []jailStatus {
		var js []jailStatus
		call(control.CmdJails, &js)
		return js
	}
	sourceReading(t, logA, "sshd", jails)
	sourceReading(t, logC, "app", jails)

	// banned appends failures from addr to log and waits for its ban.
	n := 0
	banned := func(log string, line func(n int, addr string) string, addr string, failures int) {
		t.Helper()
		f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		for range failures {
			n++
			fmt.Fprintln(f, line(n, addr))
		}
		f.Close()
		waitUntil(t, 10*time.Second, addr+" banned", func() bool {
			var bans []ban.Ban
			if call(control.CmdBans, &bans) != nil {
				return false
			}
			return slices.ContainsFunc(bans, func(b ban.Ban) bool { return b.Prefix.Addr().String() == addr })
		})
	}
	sshdLine := func(n int, addr string) string {
		return fmt.Sprintf("%s vps sshd[%d]: Failed password for root from %s port 4242 ssh2", time.Now().Format(time.Stamp), n, addr)
	}
	appLine := func(_ int, addr string) string { return "app: login failed ip=" + addr }

	for i, c := range []struct {
		part  string
		apply func()
	}{
		{"jail", func() { write(after(badWeb)) }},
		{"alerts", func() { write(after(goodWeb)); failAlerts.Store(true) }},
		{"gateway", func() { write(after(goodWeb)); failGateway.Store(true) }},
	} {
		c.apply()
		var msg string
		err := call(control.CmdReload, &msg)
		failAlerts.Store(false)
		failGateway.Store(false)
		if err == nil || !strings.Contains(err.Error(), c.part) {
			t.Fatalf("%s broken: reload returned %v, want an error naming %s", c.part, err, c.part)
		}
		if got := state(); got != stateBefore {
			t.Fatalf("%s broken: after the refused reload %q, want the old %q", c.part, got, stateBefore)
		}
		// The old jails still read their logs and ban.
		banned(logA, sshdLine, fmt.Sprintf("203.0.113.%d", 10+i), 3)
		banned(logC, appLine, fmt.Sprintf("198.51.100.%d", 10+i), 5)
	}

	write(after(goodWeb))
	var msg string
	if err := call(control.CmdReload, &msg); err != nil {
		t.Fatalf("unbroken reload: %v", err)
	}
	if got, want := state(), "notifier hook2 sshd/5/b.log web/5/c.log"; got != want {
		t.Fatalf("after the reload %q, want %q", got, want)
	}
	sourceReading(t, logB, "sshd", jails)
	sourceReading(t, logC, "web", jails)
	banned(logB, sshdLine, "203.0.113.99", 5)
	banned(logC, appLine, "198.51.100.99", 5)
}
