package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/moat-sh/moat/internal/lab"
)

// The lab tests run the real moat binary (`moat run`) in three network
// namespaces joined by a bridge, the fleet's private "VPN" 10.77.0.0/24,
// each with its embedded NATS node clustered with the others (or, in the
// standalone variant, all connected to a nats-server built from the
// module). Bans are decided by a jail reading a log file (maxretry 1), so
// a line "fail from ADDR" appended on a host is a brute force seen there.

var (
	buildOnce        sync.Once
	moatBin, natsBin string
	buildErr         error
	buildDir         string
	labVPN           = "10.77.0.0/24"
	labAdmin         = map[string]string{"a": "192.0.2.51", "b": "192.0.2.52", "c": "192.0.2.53"}
	labAddr          = map[string]string{"a": "10.77.0.1", "b": "10.77.0.2", "c": "10.77.0.3"}
	labNames         = []string{"a", "b", "c"}
)

func buildBinaries(t *testing.T) (string, string) {
	t.Helper()
	lab.RequireTool(t, "go", "nft", "ip")
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "moat-fleet-bin-")
		if buildErr != nil {
			return
		}
		moatBin, natsBin = filepath.Join(buildDir, "moat"), filepath.Join(buildDir, "nats-server")
		cmd := exec.Command("go", "build", "-o", moatBin, "github.com/moat-sh/moat/cmd/moat")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build moat: %v\n%s", err, out)
			return
		}
		// nats-server's main, at the version moat links: go install
		// builds it in its own module context.
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/nats-io/nats-server/v2").Output()
		if err != nil {
			buildErr = fmt.Errorf("nats-server version: %v", err)
			return
		}
		cmd = exec.Command("go", "install", "github.com/nats-io/nats-server/v2@"+strings.TrimSpace(string(out)))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+buildDir, "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build nats-server: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return moatBin, natsBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

type labHost struct {
	name, dir, cfg, sock, state, log string
	h                                *lab.Host
	proc                             *lab.Proc
	bin                              string
	// top is the test the host's processes belong to: a process started
	// in a subtest outlives it.
	top *testing.T
}

type labBan struct {
	Prefix  string    `json:"prefix"`
	Jail    string    `json:"jail"`
	Origin  string    `json:"origin"`
	Expires time.Time `json:"expires"`
}

// newLab builds the namespaces and configs; natsURL, when set, is a
// standalone NATS instead of the embedded cluster.
func newLab(t *testing.T, standalone bool) (*lab.Lab, map[string]*labHost, *lab.Host) {
	bin, _ := buildBinaries(t)
	l := lab.New(t)
	sw := l.Host("sw")
	hosts := map[string]*labHost{}
	ports := []string{}
	for i, n := range labNames {
		h := l.Host(n)
		l.Link(h, "wg0", sw, fmt.Sprintf("p%d", i), []string{labAddr[n] + "/24"}, nil)
		ports = append(ports, fmt.Sprintf("p%d", i))
		dir := t.TempDir()
		hosts[n] = &labHost{name: n, dir: dir, h: h, bin: bin, top: t, cfg: filepath.Join(dir, "moat.yaml"),
			sock: filepath.Join(dir, "moat.sock"), state: filepath.Join(dir, "state"), log: filepath.Join(dir, "app.log")}
		os.WriteFile(hosts[n].log, nil, 0o600)
	}
	var nsrv *lab.Host
	if standalone {
		nsrv = l.Host("nats")
		l.Link(nsrv, "wg0", sw, "p9", []string{"10.77.0.10/24"}, nil)
		ports = append(ports, "p9")
	}
	sw.MustRun(t, "ip", "link", "add", "br0", "type", "bridge")
	for _, p := range ports {
		sw.MustRun(t, "ip", "link", "set", p, "master", "br0")
	}
	sw.MustRun(t, "ip", "link", "set", "br0", "up")

	keys := t.TempDir()
	secret := filepath.Join(keys, "route.secret")
	if err := NewSecret(secret); err != nil {
		t.Fatal(err)
	}
	pubs := map[string]string{}
	for _, n := range labNames {
		pub, err := Keygen(filepath.Join(keys, n+".nkey"))
		if err != nil {
			t.Fatal(err)
		}
		pubs[n] = pub
	}
	var hostsYAML strings.Builder
	for _, n := range labNames {
		fmt.Fprintf(&hostsYAML, "    %s: %s\n", n, pubs[n])
	}
	for _, n := range labNames {
		lh := hosts[n]
		var nats string
		if standalone {
			nats = "    url: nats://10.77.0.10:4222\n"
		} else {
			var routes []string
			for _, o := range labNames {
				if o != n {
					routes = append(routes, fmt.Sprintf("nats://%s:6222", labAddr[o]))
				}
			}
			nats = fmt.Sprintf("    embedded:\n      listen: %s:4222\n      cluster:\n        listen: %s:6222\n        routes: [%s]\n        secret: %s\n",
				labAddr[n], labAddr[n], strings.Join(routes, ", "), secret)
		}
		cfg := fmt.Sprintf(`host:
  admin:
    sources: [%s]
vpn:
  interfaces: [wg0]
  ranges: [%s]
firewall:
  mode: bans-only
guard:
  jails:
    sshd:
      enabled: false
    app:
      filter: app
      source: file
      paths: [%s]
      maxretry: 1
      bantime: 1h
  filters:
    app:
      regex: ['^fail from <HOST>$']
fleet:
  name: lab
  host: %s
  nats:
%s  credentials: %s
  hosts:
%s  share: [app, manual]
  trust: ["*"]
`, labAdmin[n], labVPN, lh.log, n, nats, filepath.Join(keys, n+".nkey"), hostsYAML.String())
		if err := os.WriteFile(lh.cfg, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if standalone {
		_, natsBin := buildBinaries(t)
		conf := filepath.Join(keys, "nats.conf")
		os.WriteFile(conf, []byte(ServerConfig("lab", pubs, "10.77.0.10:4222", filepath.Join(keys, "js"))), 0o600)
		nsrv.Start(t, natsBin, "-c", conf)
		waitFor(t, 20*time.Second, "nats-server listening", func() bool { return nsrv.CanConnect("tcp", "10.77.0.10:4222", 200*time.Millisecond) })
	}
	return l, hosts, nsrv
}

func (lh *labHost) start() {
	lh.proc = lh.h.Start(lh.top, lh.bin, "run", "-c", lh.cfg, "--state", lh.state, "--socket", lh.sock)
}

// waitReady waits until the host's fleet status shows a stream with a
// quorum.
func (lh *labHost) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		out, err := exec.Command(lh.bin, "fleet", "status", "--json", "--socket", lh.sock).CombinedOutput()
		last = string(out)
		var st Status
		if err == nil && json.Unmarshal(out, &st) == nil && st.Stream != nil && st.Stream.Quorum && len(st.Consumers) > 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("host %s: fleet not ready: %s\nmoat:\n%s", lh.name, last, lh.output())
}

func (lh *labHost) output() string {
	if lh.proc == nil {
		return ""
	}
	return tail(lh.proc.Output(), 4000)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (lh *labHost) bans(t *testing.T) map[string]labBan {
	t.Helper()
	out, err := exec.Command(lh.bin, "bans", "--json", "--socket", lh.sock, "--state", lh.state).Output()
	if err != nil {
		t.Fatalf("moat bans on %s: %v", lh.name, err)
	}
	var bs []labBan
	if err := json.Unmarshal(out, &bs); err != nil {
		t.Fatalf("moat bans on %s: %v: %s", lh.name, err, out)
	}
	m := map[string]labBan{}
	for _, b := range bs {
		m[b.Prefix] = b
	}
	return m
}

// fail appends one failure line per address to the host's app log.
func (lh *labHost) fail(t *testing.T, addrs ...string) {
	t.Helper()
	f, err := os.OpenFile(lh.log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&b, "fail from %s\n", a)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}

// waitBanned waits until every prefix is banned on lh.
func (lh *labHost) waitBanned(t *testing.T, d time.Duration, prefixes ...string) map[string]labBan {
	t.Helper()
	var bs map[string]labBan
	var missing string
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		bs = lh.bans(t)
		missing = ""
		for _, p := range prefixes {
			if _, ok := bs[p]; !ok {
				missing = p
				break
			}
		}
		if missing == "" {
			return bs
		}
	}
	t.Fatalf("host %s: %s not banned after %s (%d bans)\nmoat:\n%s", lh.name, missing, d, len(bs), lh.output())
	return nil
}

// inKernel reports whether addr is in the host's ban4 set.
// eventually reports whether every prefix is banned on lh within d.
func (lh *labHost) eventually(d time.Duration, prefixes ...string) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		out, err := exec.Command(lh.bin, "bans", "--json", "--socket", lh.sock, "--state", lh.state).Output()
		var bs []labBan
		if err != nil || json.Unmarshal(out, &bs) != nil {
			continue
		}
		have := map[string]bool{}
		for _, b := range bs {
			have[b.Prefix] = true
		}
		all := true
		for _, p := range prefixes {
			all = all && have[p]
		}
		if all {
			return true
		}
	}
	return false
}

func (lh *labHost) inKernel(t *testing.T, addr string) bool {
	out, err := lh.h.Run(context.Background(), "nft", "get", "element", "inet", "moat", "ban4", "{", addr, "}")
	return err == nil && strings.Contains(string(out), addr)
}

// addrs returns n addresses counted up from 198.18.<third>.1 (inside
// 198.18.0.0/15, 131,072 addresses), and their /32s.
func addrs(third, n int) (as, ps []string) {
	base := uint32(198)<<24 | uint32(18)<<16 | uint32(third)<<8 | 1
	for i := range n {
		v := base + uint32(i)
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
		as, ps = append(as, a), append(ps, a+"/32")
	}
	return
}

// natsAs connects to the fleet's NATS at url from inside h, as the member
// whose seed is at seed; errs receives the server's asynchronous errors.
func natsAs(t *testing.T, h *lab.Host, url, seed string, errs chan error) *nats.Conn {
	t.Helper()
	auth, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, auth, nats.SetCustomDialer(nsDialer{h}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatalf("connect to %s from %s: %v", url, h.Name(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

type nsDialer struct{ h *lab.Host }

func (d nsDialer) Dial(network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.h.Dial(ctx, network, addr)
}

// publishAs publishes a decision as origin over nc, signed with the key
// of seed, and reports the server's answer.
func publishAs(nc *nats.Conn, seed string, d Decision) error {
	kp, err := signingKey(Config{Credentials: seed, Host: "x", Hosts: map[string]string{"x": pubOf(seed)}})
	if err != nil {
		return err
	}
	if err := d.Sign("lab", kp); err != nil {
		return err
	}
	data, _ := d.Marshal()
	_, err = nc.Request(d.Subject("lab"), data, 3*time.Second)
	return err
}

func pubOf(seed string) string {
	p, _ := PublicKey(seed)
	return p
}

func expectViolation(t *testing.T, errs chan error, what string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("%s: error %v, want a permissions violation", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the server reported no permissions violation", what)
	}
}

// TestLabFleet: three hosts running moat run with the embedded NATS
// nodes clustered over their private link.
func TestLabFleet(t *testing.T) {
	_, hs, _ := newLab(t, false)
	a, b, c := hs["a"], hs["b"], hs["c"]
	for _, h := range []*labHost{a, b, c} {
		h.start()
	}
	for _, h := range []*labHost{a, b, c} {
		h.waitReady(t)
	}

	t.Run("brute force on A is banned on B and C", func(t *testing.T) {
		start := time.Now()
		a.fail(t, "198.18.0.1")
		a.waitBanned(t, 10*time.Second, "198.18.0.1/32")
		for _, h := range []*labHost{b, c} {
			bs := h.waitBanned(t, 10*time.Second, "198.18.0.1/32")
			if got := bs["198.18.0.1/32"]; got.Origin != "fleet:a" || got.Jail != "app" {
				t.Fatalf("host %s holds %+v, want jail app from fleet:a", h.name, got)
			}
			if !h.inKernel(t, "198.18.0.1") {
				t.Fatalf("host %s: 198.18.0.1 not in the kernel's ban set", h.name)
			}
		}
		t.Logf("one decision A→B,C: %s (bound 10s; latency is measured by BenchmarkPropagation)", time.Since(start).Round(time.Millisecond))
		// The operator's unban on A lifts it everywhere.
		if out, err := exec.Command(a.bin, "unban", "198.18.0.1", "--socket", a.sock).CombinedOutput(); err != nil {
			t.Fatalf("moat unban: %v\n%s", err, out)
		}
		for _, h := range []*labHost{b, c} {
			waitFor(t, 10*time.Second, h.name+" lifts the unbanned address", func() bool { _, ok := h.bans(t)["198.18.0.1/32"]; return !ok })
		}
		// The operator's moat ban is shared too ("manual" in share).
		if out, err := exec.Command(a.bin, "ban", "198.18.0.9", "--for", "10m", "--socket", a.sock).CombinedOutput(); err != nil {
			t.Fatalf("moat ban: %v\n%s", err, out)
		}
		if got := b.waitBanned(t, 10*time.Second, "198.18.0.9/32")["198.18.0.9/32"]; got.Origin != "fleet:a" {
			t.Fatalf("manual ban on B: %+v", got)
		}
		// 200 decisions: all arrive.
		as, ps := addrs(1, 200)
		start = time.Now()
		a.fail(t, as...)
		b.waitBanned(t, 30*time.Second, ps...)
		c.waitBanned(t, 30*time.Second, ps...)
		t.Logf("200 decisions A→B,C: %s", time.Since(start).Round(time.Millisecond))
	})

	t.Run("B refuses bans of its VPN address and admin source; forged origin refused", func(t *testing.T) {
		errs := make(chan error, 8)
		seedA := strings.TrimSuffix(strings.Split(readFile(t, a.cfg), "credentials: ")[1], "\n")
		seedA = strings.SplitN(seedA, "\n", 2)[0]
		nc := natsAs(t, a.h, "nats://10.77.0.1:4222", seedA, errs)
		for _, p := range []string{"10.77.0.2/32", labAdmin["b"] + "/32", "10.77.0.0/16", "0.0.0.0/0"} {
			if err := publishAs(nc, seedA, ban("a", p, time.Hour)); err != nil {
				t.Fatalf("A's own subject refused %s: %v", p, err)
			}
		}
		// C's admin source is another: C applies B's admin address...
		c.waitBanned(t, 10*time.Second, labAdmin["b"]+"/32")
		// ...and B, which has seen the same stream by now, does not.
		waitFor(t, 10*time.Second, "B consumed the decisions", func() bool {
			out, _ := exec.Command(b.bin, "fleet", "status", "--json", "--socket", b.sock).Output()
			var st Status
			return json.Unmarshal(out, &st) == nil && st.Lag == 0
		})
		bs := b.bans(t)
		for _, p := range []string{"10.77.0.2/32", labAdmin["b"] + "/32", "10.77.0.0/16", "0.0.0.0/0"} {
			if _, ok := bs[p]; ok {
				t.Fatalf("B applied a ban of %s, which it never bans", p)
			}
		}
		if !strings.Contains(b.proc.Output(), "fleet: decision refused") {
			t.Fatalf("B did not log the refusal:\n%s", b.output())
		}
		// A forges a decision under B's origin: NATS refuses it.
		forged := ban("b", "198.18.200.1/32", time.Hour)
		if err := publishAs(nc, seedA, forged); err == nil {
			t.Fatal("a publish under B's origin was stored")
		}
		expectViolation(t, errs, "forged origin")
		// Nor may A delete or purge the stream, or read through B's consumer.
		for _, subj := range []string{"$JS.API.STREAM.DELETE." + StreamName, "$JS.API.STREAM.PURGE." + StreamName, "$JS.API.CONSUMER.MSG.NEXT." + StreamName + "." + ConsumerName("b")} {
			if _, err := nc.Request(subj, []byte("{}"), time.Second); err == nil {
				t.Fatalf("A was answered on %s", subj)
			}
			expectViolation(t, errs, subj)
		}
		time.Sleep(time.Second)
		if _, ok := c.bans(t)["198.18.200.1/32"]; ok {
			t.Fatal("the forged decision reached C")
		}
	})

	t.Run("C down while A bans 1000: C catches up with their remaining times", func(t *testing.T) {
		c.proc.Stop()
		as, ps := addrs(10, 1000)
		a.fail(t, as...)
		abans := a.waitBanned(t, 30*time.Second, ps...)
		b.waitBanned(t, 30*time.Second, ps...)
		// C was down while all 1,000 were decided and stored: nothing
		// is gained by waiting longer. Expiry during the outage (some
		// decisions ending before C returns) is TestCatchUpAfterOutage's,
		// on a fake clock.
		c.start()
		start := time.Now()
		cbans := c.waitBanned(t, 60*time.Second, ps...)
		t.Logf("C caught up with 1000 decisions in %s after its restart", time.Since(start).Round(time.Millisecond))
		for _, p := range ps {
			if d := cbans[p].Expires.Sub(abans[p].Expires).Abs(); d > time.Second {
				t.Fatalf("%s expires %s on C, %s on A: remaining times differ", p, cbans[p].Expires, abans[p].Expires)
			}
		}
	})

	t.Run("partition, kill -9, heal: every host ends with the union and the unban", func(t *testing.T) {
		c.waitReady(t)
		a.h.MustRun(t, "ip", "link", "set", "wg0", "down")
		a.fail(t, "198.18.50.1")
		b.fail(t, "198.18.50.2")
		a.waitBanned(t, 10*time.Second, "198.18.50.1/32")
		c.waitBanned(t, 20*time.Second, "198.18.50.2/32")
		// The operator lifts A's manual ban, shared before the
		// partition: its tombstone waits in A's outbox.
		if out, err := exec.Command(a.bin, "unban", "198.18.0.9", "--socket", a.sock).CombinedOutput(); err != nil {
			t.Fatalf("moat unban: %v\n%s", err, out)
		}
		time.Sleep(2 * time.Second)
		if _, ok := b.bans(t)["198.18.50.1/32"]; ok {
			t.Fatal("A's decision crossed the partition")
		}
		// A says so: no quorum, its decision waiting in the outbox. A
		// stream leader may report quorum for a while after losing its
		// peers (the raft election timeout), so wait for it.
		var out []byte
		waitFor(t, 30*time.Second, "A's fleet status to show the partition (no quorum, a queued outbox)", func() bool {
			out, _ = exec.Command(a.bin, "fleet", "status", "--json", "--socket", a.sock).Output()
			var st Status
			err := json.Unmarshal(out, &st)
			return err == nil && (st.Stream == nil || !st.Stream.Quorum) && st.Outbox > 0
		})
		// kill -9: the outbox is only what its journal holds.
		if err := a.proc.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		a.proc.Wait()
		a.proc.Stop()
		if j := readFile(t, filepath.Join(a.state, "fleet", OutboxFile)); !strings.Contains(j, `"op":"unban"`) || !strings.Contains(j, "198.18.50.1/32") {
			t.Fatalf("A's outbox journal after kill -9 lacks the queued decisions:\n%s", j)
		}
		a.h.MustRun(t, "ip", "link", "set", "wg0", "up")
		a.start()
		for _, h := range []*labHost{b, c, a} {
			// A's node recovers its JetStream state after SIGKILL and
			// rejoins the cluster first: a generous bound, no speed claim.
			if !h.eventually(120*time.Second, "198.18.50.1/32", "198.18.50.2/32") {
				out, _ := exec.Command(h.bin, "fleet", "status", "--socket", h.sock).CombinedOutput()
				t.Fatalf("%s lacks the union: fleet status:\n%s\nlog:\n%s", h.name, out, h.output())
			}
		}
		for _, h := range []*labHost{b, c} {
			waitFor(t, 120*time.Second, h.name+" lifts the ban A lifted before it was killed", func() bool { _, ok := h.bans(t)["198.18.0.9/32"]; return !ok })
		}
	})
}

// TestLabFleetStandalone: the same hosts against one nats-server built
// from the module, configured with fleet.ServerConfig.
func TestLabFleetStandalone(t *testing.T) {
	_, hs, nsrv := newLab(t, true)
	a, b, c := hs["a"], hs["b"], hs["c"]
	for _, h := range []*labHost{a, b, c} {
		h.start()
	}
	for _, h := range []*labHost{a, b, c} {
		h.waitReady(t)
	}
	a.fail(t, "198.18.0.7")
	for _, h := range []*labHost{b, c} {
		if got := h.waitBanned(t, 10*time.Second, "198.18.0.7/32")["198.18.0.7/32"]; got.Origin != "fleet:a" {
			t.Fatalf("host %s: %+v", h.name, got)
		}
	}
	errs := make(chan error, 4)
	seed := strings.SplitN(strings.Split(readFile(t, a.cfg), "credentials: ")[1], "\n", 2)[0]
	nc := natsAs(t, nsrv, "nats://10.77.0.10:4222", seed, errs)
	if err := publishAs(nc, seed, ban("c", "198.18.200.2/32", time.Hour)); err == nil {
		t.Fatal("a publish under C's origin was stored")
	}
	expectViolation(t, errs, "forged origin")
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			var n int
			fmt.Sscan(f[1], &n)
			return n
		}
	}
	return -1
}

// waitCount waits until lh holds at least n bans (moat status's count:
// the list itself is large), polling every half second.
func (lh *labHost) waitCount(t *testing.T, d time.Duration, n int) time.Duration {
	t.Helper()
	start := time.Now()
	got := 0
	for time.Since(start) < d {
		out, _ := exec.Command(lh.bin, "status", "--json", "--socket", lh.sock).Output()
		var st struct {
			Bans int `json:"active_bans"`
		}
		if json.Unmarshal(out, &st) == nil {
			if got = st.Bans; got >= n {
				return time.Since(start)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("host %s: %d bans after %s, want %d\n%s", lh.name, got, d, n, lh.output())
	return 0
}

// TestLabFleetLoad is bench/fleet.sh's end-to-end half (skipped unless
// MOAT_FLEET_BENCH_N is set): with C down, A's jail bans N addresses;
// the time until B holds them all (decided, published, replicated,
// applied to B's kernel set and store), the time C takes to catch up
// once restarted, and each moat's resident memory with N fleet bans.
func TestLabFleetLoad(t *testing.T) {
	n := 0
	fmt.Sscan(os.Getenv("MOAT_FLEET_BENCH_N"), &n)
	if n <= 0 {
		t.Skip("a benchmark: set MOAT_FLEET_BENCH_N (bench/fleet.sh does)")
	}
	_, hs, _ := newLab(t, false)
	a, b, c := hs["a"], hs["b"], hs["c"]
	for _, h := range []*labHost{a, b, c} {
		h.start()
	}
	for _, h := range []*labHost{a, b, c} {
		h.waitReady(t)
	}
	c.proc.Stop()
	as, _ := addrs(0, n)
	start := time.Now()
	for i := 0; i < len(as); i += 5000 {
		a.fail(t, as[i:min(i+5000, len(as))]...)
	}
	b.waitCount(t, 10*time.Minute, n)
	el := time.Since(start)
	fmt.Printf("FLEET-BENCH e2e_decisions %d in %.2fs: %.0f decisions/s (A's jail to B's kernel and store)\n", n, el.Seconds(), float64(n)/el.Seconds())
	c.start()
	cu := c.waitCount(t, 10*time.Minute, n)
	fmt.Printf("FLEET-BENCH catchup %d decisions in %.2fs (from C's restart, including its cluster join)\n", n, cu.Seconds())
	time.Sleep(2 * time.Second)
	for _, h := range []*labHost{a, b, c} {
		fmt.Printf("FLEET-BENCH rss host %s: %d MiB with %d bans\n", h.name, rssKiB(h.proc.Pid())/1024, n)
	}
}
