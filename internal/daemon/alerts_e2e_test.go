package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/lab"
)

// hookReceiver is a webhook receiver: it checks each request's signature
// as docs/alerts.md tells receivers to, and keeps the events with the time
// they arrived.
type hookReceiver struct {
	t      *testing.T
	secret string

	mu     sync.Mutex
	got    []received
	signal chan struct{}
}

type received struct {
	alert.Event
	at time.Time
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	at := time.Now()
	if err := alert.Verify(h.secret, r.Header.Get(alert.HeaderTimestamp), r.Header.Get(alert.HeaderSignature), body, at, 5*time.Minute); err != nil {
		h.t.Errorf("webhook signature: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p alert.WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil || p.Version != alert.WebhookVersion {
		h.t.Errorf("webhook body %s: %v", body, err)
	}
	if kind := r.Header.Get(alert.HeaderEvent); kind != p.Kind {
		h.t.Errorf("%s header %q, body kind %q", alert.HeaderEvent, kind, p.Kind)
	}
	h.mu.Lock()
	h.got = append(h.got, received{p.Event, at})
	h.mu.Unlock()
	select {
	case h.signal <- struct{}{}:
	default:
	}
}

// of returns the events of kind received so far.
func (h *hookReceiver) of(kind string) []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []received
	for _, e := range h.got {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// wait waits until match finds an event, for at most d.
func (h *hookReceiver) wait(d time.Duration, match func(received) bool) (received, bool) {
	deadline := time.After(d)
	for {
		h.mu.Lock()
		for _, e := range h.got {
			if match(e) {
				h.mu.Unlock()
				return e, true
			}
		}
		h.mu.Unlock()
		select {
		case <-h.signal:
		case <-deadline:
			return received{}, false
		}
	}
}

func (h *hookReceiver) dump() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, e := range h.got {
		fmt.Fprintf(&b, "%s %s %s: %s %v\n", e.at.Format("15:04:05.000"), e.Kind, e.Severity, e.Title, e.Fields)
	}
	return b.String()
}

// bruteForce makes one SSH connection from local (an address of h) and
// tries each password.
func bruteForce(t *testing.T, h *lab.Host, local, addr, user string, passwords ...string) {
	var conn net.Conn
	err := h.Do(func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		conn = c
		return err
	})
	if err != nil {
		t.Errorf("connect from %s: %v", local, err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	i := 0
	cfg := &ssh.ClientConfig{User: user, HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Auth: []ssh.AuthMethod{ssh.RetryableAuthMethod(ssh.PasswordCallback(func() (string, error) {
			p := passwords[i%len(passwords)]
			i++
			return p, nil
		}), len(passwords))}}
	if c, _, _, err := ssh.NewClientConn(conn, addr, cfg); err == nil {
		c.Close()
	}
}

// freePort returns a TCP port nothing listens on in h.
func freePort(t *testing.T, h *lab.Host) int {
	ln, err := h.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestAlertsEndToEnd: moat run in a vps namespace with a signed webhook
// notifier whose receiver runs in the same namespace. The admin's SSH
// login with a key is alerted (within 10 s: not a speed test, but an
// alert stuck behind something would show); a brute force from five
// addresses, five bans, is digested; the metrics endpoint
// exposes the guard's, the bans' and the firewall's figures; moat status
// shows every layer, and still shows what it can once the daemon stops.
func TestAlertsEndToEnd(t *testing.T) {
	lab.RequireTool(t, "sshd", "nft", "go")
	bin := buildMoat(t)
	l := lab.New(t)
	vps, attacker, admin := l.Host("vps"), l.Host("attacker"), l.Host("admin")
	attackers := []string{"198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5", "198.51.100.6"}
	var cidrs []string
	for _, a := range attackers {
		cidrs = append(cidrs, a+"/24")
	}
	l.Link(vps, "eth0", attacker, "eth0", []string{"198.51.100.1/24"}, cidrs)
	l.Link(vps, "wg0", admin, "eth0", []string{"10.8.0.1/24"}, []string{"10.8.0.2/24"})

	hook := &hookReceiver{t: t, secret: "s3cret", signal: make(chan struct{}, 1)}
	ln, err := vps.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: hook, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	metricsPort := freePort(t, vps)

	dir := t.TempDir()
	logPath := filepath.Join(dir, "auth.log")
	signer, pub := lab.GenerateKey()
	d := vps.StartSSHD(t, lab.SSHDOptions{
		ExtraConfig: "PasswordAuthentication yes\nMaxAuthTries 6\n",
		Users: []lab.SSHUser{
			{Name: "deploy", AuthorizedKeys: []string{pub}},
			{Name: "alice", Password: "the right one"},
		},
		LogFile: logPath, SyslogFormat: true,
	})
	// Wide enough that the five bans usually share one window on a loaded
	// machine; the check below allows for the windows their spread spans.
	const digest = 5 * time.Second
	cfg := filepath.Join(dir, "moat.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`host:
  admin:
    user: deploy
    sources: [10.8.0.2]
ssh:
  port: %d
  exposure: vpn+public
  rate_limit: 1000/minute
vpn:
  interfaces: [wg0]
  ranges: [10.8.0.0/24]
firewall:
  public_interface: eth0
  public: [80/tcp]
guard:
  jails:
    sshd:
      source: file
      paths: [%s]
      maxretry: 3
      findtime: 10m
      bantime: 1h
alerts:
  notifiers:
    hook:
      type: webhook
      url: http://%s/hook
      secret: %s
  digest: %s
  metrics: 127.0.0.1:%d
`, d.Port, logPath, ln.Addr(), hook.secret, digest, metricsPort)), 0o600)

	if out, err := vps.Run(context.Background(), bin, "apply", "firewall", "--yes", "-c", cfg, "--root", filepath.Join(dir, "root")); err != nil {
		t.Fatalf("apply firewall: %v\n%s", err, out)
	}
	sock, state := filepath.Join(dir, "moat.sock"), filepath.Join(dir, "state")
	moat := vps.Start(t, bin, "run", "-c", cfg, "--state", state, "--socket", sock)
	if _, ok := hook.wait(15*time.Second, func(e received) bool { return e.Kind == alert.KindLifecycle }); !ok {
		t.Fatalf("no \"moat started\" alert\nreceived:\n%s\nmoat:\n%s", hook.dump(), moat.Output())
	}

	// The admin logs in with a key: one login alert.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	began := time.Now()
	if err := lab.SSHLogin(ctx, admin, d.Addr("10.8.0.1"), "deploy", ssh.PublicKeys(signer)); err != nil {
		t.Fatalf("admin login: %v", err)
	}
	loggedIn := time.Now()
	login, ok := hook.wait(30*time.Second, func(e received) bool { return e.Kind == alert.KindLogin })
	if !ok {
		t.Fatalf("no login alert within 30 s\nreceived:\n%s\nsshd log:\n%s\nmoat:\n%s", hook.dump(), d.Log(), moat.Output())
	}
	latency := login.at.Sub(began)
	// The alert usually arrives before SSHLogin returns: sshd logs the
	// login when the key is accepted, before the session runs.
	t.Logf("login alert %v after the login began (SSHLogin took %v)", latency.Round(time.Millisecond), loggedIn.Sub(began).Round(time.Millisecond))
	if latency > 10*time.Second {
		t.Errorf("login alert took %v, want within 10 s", latency)
	}
	if f := login.Fields; f["user"] != "deploy" || f["addr"] != "10.8.0.2" || f["method"] != "publickey" || !strings.HasPrefix(f["fingerprint"], "SHA256:") {
		t.Errorf("login alert fields = %v", f)
	}

	// A brute force from five addresses: five bans, one digest message.
	pub4 := d.Addr("198.51.100.1")
	var wg sync.WaitGroup
	for _, a := range attackers {
		wg.Go(func() { bruteForce(t, attacker, a, pub4, "alice", "wrong1", "wrong2", "wrong3") })
	}
	wg.Wait()
	var bans []struct {
		Prefix  string    `json:"prefix"`
		Jail    string    `json:"jail"`
		Created time.Time `json:"created"`
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, err := exec.Command(bin, "bans", "--json", "--socket", sock).Output()
		if err == nil && json.Unmarshal(out, &bans) == nil && len(bans) == len(attackers) {
			break
		}
	}
	if len(bans) != len(attackers) {
		t.Fatalf("bans = %+v, want one per attacker address\nsshd log:\n%s\nmoat:\n%s", bans, d.Log(), moat.Output())
	}
	first, last := bans[0].Created, bans[0].Created
	for _, b := range bans {
		first, last = minTime(first, b.Created), maxTime(last, b.Created)
	}
	t.Logf("%d bans within %v", len(bans), last.Sub(first).Round(time.Millisecond))
	// Every ban reported, in digests only: as many as the windows the
	// bans' spread spans, one when they share a window.
	var banMsgs []received
	digested := func() (n int) {
		banMsgs = hook.of(alert.KindBan)
		for _, m := range banMsgs {
			b, _ := strconv.Atoi(m.Fields["bans"])
			n += b
		}
		return n
	}
	for deadline := time.Now().Add(2*digest + 30*time.Second); digested() < len(bans) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if n := digested(); n != len(bans) {
		t.Fatalf("ban messages report %d bans, want %d\nreceived:\n%s", n, len(bans), hook.dump())
	}
	// (A second allows for the bans' way from the store to the notifier.)
	if windows := int((last.Sub(first)+time.Second)/digest) + 1; len(banMsgs) > windows {
		t.Errorf("%d ban messages for %d bans within %v, want at most %d digests\nreceived:\n%s", len(banMsgs), len(bans), last.Sub(first), windows, hook.dump())
	}
	for _, m := range banMsgs {
		if m.Fields["digest"] != "true" {
			t.Errorf("a ban message that is not a digest: %v", m.Fields)
		}
	}
	if f := banMsgs[0].Fields; len(banMsgs) == 1 && (f["bans"] != "5" || f["addresses"] != "5" || f["jails"] != "sshd=5") {
		t.Errorf("digest fields = %v", f)
	}

	// Metrics, from inside vps where the endpoint listens on loopback.
	resp, err := vps.HTTPClient().Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	samples := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); !strings.HasPrefix(line, "#") {
			samples[line] = true
		}
	}
	resp.Body.Close()
	for _, want := range []string{
		`moat_ban_active_bans 5`,
		`moat_ban_bans_total{jail="sshd",origin="auto"} 5`,
		`moat_guard_decisions_total{jail="sshd"} 5`,
		`moat_firewall_loaded 1`,
		`moat_firewall_set_elements{set="ban4"} 5`,
	} {
		if !samples[want] {
			t.Errorf("metrics: no %q", want)
		}
	}
	// started, the login, the digest; the host checks may add their own.
	if n := sampleValue(samples, `moat_alert_sent_total{notifier="hook"} `); n < 3 {
		t.Errorf("metrics: moat_alert_sent_total{notifier=\"hook\"} = %v, want at least 3", n)
	}
	if !hasPrefix(samples, `moat_guard_lines_total{jail="sshd"} `) || !hasPrefix(samples, `moat_firewall_dropped_packets_total{reason="ban"} `) {
		t.Errorf("metrics: guard lines or firewall drop counters missing")
	}

	// moat status, from the daemon.
	var st struct {
		Running   bool `json:"daemon_running"`
		Bans      int  `json:"active_bans"`
		Firewall  struct{ Loaded bool }
		Notifiers []alert.NotifierHealth
		Pending   *struct{} `json:"pending_change"`
	}
	out, err := vps.Run(context.Background(), bin, "status", "--json", "--socket", sock, "--state", state)
	if err != nil || json.Unmarshal(out, &st) != nil || !st.Running || st.Bans != 5 || !st.Firewall.Loaded ||
		len(st.Notifiers) != 1 || st.Notifiers[0].Sent < 3 || st.Pending != nil {
		t.Errorf("moat status --json: %v\n%s", err, out)
	}
	out, err = vps.Run(context.Background(), bin, "status", "--socket", sock, "--state", state)
	for _, want := range []string{"FIREWALL  loaded", "GUARD  5 active ban(s)", "PENDING CHANGE  none", "hook", "webhook  sent"} {
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("moat status: no %q (%v)\n%s", want, err, out)
		}
	}

	// Without the daemon, moat status says so, shows what it can, and
	// exits 1.
	moat.Stop()
	if _, ok := hook.wait(5*time.Second, func(e received) bool { return e.Kind == alert.KindLifecycle && e.Fields["action"] == alert.Stopped }); !ok {
		t.Errorf("no \"moat stopped\" alert\nreceived:\n%s", hook.dump())
	}
	out, err = vps.Run(context.Background(), bin, "status", "--socket", sock, "--state", state)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("moat status without the daemon: %v, want exit 1", err)
	}
	for _, want := range []string{"daemon not running", "FIREWALL  loaded", "GUARD  5 active ban(s)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("offline moat status: no %q\n%s", want, out)
		}
	}
}

func hasPrefix(samples map[string]bool, prefix string) bool {
	for s := range samples {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func sampleValue(samples map[string]bool, prefix string) float64 {
	for s := range samples {
		if v, ok := strings.CutPrefix(s, prefix); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
