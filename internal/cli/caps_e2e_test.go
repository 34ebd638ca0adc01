package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/examples"
	"github.com/moat-sh/moat/internal/lab"
)

// envBind makes the test binary bind the TCP address it names and exit:
// what the gateway does for :80 and :443, under the caps it is given.
const envBind = "MOAT_TEST_BIND"

func init() {
	if addr := os.Getenv(envBind); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println("bind:", err)
			os.Exit(1)
		}
		ln.Close()
		fmt.Println("bound", addr)
		os.Exit(0)
	}
}

// unitCaps returns moat.service's CapabilityBoundingSet as setpriv takes
// it: "-all,+net_admin,…".
func unitCaps(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(examples.Service, "\n") {
		if v, ok := strings.CutPrefix(line, "CapabilityBoundingSet="); ok {
			spec := "-all"
			for _, c := range strings.Fields(v) {
				spec += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
			}
			return spec
		}
	}
	t.Fatal("moat.service has no CapabilityBoundingSet")
	return ""
}

// The unit's capability list is enough, and each line of it earns its
// place: the real `moat run`, as root but bounded to exactly the unit's
// CapabilityBoundingSet (setpriv, with no_new_privs, as systemd would),
// creates its ban table (bans-only), reads an auth log owned by another
// user with mode 0600 (CAP_DAC_READ_SEARCH), and bans the attacker in
// the kernel set (CAP_NET_ADMIN). Without CAP_DAC_READ_SEARCH the same
// run cannot read that log and bans no one.
func TestDaemonWorksWithUnitCapabilities(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "ip", "nft", "setpriv")
	caps := unitCaps(t)
	run := func(t *testing.T, caps string) (banned bool, log string) {
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		authLog := filepath.Join(dir, "auth.log")
		os.WriteFile(authLog, nil, 0o600)
		// Another user's file, unreadable to root without DAC capabilities.
		if err := os.Chown(authLog, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "moat.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`firewall:
  mode: bans-only
guard:
  jails:
    sshd:
      source: file
      paths: [%s]
      maxretry: 2
      bantime: 1h
`, authLog)), 0o600)
		notify := filepath.Join(dir, "notify")
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		t.Setenv(envAsMoat, "1")
		t.Setenv("NOTIFY_SOCKET", notify)
		exe, _ := os.Executable()
		h := lab.New(t).Host("vps")
		p := h.Start(t, "setpriv", "--no-new-privs", "--bounding-set", caps, "--inh-caps", "-all", "--",
			exe, "run", "-c", cfg, "--state", filepath.Join(dir, "state"), "--socket", filepath.Join(dir, "moat.sock"))
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 512)
		if n, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "READY=1") {
			t.Fatalf("moat run under %s: no READY=1: %v %q\n%s", caps, err, buf[:n], p.Output())
		}
		// A failure line every round until the ban shows: the file source
		// may open the log (at its end) only after READY=1 on a loaded
		// machine, and lines written before that are rightly not read.
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; time.Now().Before(deadline); i++ {
			f, err := os.OpenFile(authLog, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(f, "%s vps sshd[%d]: Failed password for root from 203.0.113.9 port 4242 ssh2\n", time.Now().Format(time.Stamp), 100+i)
			f.Close()
			out, _ := h.Run(context.Background(), "nft", "list", "set", "inet", "moat", "ban4")
			if strings.Contains(string(out), "203.0.113.9") {
				return true, p.Output()
			}
			// The jail's source says why it cannot read: no need to wait.
			if strings.Contains(p.Output(), "permission denied") {
				return false, p.Output()
			}
			time.Sleep(200 * time.Millisecond)
		}
		return false, p.Output()
	}
	t.Run("unit capabilities", func(t *testing.T) {
		if banned, log := run(t, caps); !banned {
			t.Fatalf("no ban in the kernel set under %s; moat run said:\n%s", caps, log)
		}
	})
	t.Run("without CAP_DAC_READ_SEARCH", func(t *testing.T) {
		less := strings.Replace(caps, ",+dac_read_search", "", 1)
		if less == caps {
			t.Fatal("the unit lacks CAP_DAC_READ_SEARCH")
		}
		banned, log := run(t, less)
		if banned {
			t.Fatalf("banned without CAP_DAC_READ_SEARCH: the log was readable anyway, the test proves nothing\n%s", log)
		}
		if !strings.Contains(log, "permission denied") {
			t.Errorf("no ban, but not for want of reading the log:\n%s", log)
		}
	})
	// The other two lines of the list, each against its absence: binding
	// :80/:443 (the gateway) and reading /dev/kmsg (OOM kills).
	h := lab.New(t).Host("vps")
	exe, _ := os.Executable()
	bounded := func(caps string, env []string, name string, args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		_, err := h.Run(ctx, "setpriv", append([]string{"--no-new-privs", "--bounding-set", caps, "--inh-caps", "-all", "--", name}, args...)...)
		for _, kv := range env {
			k, _, _ := strings.Cut(kv, "=")
			os.Unsetenv(k)
		}
		return err
	}
	t.Run("CAP_NET_BIND_SERVICE binds :80 and :443", func(t *testing.T) {
		for _, port := range []string{":80", ":443"} {
			if err := bounded(caps, []string{envBind + "=" + port}, exe); err != nil {
				t.Errorf("bind %s under the unit's caps: %v", port, err)
			}
			if err := bounded(strings.Replace(caps, ",+net_bind_service", "", 1), []string{envBind + "=" + port}, exe); err == nil {
				t.Errorf("bound %s without CAP_NET_BIND_SERVICE", port)
			}
		}
	})
	t.Run("CAP_SYSLOG reads /dev/kmsg", func(t *testing.T) {
		if b, _ := os.ReadFile("/proc/sys/kernel/dmesg_restrict"); strings.TrimSpace(string(b)) != "1" {
			t.Log("kernel.dmesg_restrict is not 1: /dev/kmsg is open to all, nothing to show")
			return
		}
		kmsg := []string{"if=/dev/kmsg", "iflag=nonblock", "count=0", "status=none"}
		if err := bounded(caps, nil, "dd", kmsg...); err != nil {
			t.Errorf("open /dev/kmsg under the unit's caps: %v", err)
		}
		if err := bounded(strings.Replace(caps, ",+syslog", "", 1), nil, "dd", kmsg...); err == nil {
			t.Error("opened /dev/kmsg without CAP_SYSLOG")
		}
	})
}
