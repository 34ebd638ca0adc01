package fleet

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testKey is a fixed user key pair (seeded from i, not the clock).
func testKey(t testing.TB, i byte) nkeys.KeyPair {
	seed := sha256.Sum256([]byte{'k', i})
	kp, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func testPub(t testing.TB, i byte) string {
	p, err := testKey(t, i).PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sigOf is key 0's signature of d.
func sigOf(t testing.TB, d Decision) []byte {
	sig, _ := testKey(t, 0).Sign(d.SignedBytes("f"))
	return sig
}

// wire signs d with kp (as signer claims, if set), encodes and parses it
// as a receiver does.
func wire(t *testing.T, d Decision, kp nkeys.KeyPair) (Decision, error) {
	t.Helper()
	if err := d.Sign("f", kp); err != nil {
		t.Fatal(err)
	}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return ParseDecision("f", d.Subject("f"), b)
}

// TestVerifyRefuses: every way a decision can claim to be what it is
// not, each refused for its own reason.
func TestVerifyRefuses(t *testing.T) {
	hosts := map[string]string{"a": testPub(t, 0), "b": testPub(t, 1)}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	good := Decision{Op: OpBan, Prefix: netip.MustParsePrefix("198.51.100.0/24"), Jail: "sshd", Reason: "5 failures",
		Origin: "a", Created: now.Add(-time.Minute), Expires: now.Add(time.Hour), Failures: 5}
	type tc struct {
		name   string
		mk     func() (Decision, error)
		reason string
	}
	signedThen := func(f func(*Decision)) func() (Decision, error) {
		return func() (Decision, error) {
			d, err := wire(t, good, testKey(t, 0))
			if err != nil {
				return d, err
			}
			f(&d)
			return d, nil
		}
	}
	cases := []tc{
		{"genuine", func() (Decision, error) { return wire(t, good, testKey(t, 0)) }, ""},
		{"signed by b under a's origin", func() (Decision, error) { return wire(t, good, testKey(t, 1)) }, ReasonSignerMismatch},
		{"signed by a key not in hosts", func() (Decision, error) { return wire(t, good, testKey(t, 9)) }, ReasonSignerMismatch},
		{"a's key claimed, b's signature", signedThen(func(d *Decision) {
			d.Sig, _ = testKey(t, 1).Sign(d.SignedBytes("f"))
		}), ReasonBadSignature},
		{"unknown origin", func() (Decision, error) {
			d := good
			d.Origin = "z"
			return wire(t, d, testKey(t, 0))
		}, ReasonUnknownOrigin},
		{"another fleet's signature", signedThen(func(d *Decision) { d.Sig, _ = testKey(t, 0).Sign(d.SignedBytes("g")) }), ReasonBadSignature},
		{"expired", func() (Decision, error) {
			d := good
			d.Created, d.Expires = now.Add(-2*time.Hour), now.Add(-time.Hour)
			return wire(t, d, testKey(t, 0))
		}, ReasonExpired},
	}
	for _, f := range []struct {
		name string
		f    func(*Decision)
	}{
		{"op", func(d *Decision) { d.Op = OpUnban }},
		{"jail", func(d *Decision) { d.Jail = "manual" }},
		{"reason", func(d *Decision) { d.Reason = "x" }},
		{"created", func(d *Decision) { d.Created = d.Created.Add(time.Nanosecond) }},
		{"expires", func(d *Decision) { d.Expires = d.Expires.Add(time.Hour) }},
		{"permanent", func(d *Decision) { d.Expires = time.Time{} }},
		{"failures", func(d *Decision) { d.Failures++ }},
		{"prefix", func(d *Decision) { d.Prefix = netip.MustParsePrefix("198.51.0.0/16") }},
	} {
		cases = append(cases, tc{"tampered " + f.name, signedThen(f.f), ReasonBadSignature})
	}
	for _, c := range cases {
		v := newVerifier(Config{Name: "f", Hosts: hosts})
		d, err := c.mk()
		if err == nil {
			err = v.verify(d, now)
		}
		if got := verifyReason(err); got != c.reason || (c.reason == "") != (err == nil) {
			t.Errorf("%s: err %v (reason %q), want reason %q", c.name, err, got, c.reason)
		}
	}
	// Unsigned on the wire: its own reason.
	b, _ := good.Marshal()
	if _, err := ParseDecision("f", good.Subject("f"), b); verifyReason(err) != ReasonUnsigned {
		t.Fatalf("unsigned: %v", err)
	}
}

// TestVerifyStale: a replay of a ban after its tombstone, or of a
// shorter ban after its extension, is refused; the same decision again
// (a redelivery) is not.
func TestVerifyStale(t *testing.T) {
	v := newVerifier(Config{Name: "f", Hosts: map[string]string{"a": testPub(t, 0)}})
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	b1 := Decision{Op: OpBan, Prefix: netip.MustParsePrefix("203.0.113.9/32"), Origin: "a", Created: now, Expires: now.Add(time.Hour)}
	ext := b1
	ext.Expires = now.Add(2 * time.Hour)
	un := ext
	un.Op = OpUnban
	again := b1
	again.Created, again.Expires = now.Add(time.Minute), now.Add(time.Hour)
	step := func(d Decision, reason string) {
		t.Helper()
		s, err := wire(t, d, testKey(t, 0))
		if err == nil {
			err = v.verify(s, now.Add(time.Second))
		}
		if got := verifyReason(err); got != reason || (reason == "") != (err == nil) {
			t.Fatalf("%s %s exp %s: %v, want %q", d.Op, d.Prefix, d.Expires, err, reason)
		}
	}
	step(b1, "")
	step(b1, "") // redelivered
	step(ext, "")
	step(b1, ReasonStale) // the shorter ban, replayed
	step(un, "")
	step(ext, ReasonStale) // the lifted ban, replayed
	step(b1, ReasonStale)
	step(again, "") // a new ban after the unban
	step(un, ReasonStale)
}

// TestNormalMilliseconds: a ban as an event reports it (nanoseconds)
// and as the ban store returns it (milliseconds) are the same decision,
// so its tombstone, made from the store's copy, is newer, not older.
func TestNormalMilliseconds(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 123456789, time.UTC)
	ev := Decision{Op: OpBan, Prefix: netip.MustParsePrefix("203.0.113.9/32"), Created: now, Expires: now.Add(time.Hour)}
	stored := ev
	stored.Created, stored.Expires = time.UnixMilli(now.UnixMilli()), time.UnixMilli(now.Add(time.Hour).UnixMilli())
	a, b := ev.normal("h0"), stored.normal("h0")
	if a.ID() != b.ID() || a.Before(b) || b.Before(a) {
		t.Fatalf("event %+v and store %+v differ", a, b)
	}
	tomb := stored
	tomb.Op = OpUnban
	if !a.Before(tomb.normal("h0")) {
		t.Fatal("the tombstone is older than its ban")
	}
}

// TestBefore: the decisions' order is total for one origin and prefix,
// and a tombstone follows its ban whatever the expiry.
func TestBefore(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	p := netip.MustParsePrefix("203.0.113.9/32")
	seq := []Decision{
		{Op: OpBan, Prefix: p, Created: now, Expires: now.Add(time.Hour)},
		{Op: OpBan, Prefix: p, Created: now, Expires: now.Add(2 * time.Hour)},
		{Op: OpBan, Prefix: p, Created: now},
		{Op: OpUnban, Prefix: p, Created: now, Expires: now.Add(time.Hour)},
		{Op: OpUnban, Prefix: p, Created: now},
		{Op: OpBan, Prefix: p, Created: now.Add(time.Second), Expires: now.Add(time.Minute)},
	}
	for i := range seq {
		for j := range seq {
			if got := seq[i].Before(seq[j]); got != (i < j) {
				t.Errorf("%d before %d: %v", i, j, got)
			}
		}
	}
}

// TestRogueClientForgesDecisions: a NATS deployment that does not
// enforce per-origin subjects (an external NATS, or a compromised route
// peer injecting messages): h1, with valid NATS credentials, publishes
// on h0's subject decisions claiming to be h0's: unsigned, signed with
// its own key, signed with a key it made up and claiming h0's, a
// genuine h0 decision with its expiry stretched, and a replay of h0's
// ban after h0 lifted it. h2 applies none of them, counts each reason,
// and applies h0's genuine decisions.
func TestRogueClientForgesDecisions(t *testing.T) {
	cfgs := testFleet(t, 3)
	// One permissive NATS server: the members' keys, no subject
	// permissions (what a route peer sees).
	opts := &server.Options{Host: "127.0.0.1", Port: freePort(t), JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	for _, k := range cfgs[0].Hosts {
		opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: k})
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		t.Fatal("nats server not ready")
	}
	defer srv.Shutdown()
	for i := range cfgs {
		cfgs[i].NATS = NATS{URL: srv.ClientURL()}
	}
	h0 := startURLMember(t, cfgs[0], memberOpts{})
	defer h0.stop()
	h2 := startURLMember(t, cfgs[2], memberOpts{})
	defer h2.stop()
	waitFor(t, 30*time.Second, "ready", func() bool { return h0.client.Ready() && h2.client.Ready() })

	genuine := ban("h0", "203.0.113.1/32", time.Hour)
	h0.client.Publish(genuine)
	waitFor(t, 10*time.Second, "h2 applies h0's ban", func() bool { return h2.has(genuine.Prefix) })
	lifted := ban("h0", "203.0.113.2/32", time.Hour)
	h0.client.Publish(lifted)
	waitFor(t, 10*time.Second, "h2 applies h0's second ban", func() bool { return h2.has(lifted.Prefix) })
	tomb := lifted
	tomb.Op = OpUnban
	h0.client.Publish(tomb)
	waitFor(t, 10*time.Second, "h2 lifts it", func() bool { return !h2.has(lifted.Prefix) })

	// h1, the rogue, with its own valid NATS credentials.
	auth, err := credentialsOption(cfgs[1].Credentials)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL(), auth)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	h1key, err := signingKey(cfgs[1])
	if err != nil {
		t.Fatal(err)
	}
	h0pub := cfgs[0].Hosts["h0"]
	pub := func(d Decision) {
		t.Helper()
		b, err := d.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Request(d.Subject("test"), b, 5*time.Second); err != nil {
			t.Fatalf("the permissive server refused the rogue: %v", err)
		}
	}
	var forged []netip.Prefix
	unsigned := ban("h0", "198.51.100.1/32", time.Hour)
	pub(unsigned)
	ownKey := ban("h0", "198.51.100.2/32", time.Hour)
	ownKey.Sign("test", h1key)
	pub(ownKey)
	claimed := ban("h0", "198.51.100.3/32", time.Hour)
	claimed.Sign("test", testKey(t, 7))
	claimed.Signer = h0pub
	pub(claimed)
	stretched := genuine
	stretched.Prefix = netip.MustParsePrefix("198.51.100.4/32")
	stretched.Sign("test", h0.client.key) // a genuine signature of another decision...
	stretched.Prefix = netip.MustParsePrefix("198.51.100.5/32")
	pub(stretched) // ...moved to another prefix
	replay := lifted.normal("h0")
	replay.Sign("test", h0.client.key) // the very message h0 published (ed25519 is deterministic)
	pub(replay)
	forged = append(forged, unsigned.Prefix, ownKey.Prefix, claimed.Prefix, stretched.Prefix)

	last := ban("h0", "203.0.113.3/32", time.Hour)
	h0.client.Publish(last)
	waitFor(t, 10*time.Second, "h2 applies h0's ban after the forgeries", func() bool { return h2.has(last.Prefix) })
	for _, p := range append(forged, lifted.Prefix) {
		if h2.has(p) {
			t.Errorf("h2 applied the forged decision for %s", p)
		}
	}
	want := map[string]float64{ReasonUnsigned: 1, ReasonSignerMismatch: 1, ReasonBadSignature: 2, ReasonStale: 1}
	for r, n := range want {
		if got := counterValue(t, h2.metrics.Unverified.WithLabelValues(r)); got != n {
			t.Errorf("unverified{reason=%q} = %v, want %v", r, got, n)
		}
	}
	h2.mu.Lock()
	defer h2.mu.Unlock()
	if len(h2.refused) != 5 {
		t.Errorf("h2 refused %d decisions, want 5: %v", len(h2.refused), h2.refused)
	}
	for _, err := range h2.refused {
		if !strings.Contains(err.Error(), "h0") || verifyReason(err) == "" {
			t.Errorf("refusal without origin or reason: %v", err)
		}
	}
}

func counterValue(t testing.TB, c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// TestSignedLists: a list in the bucket counts only as its origin's
// when that origin's key signed these bytes, under this name, for this
// fleet, at the time it claims.
func TestSignedLists(t *testing.T) {
	v := newVerifier(Config{Name: "f", Hosts: map[string]string{"a": testPub(t, 0), "b": testPub(t, 1)}})
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	body := []byte("192.0.2.0/24 ; SBL1\n")
	sealed, err := sealList("f", "a", "drop", at, testKey(t, 0), body)
	if err != nil {
		t.Fatal(err)
	}
	data, got, err := v.openList("a", "drop", sealed)
	if err != nil || string(data) != string(body) || !got.Equal(at) {
		t.Fatalf("round trip: %q %s %v", data, got, err)
	}
	bySigner := func(i byte, fleet, origin, name string, when time.Time) []byte {
		b, _ := sealList(fleet, origin, name, when, testKey(t, i), body)
		return b
	}
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-3] = '9' // 192.0.2.0/29
	newer := []byte(strings.Replace(string(sealed), fmt.Sprint(at.UnixNano()), fmt.Sprint(at.Add(time.Hour).UnixNano()), 1))
	for name, c := range map[string]struct {
		origin, list string
		value        []byte
		reason       string
	}{
		"unsigned":               {"a", "drop", body, ReasonUnsigned},
		"bytes changed":          {"a", "drop", tampered, ReasonBadSignature},
		"time moved on":          {"a", "drop", newer, ReasonBadSignature},
		"b's key under a's name": {"a", "drop", bySigner(1, "f", "a", "drop", at), ReasonSignerMismatch},
		"stored under b's name":  {"b", "drop", sealed, ReasonBadSignature},
		"another list's copy":    {"a", "edrop", sealed, ReasonBadSignature},
		"another fleet's copy":   {"a", "drop", bySigner(0, "g", "a", "drop", at), ReasonBadSignature},
		"unknown origin":         {"z", "drop", bySigner(0, "f", "z", "drop", at), ReasonUnknownOrigin},
	} {
		if _, _, err := v.openList(c.origin, c.list, c.value); verifyReason(err) != c.reason {
			t.Errorf("%s: %v, want reason %s", name, err, c.reason)
		}
	}
}

// FuzzOpenList: whatever a bucket value holds, openList never panics,
// and what it accepts was signed by the origin's key over those bytes.
func FuzzOpenList(f *testing.F) {
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	sealed, _ := sealList("f", "a", "drop", at, testKey(f, 0), []byte("192.0.2.0/24\n"))
	f.Add("a", "drop", sealed)
	f.Add("a", "drop", []byte("# moat-signed-list 1 a drop 1 U x\n"))
	f.Add("a", "drop", []byte("192.0.2.0/24\n"))
	v := newVerifier(Config{Name: "f", Hosts: map[string]string{"a": testPub(f, 0)}})
	f.Fuzz(func(t *testing.T, origin, name string, value []byte) {
		data, when, err := v.openList(origin, name, value)
		if err != nil {
			return
		}
		// Accepted: the bytes follow the signature line, and the same
		// seal made afresh opens to the same list and time.
		if !strings.HasSuffix(string(value), string(data)) {
			t.Fatalf("data %q is not the value's tail", data)
		}
		again, _ := sealList("f", origin, name, when, testKey(t, 0), data)
		d2, w2, err := v.openList(origin, name, again)
		if err != nil || string(d2) != string(data) || !w2.Equal(when) {
			t.Fatalf("a fresh seal of an accepted list does not open alike: %v", err)
		}
	})
}
