package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/control"
	"github.com/moat-sh/moat/internal/lab"
)

const banConfig = `host:
  admin:
    sources: [198.51.100.7/32]
vpn:
  ranges: [100.64.0.0/10]
`

// fakeDaemon serves the ban commands on a socket and records what it got.
func fakeDaemon(t *testing.T) (sock string, got chan control.BanArgs) {
	t.Helper()
	sock = filepath.Join(t.TempDir(), "moat.sock")
	got = make(chan control.BanArgs, 4)
	srv := control.NewServer(sock, nil)
	srv.Handle(control.CmdBan, func(_ context.Context, raw json.RawMessage) (any, error) {
		var a control.BanArgs
		json.Unmarshal(raw, &a)
		got <- a
		p, err := control.ParseTarget(a.Target)
		return ban.Ban{Prefix: p, Origin: ban.OriginManual}, err
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return sock, got
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "moat.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBanFlagsAnyOrder: flags before or after the address, the issue's
// `moat ban --socket S ADDR --for 10m` included.
func TestBanFlagsAnyOrder(t *testing.T) {
	sock, got := fakeDaemon(t)
	cfg := writeConfig(t, banConfig)
	t.Setenv("SSH_CONNECTION", "")
	t.Setenv("SSH_CLIENT", "")
	for _, args := range [][]string{
		{"ban", "--socket", sock, "192.0.2.77", "--for", "10m", "-c", cfg},
		{"ban", "192.0.2.77", "--socket", sock, "--for", "10m", "-c", cfg},
		{"ban", "-c", cfg, "--for", "10m", "--socket", sock, "192.0.2.77"},
		{"ban", "-c", cfg, "--for", "10m", "--socket", sock, "--", "192.0.2.77"},
	} {
		var out, errb bytes.Buffer
		if code := Main(args, nil, &out, &errb); code != ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		if a := <-got; a.Target != "192.0.2.77" || a.For != "10m" {
			t.Errorf("%v: daemon got %+v", args, a)
		}
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"ban", "--socket", sock, "192.0.2.1", "192.0.2.2"}, nil, &out, &errb); code != ExitUsage {
		t.Errorf("two targets: exit %d", code)
	}
}

// TestBanRefusesProtected: the admin's sources, the VPN, the operator's
// own session, loopback and the host's addresses are refused, naming why,
// unless --force; nothing reaches the daemon.
func TestBanRefusesProtected(t *testing.T) {
	sock, got := fakeDaemon(t)
	cfg := writeConfig(t, banConfig)
	t.Setenv("SSH_CONNECTION", "203.0.113.50 51000 192.0.2.1 22")
	for target, why := range map[string]string{
		"198.51.100.7":    "host.admin.sources",
		"198.51.100.0/24": "host.admin.sources",
		"100.100.100.100": "the VPN",
		"203.0.113.50":    "your SSH session",
		"127.0.0.1":       "loopback",
		"::1":             "loopback",
		"0.0.0.0/0":       "loopback",
	} {
		var out, errb bytes.Buffer
		code := Main([]string{"ban", target, "--socket", sock, "-c", cfg}, nil, &out, &errb)
		if code != ExitUsage || !strings.Contains(errb.String(), why) || !strings.Contains(errb.String(), "--force") {
			t.Errorf("ban %s: exit %d, %q; want a refusal naming %q", target, code, errb.String(), why)
		}
	}
	select {
	case a := <-got:
		t.Fatalf("a refused ban reached the daemon: %+v", a)
	default:
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"ban", "--force", "198.51.100.7", "--socket", sock, "-c", cfg}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("--force: exit %d: %s", code, errb.String())
	}
	<-got
}

// TestBansOfflineAndPermanent: with the daemon down, `moat bans` reads the
// store, says so, and shows a permanent ban as permanent.
func TestBansOfflineAndPermanent(t *testing.T) {
	state := t.TempDir()
	s, err := ban.Open(filepath.Join(state, "moat.db"), ban.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ban(context.Background(), []ban.Ban{
		{Prefix: netip.MustParsePrefix("192.0.2.9/32"), Origin: ban.OriginManual, Reason: "forever"},
		{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Jail: "sshd", Expires: time.Now().Add(time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	// The daemon's lock is held: reading needs none.
	lock, err := ban.LockStateDir(state)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	var out, errb bytes.Buffer
	code := Main([]string{"bans", "--socket", filepath.Join(state, "none.sock"), "--state", state}, nil, &out, &errb)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	o := out.String()
	if !strings.Contains(errb.String(), "daemon not running") || !strings.Contains(o, "2 active ban(s)") {
		t.Errorf("stdout %q stderr %q", o, errb.String())
	}
	for _, l := range strings.Split(o, "\n") {
		if strings.Contains(l, "192.0.2.9/32") && (!strings.Contains(l, "permanent") || strings.Contains(l, "0s left")) {
			t.Errorf("permanent ban shown as %q", l)
		}
	}
	s.Close()
}

// TestUnbanOffline: with the daemon down, `moat unban` lifts the ban in
// the store (and would in the kernel), says so, and warns that the
// kernel's sets are missing instead of failing.
func TestUnbanOffline(t *testing.T) {
	h := lab.New(t).Host("vps") // the kernel part runs in a namespace without table inet moat
	state := t.TempDir()
	s, err := ban.Open(filepath.Join(state, "moat.db"), ban.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Ban(context.Background(), []ban.Ban{{Prefix: netip.MustParsePrefix("192.0.2.9/32"), Origin: ban.OriginManual}})
	s.Close()
	var out, errb bytes.Buffer
	var code int
	h.Do(func() error {
		code = Main([]string{"unban", "--socket", filepath.Join(state, "none.sock"), "192.0.2.9", "--state", state}, nil, &out, &errb)
		return nil
	})
	if code != ExitOK || !strings.Contains(out.String(), "unbanned 192.0.2.9/32") {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	if e := errb.String(); !strings.Contains(e, "daemon not running") || !strings.Contains(e, "warning") {
		t.Errorf("stderr %q: want the offline note and a kernel warning", e)
	}
	left, err := ban.ReadActive(context.Background(), filepath.Join(state, "moat.db"), time.Now())
	if err != nil || len(left) != 0 {
		t.Fatalf("store after offline unban: %v %v", left, err)
	}
}

// TestSecondRunExitsAtOnce: a second `moat run` on a state directory in use
// exits 1 at once, naming the holder.
func TestSecondRunExitsAtOnce(t *testing.T) {
	state := t.TempDir()
	lock, err := ban.LockStateDir(state)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	cfg := writeConfig(t, banConfig)
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"run", "--state", state, "-c", cfg, "--socket", filepath.Join(state, "s.sock")}, nil, &out, &errb)
	}()
	select {
	case code := <-done:
		if code != ExitRuntime || !strings.Contains(errb.String(), "holds") {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the second moat run did not exit")
	}
}

// TestJailStatusOffline: with the daemon down, `moat jail status` shows the
// configured jails and their bans from the store, and says the daemon is
// not running, instead of failing.
func TestJailStatusOffline(t *testing.T) {
	state := t.TempDir()
	s, err := ban.Open(filepath.Join(state, "moat.db"), ban.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ban(context.Background(), []ban.Ban{
		{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Jail: "sshd", Expires: time.Now().Add(time.Hour)},
		{Prefix: netip.MustParsePrefix("192.0.2.11/32"), Jail: "sshd", Expires: time.Now().Add(time.Hour)},
		{Prefix: netip.MustParsePrefix("192.0.2.12/32"), Origin: ban.OriginManual},
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	cfg := filepath.Join(t.TempDir(), "moat.yaml")
	os.WriteFile(cfg, []byte("guard:\n  jails:\n    sshd:\n      maxretry: 3\n"), 0o600)
	sock := filepath.Join(state, "none.sock")

	var out, errb bytes.Buffer
	if code := Main([]string{"jail", "status", "--socket", sock, "--state", state, "-c", cfg}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "daemon not running") {
		t.Errorf("stderr %q does not say the daemon is down", errb.String())
	}
	if !regexp.MustCompile(`(?m)^sshd\s+sshd/normal\s+\S+\s+2\s+3 in `).MatchString(out.String()) {
		t.Errorf("stdout:\n%s", out.String())
	}

	out.Reset()
	errb.Reset()
	if code := Main([]string{"jail", "status", "nope", "--socket", sock, "--state", state, "-c", cfg}, nil, &out, &errb); code != ExitUsage {
		t.Errorf("unknown jail: exit %d, want %d", code, ExitUsage)
	}
}
