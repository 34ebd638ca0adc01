package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/blocklist"
	"github.com/moat-sh/moat/internal/control"
	"github.com/moat-sh/moat/internal/fleet"
	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/schema"
)

// listHost is one host of an in-process fleet on loopback: its embedded
// node, client and the lists sharing of the daemon.
type listHost struct {
	cfg    fleet.Config
	node   *fleet.Node
	client *fleet.Client
	lists  *fleetLists
	m      atomic.Pointer[blocklist.Manager]
	cancel context.CancelFunc
	done   chan struct{}
}

func loopbackPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startListFleet starts one clustered host per name, each trusting h*.
// It needs root: the credential files must be root's.
func startListFleet(t *testing.T, names ...string) []*listHost {
	lab.RequireRoot(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "route.secret")
	if err := fleet.NewSecret(secret); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	cports := make([]int, len(names))
	for i := range names {
		cports[i] = loopbackPort(t)
	}
	var cfgs []fleet.Config
	for i, name := range names {
		seed := filepath.Join(dir, name+".nkey")
		pub, err := fleet.Keygen(seed)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = pub
		cl := &fleet.Cluster{Listen: fmt.Sprintf("127.0.0.1:%d", cports[i]), Secret: secret}
		for j := range names {
			if j != i {
				cl.Routes = append(cl.Routes, fmt.Sprintf("nats://127.0.0.1:%d", cports[j]))
			}
		}
		cfgs = append(cfgs, fleet.Config{Name: "test", Host: name, Credentials: seed, Share: []string{"sshd"}, Trust: []string{"h*"},
			NATS: fleet.NATS{Embedded: &fleet.Embedded{Listen: fmt.Sprintf("127.0.0.1:%d", loopbackPort(t)), Cluster: cl}}})
	}
	log := slog.New(slog.DiscardHandler)
	var hosts []*listHost
	for _, c := range cfgs {
		c.Hosts = keys
		if err := c.Validate(nil); err != nil {
			t.Fatal(err)
		}
		node, err := fleet.StartNode(c, fleet.NodeOptions{Dir: filepath.Join(dir, c.Host), Log: log})
		if err != nil {
			t.Fatal(err)
		}
		h := &listHost{cfg: c, node: node}
		h.client, err = fleet.Dial(c, fleet.ClientOptions{Node: node, Guard: fleet.NewGuard(c, nil), Log: log,
			Apply: func(context.Context, []fleet.Decision) {}})
		if err != nil {
			t.Fatal(err)
		}
		h.lists = newFleetLists(c, h.client, log, h.m.Load)
		h.lists.openWait = 30 * time.Second
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel, h.done = cancel, make(chan struct{})
		go func() {
			defer close(h.done)
			go h.lists.run(ctx)
			h.client.Run(ctx)
		}()
		hosts = append(hosts, h)
	}
	t.Cleanup(func() {
		for _, h := range hosts {
			h.cancel()
			<-h.done
			h.client.Close()
			h.node.Shutdown()
			h.node.WaitForShutdown()
		}
	})
	return hosts
}

// manager is host h's blocklist manager for list drop at the test
// server, wired to the fleet as startBlocklists wires it.
func (h *listHost) manager(t *testing.T, srv *httptest.Server, sink blocklist.Sink) *blocklist.Manager {
	src := blocklist.Source{Name: "drop", URL: srv.URL + "/drop.txt", Refresh: schema.Duration(time.Hour)}
	m := blocklist.New([]blocklist.Source{src}, blocklist.Options{StateDir: t.TempDir(), Sink: sink, Log: slog.New(slog.DiscardHandler),
		Feed: func(s blocklist.Source) blocklist.Feed {
			return &blocklist.HTTPFeed{URL: s.URL, Client: srv.Client(), Timeout: 10 * time.Second}
		},
		Shared: h.lists.shared, Published: h.lists.published})
	h.m.Store(m)
	return m
}

func listFrom(m *blocklist.Manager) blocklist.ListStatus { return m.Status().Lists[0] }

// TestFleetSharesBlocklists: the list's origin is contacted once for the
// fleet; the other host loads the same entries from the bucket (watched,
// and again when due to fetch); an untrusted member's copy, a malformed
// copy and a copy of a list not configured here are refused with nothing
// applied; with the fleet down a host fetches itself.
func TestFleetSharesBlocklists(t *testing.T) {
	const body = "; test DROP\n192.0.2.0/24 ; SBL1\n198.51.100.0/24\n2001:db8::/32\n"
	var requests atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write([]byte(body))
	}))
	defer srv.Close()

	hosts := startListFleet(t, "h0", "h1", "x2") // x2 is a member h0 and h1 do not trust
	a, b, x := hosts[0], hosts[1], hosts[2]
	for _, h := range hosts {
		waitUntil(t, 40*time.Second, h.cfg.Host+"'s lists bucket", func() bool { return h.lists.get() != nil })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	sinkA, sinkB := &fakeBlockSink{}, &fakeBlockSink{}
	ma, mb := a.manager(t, srv, sinkA), b.manager(t, srv, sinkB)

	// A fetches from the origin and shares the copy.
	if err := ma.Refresh(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	want, _ := sinkA.get()
	if requests.Load() != 1 || !strings.Contains(want, "192.0.2.0/24") || listFrom(ma).From != srv.URL+"/drop.txt" {
		t.Fatalf("A's fetch: %d requests, loaded %s, from %q", requests.Load(), want, listFrom(ma).From)
	}
	// B takes it from the bucket (its watch), without contacting the
	// origin.
	waitUntil(t, 20*time.Second, "B loading A's copy", func() bool { got, _ := sinkB.get(); return got == want })
	if l := listFrom(mb); l.From != "fleet:h0" || l.Entries != 3 || requests.Load() != 1 {
		t.Fatalf("B: %+v, %d requests", l, requests.Load())
	}
	// B due to fetch (here a fresh manager: a restart) takes the shared
	// copy instead.
	sinkB2 := &fakeBlockSink{}
	mb2 := b.manager(t, srv, sinkB2)
	if err := mb2.Refresh(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	if got, _ := sinkB2.get(); got != want || requests.Load() != 1 || listFrom(mb2).From != "fleet:h0" {
		t.Fatalf("B's refresh: loaded %s, %d requests, from %q", got, requests.Load(), listFrom(mb2).From)
	}
	_, loadsB := sinkB2.get()
	var text bytes.Buffer
	st := mb2.Status()
	writeBlocklists(&text, &st, time.Now())
	if !strings.Contains(text.String(), "from fleet:h0") {
		t.Errorf("moat status does not say where the copy came from:\n%s", text.String())
	}

	// An untrusted member's copy, newer: neither watched in nor taken
	// when due.
	xl := x.lists.get()
	if err := xl.Publish(ctx, "drop", []byte("0.0.0.0/1\n128.0.0.0/1\n")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "B refusing x2's copy", func() bool { return b.lists.refused.Load() >= 1 })
	if c, ok := b.lists.shared(ctx, "drop"); !ok || c.From != "fleet:h0" {
		t.Errorf("B's shared copy after x2 published: %+v %v", c.From, ok)
	}
	// A list not configured here.
	al := a.lists.get()
	if err := al.Publish(ctx, "other", []byte("0.0.0.0/0\n")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "B refusing a list it does not have", func() bool { return b.lists.refused.Load() >= 2 })
	// A malformed copy from a trusted member: refused whole.
	if err := al.Publish(ctx, "drop", []byte("203.0.113.0/24\nnot-a-network\n")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "B refusing the malformed copy", func() bool { return b.lists.refused.Load() >= 3 })
	if got, _ := sinkB.get(); got != want {
		t.Errorf("B after the refused updates: %s, want %s", got, want)
	}
	if got, n := sinkB2.get(); got != want || n != loadsB {
		t.Errorf("B (restarted) after the refused updates: %s (%d loads), want %s", got, n, want)
	}
	if l := listFrom(mb2); !strings.Contains(l.LastError, "line 2") || l.From != "fleet:h0" { // the manager running on B
		t.Errorf("B's status after the malformed copy: %+v", l)
	}
	// The newest trusted copy is the malformed one: B, due, fetches
	// itself rather than take it.
	if err := mb2.Refresh(ctx, "drop"); err != nil || requests.Load() != 2 {
		t.Errorf("B's refresh past a malformed shared copy: %v, %d requests", err, requests.Load())
	}

	// The fleet down: B fetches itself.
	for _, h := range hosts {
		h.node.Shutdown()
	}
	for _, h := range hosts {
		h.node.WaitForShutdown()
	}
	waitUntil(t, 10*time.Second, "B seeing the fleet down", func() bool { return b.lists.get() == nil })
	sinkB3 := &fakeBlockSink{}
	mb3 := b.manager(t, srv, sinkB3)
	if err := mb3.Refresh(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	if got, _ := sinkB3.get(); got != want || requests.Load() != 3 || listFrom(mb3).From != srv.URL+"/drop.txt" {
		t.Errorf("fleet down: loaded %s, %d requests, from %q", got, requests.Load(), listFrom(mb3).From)
	}
}

// TestRunTakesFleetBlocklist: moat run in a fleet loads a URL list that
// another member published, although the list's origin is unreachable,
// and moat status says it came from that member.
func TestRunTakesFleetBlocklist(t *testing.T) {
	lab.RequireRoot(t) // credentials and the control socket are root's
	dir := t.TempDir()
	seed0, seed1 := filepath.Join(dir, "h0.nkey"), filepath.Join(dir, "h1.nkey")
	pub0, err := fleet.Keygen(seed0)
	if err != nil {
		t.Fatal(err)
	}
	pub1, err := fleet.Keygen(seed1)
	if err != nil {
		t.Fatal(err)
	}
	port := loopbackPort(t)
	authLog := filepath.Join(dir, "auth.log")
	os.WriteFile(authLog, nil, 0o600)
	cfgPath := filepath.Join(dir, "moat.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`guard:
  jails:
    sshd:
      source: file
      paths: [%s]
  blocklists:
    - name: drop
      url: https://127.0.0.1:1/drop.txt
fleet:
  name: test
  host: h0
  nats:
    embedded:
      listen: 127.0.0.1:%d
  credentials: %s
  hosts: {h0: %s, h1: %s}
  share: [sshd]
  trust: [h*]
`, authLog, port, seed0, pub0, pub1)), 0o600)
	sock := filepath.Join(dir, "moat.sock")
	sink := &fakeBlockSink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: cfgPath, Explicit: true, Socket: sock, StateDir: filepath.Join(dir, "state"),
			Log: slog.New(slog.DiscardHandler), Sets: &recordingSets{elems: map[netip.Prefix]bool{}},
			CheckEvery: time.Hour, AuditEvery: time.Hour, blockSink: sink})
	}()
	defer func() { cancel(); <-done }()
	status := func() Status {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		var st Status
		if control.Call(cctx, sock, control.CmdStatus, nil, &st) != nil {
			return Status{}
		}
		return st
	}
	// The origin is unreachable: moat run's own fetch fails.
	waitUntil(t, 40*time.Second, "the failed fetch", func() bool {
		st := status()
		return st.Blocklists != nil && st.Blocklists.Lists[0].LastError != ""
	})

	// Another member publishes the list.
	c1 := fleet.Config{Name: "test", Host: "h1", Credentials: seed1, Trust: []string{"h*"},
		NATS: fleet.NATS{URL: fmt.Sprintf("nats://127.0.0.1:%d", port)}, Hosts: map[string]string{"h0": pub0, "h1": pub1}}
	cl, err := fleet.Dial(c1, fleet.ClientOptions{Guard: fleet.NewGuard(c1, nil), Log: slog.New(slog.DiscardHandler),
		Apply: func(context.Context, []fleet.Decision) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pcancel()
	var lists *fleet.Lists
	waitUntil(t, 30*time.Second, "the lists bucket", func() bool {
		lists, err = cl.Lists(pctx)
		return err == nil
	})
	if err := lists.Publish(pctx, "drop", []byte("198.51.100.0/24\n2001:db8::/32\n")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the fleet's copy loaded", func() bool {
		got, _ := sink.get()
		return got == "[198.51.100.0/24 2001:db8::/32]"
	})
	st := status()
	if l := st.Blocklists.Lists[0]; l.From != "fleet:h1" || l.Entries != 2 {
		t.Errorf("status: %+v", l)
	}
	var text bytes.Buffer
	writeBlocklists(&text, st.Blocklists, time.Now())
	if !strings.Contains(text.String(), "from fleet:h1") {
		t.Errorf("status text:\n%s", text.String())
	}
}
