package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/moat-sh/moat/internal/lab"
)

// member is one host of an in-process test fleet on loopback.
type member struct {
	cfg    Config
	node   *Node
	client *Client
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	applied map[netip.Prefix]Decision
	refused []error
	// notify, when set, receives each applied ban's prefix (latency).
	notify  chan netip.Prefix
	metrics *Metrics
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// testFleet writes n members' configs (keys, the route secret) on
// loopback; it needs root, since the credential files must be root's.
func testFleet(t testing.TB, n int) []Config {
	lab.RequireRoot(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "route.secret")
	if err := NewSecret(secret); err != nil {
		t.Fatal(err)
	}
	hosts := map[string]string{}
	var cfgs []Config
	cports := make([]int, n)
	for i := range n {
		cports[i] = freePort(t)
	}
	for i := range n {
		name := fmt.Sprintf("h%d", i)
		seed := filepath.Join(dir, name+".nkey")
		pub, err := Keygen(seed)
		if err != nil {
			t.Fatal(err)
		}
		hosts[name] = pub
		c := Config{Name: "test", Host: name, Credentials: seed, Share: []string{"sshd", "manual"}, Trust: []string{"h*"},
			NATS: NATS{Embedded: &Embedded{Listen: fmt.Sprintf("127.0.0.1:%d", freePort(t))}}}
		if n > 1 {
			cl := &Cluster{Listen: fmt.Sprintf("127.0.0.1:%d", cports[i]), Secret: secret}
			for j := range n {
				if j != i {
					cl.Routes = append(cl.Routes, fmt.Sprintf("nats://127.0.0.1:%d", cports[j]))
				}
			}
			c.NATS.Embedded.Cluster = cl
		}
		cfgs = append(cfgs, c)
	}
	for i := range cfgs {
		cfgs[i].Hosts = hosts
		if err := cfgs[i].Validate(nil); err != nil {
			t.Fatalf("config %d: %v", i, err)
		}
	}
	return cfgs
}

func startMember(t testing.TB, c Config, dir string, never []netip.Prefix) *member {
	return startMemberOpts(t, c, dir, memberOpts{never: never})
}

// memberOpts vary a test member.
type memberOpts struct {
	never []netip.Prefix
	// outbox is the outbox journal's dir ("": memory only).
	outbox string
	// applied carries the applied bans over a restart (nil: new).
	applied map[netip.Prefix]Decision
	now     func() time.Time
}

func startMemberOpts(t testing.TB, c Config, dir string, o memberOpts) *member {
	// A restarted member listens on its ports again: on a busy machine
	// another socket may hold one for a moment. A few tries.
	var node *Node
	var err error
	for try := 0; try < 5; try++ {
		if node, err = StartNode(c, NodeOptions{Dir: dir}); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dialMember(t, c, node, o)
}

// startURLMember is a member connecting to c.NATS.URL (no node).
func startURLMember(t testing.TB, c Config, o memberOpts) *member {
	return dialMember(t, c, nil, o)
}

func dialMember(t testing.TB, c Config, node *Node, o memberOpts) *member {
	if o.applied == nil {
		o.applied = map[netip.Prefix]Decision{}
	}
	m := &member{cfg: c, node: node, applied: o.applied, metrics: NewMetrics(nil)}
	var err error
	m.client, err = Dial(c, ClientOptions{Node: node, Guard: NewGuard(c, o.never), Metrics: m.metrics,
		OutboxDir: o.outbox, Now: o.now,
		Apply: func(_ context.Context, ds []Decision) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, d := range ds {
				if d.Op == OpBan {
					m.applied[d.Prefix] = d
					if m.notify != nil {
						m.notify <- d.Prefix
					}
				} else {
					delete(m.applied, d.Prefix)
				}
			}
		},
		Refused: func(_ Decision, err error) { m.mu.Lock(); m.refused = append(m.refused, err); m.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	go func() { defer close(m.done); m.client.Run(ctx) }()
	return m
}

// kill stops m as kill -9 would leave it: no outbox sync or close, the
// journal as the last write() left it.
func (m *member) kill() {
	m.cancel()
	<-m.done
	m.client.nc.Close()
	if m.node != nil {
		m.node.Shutdown()
		m.node.WaitForShutdown()
	}
}

func (m *member) stop() {
	m.cancel()
	<-m.done
	m.client.Close()
	if m.node != nil {
		m.node.Shutdown()
		m.node.WaitForShutdown()
	}
}

func (m *member) has(p netip.Prefix) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.applied[p]
	return ok
}

func (m *member) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.applied)
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}

func ban(origin, addr string, d time.Duration) Decision {
	now := time.Now()
	return Decision{Op: OpBan, Prefix: netip.MustParsePrefix(addr), Jail: "sshd", Reason: "test", Origin: origin, Created: now, Expires: now.Add(d)}
}

// TestClusterPropagates: three embedded nodes clustered on loopback; a
// ban published by one is applied by the two others, an unban lifts it,
// and a ban naming a never-ban prefix of one member is refused there.
func TestClusterPropagates(t *testing.T) {
	cfgs := testFleet(t, 3)
	dir := t.TempDir()
	var ms []*member
	never := netip.MustParsePrefix("10.99.0.0/24")
	for i, c := range cfgs {
		var nv []netip.Prefix
		if i == 1 {
			nv = []netip.Prefix{never}
		}
		ms = append(ms, startMember(t, c, filepath.Join(dir, c.Host), nv))
	}
	defer func() {
		for _, m := range ms {
			m.stop()
		}
	}()
	for _, m := range ms {
		waitFor(t, 30*time.Second, m.cfg.Host+" ready", m.client.Ready)
	}
	d := ban("h0", "203.0.113.7/32", time.Hour)
	ms[0].client.Publish(d)
	for _, m := range ms[1:] {
		waitFor(t, 10*time.Second, m.cfg.Host+" applies the ban", func() bool { return m.has(d.Prefix) })
	}
	if ms[0].has(d.Prefix) {
		t.Fatal("the origin applied its own decision back")
	}
	u := d
	u.Op = OpUnban
	ms[0].client.Publish(u)
	for _, m := range ms[1:] {
		waitFor(t, 10*time.Second, m.cfg.Host+" applies the unban", func() bool { return !m.has(d.Prefix) })
	}
	bad := ban("h0", "10.99.0.5/32", time.Hour)
	ms[0].client.Publish(bad)
	waitFor(t, 10*time.Second, "h2 applies the ban", func() bool { return ms[2].has(bad.Prefix) })
	waitFor(t, 10*time.Second, "h1 refuses it", func() bool {
		ms[1].mu.Lock()
		defer ms[1].mu.Unlock()
		return len(ms[1].refused) > 0
	})
	if ms[1].has(bad.Prefix) {
		t.Fatal("h1 applied a ban of its never-ban range")
	}
	st := ms[1].client.Status(context.Background(), ms[1].node)
	if st.Stream == nil || !st.Stream.Quorum || st.Stream.Replicas != 3 || len(st.Consumers) != 3 {
		t.Fatalf("status: %+v (stream %+v)", st, st.Stream)
	}
}

// TestForgedOriginRefused: host h0's NATS user publishes a decision under
// h1's origin, straight on the subject: the server refuses it (a
// permissions violation), and the stream never stores it.
func TestForgedOriginRefused(t *testing.T) {
	cfgs := testFleet(t, 1)
	cfgs[0].Hosts["h1"] = mustPub(t, cfgs[0])
	m := startMember(t, cfgs[0], t.TempDir(), nil)
	defer m.stop()
	waitFor(t, 30*time.Second, "ready", m.client.Ready)
	errs := make(chan error, 4)
	auth, err := credentialsOption(cfgs[0].Credentials)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(m.node.ClientURL(), auth, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	forged := ban("h1", "198.51.100.9/32", time.Hour)
	forged.Sign("test", m.client.key)
	data, _ := forged.Marshal()
	if _, err := nc.Request(forged.Subject("test"), data, 2*time.Second); err == nil {
		t.Fatal("a publish under another origin was acknowledged")
	}
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("error %v, want a permissions violation", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not report a permissions violation")
	}
	// The stream may not be deleted or purged by a host either.
	if _, err := nc.Request("$JS.API.STREAM.DELETE."+StreamName, nil, time.Second); err == nil {
		t.Fatal("a host deleted the stream")
	}
	st := m.client.Status(context.Background(), m.node)
	if st.Stream == nil || st.Stream.Messages != 0 {
		t.Fatalf("stream after forged publish: %+v", st.Stream)
	}
}

func mustPub(t *testing.T, c Config) string {
	p := filepath.Join(t.TempDir(), "other.nkey")
	pub, err := Keygen(p)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	return pub
}
