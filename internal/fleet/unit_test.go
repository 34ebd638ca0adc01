package fleet

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moat-sh/moat/internal/lab"
)

func TestDecisionRoundTrip(t *testing.T) {
	d := ban("web-1", "2001:db8::/64", time.Hour)
	if err := d.Sign("prod", testKey(t, 0)); err != nil {
		t.Fatal(err)
	}
	data, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDecision("prod", d.Subject("prod"), data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Prefix != d.Prefix || got.Origin != d.Origin || !got.Expires.Equal(d.Expires) || got.Op != OpBan {
		t.Fatalf("round trip: %+v, want %+v", got, d)
	}
	// What is signed survives the wire: the receiver's canonical bytes
	// are the sender's.
	if string(got.SignedBytes("prod")) != string(d.SignedBytes("prod")) {
		t.Fatal("canonical encoding changed in transit")
	}
	if s := d.Subject("prod"); s != "moat.prod.decision.web-1.2001:db8::_64" {
		t.Fatalf("subject %q", s)
	}
}

// TestParseDecisionRefuses: every way a message can lie about itself.
func TestParseDecisionRefuses(t *testing.T) {
	good := ban("a", "198.51.100.0/24", time.Hour)
	if err := good.Sign("f", testKey(t, 0)); err != nil {
		t.Fatal(err)
	}
	subj := good.Subject("f")
	enc := func(d Decision) []byte { b, _ := d.Marshal(); return b }
	with := func(f func(*Decision)) Decision { d := good; f(&d); return d }
	for name, c := range map[string]struct {
		subj string
		data []byte
	}{
		"origin not the subject's": {subj, enc(with(func(d *Decision) { d.Origin = "b" }))},
		"prefix not the subject's": {subj, enc(with(func(d *Decision) { d.Prefix = netip.MustParsePrefix("198.51.101.0/24") }))},
		"not canonical":            {subj, []byte(`{"v":1,"op":"ban","prefix":"198.51.100.7/24","origin":"a","created":"2026-01-01T00:00:00Z"}`)},
		"mapped v4":                {subj, []byte(`{"v":1,"op":"ban","prefix":"::ffff:198.51.100.0/120","origin":"a","created":"2026-01-01T00:00:00Z"}`)},
		"unknown op":               {subj, enc(with(func(d *Decision) { d.Op = "allow" }))},
		"bad origin":               {"moat.f.decision.a>.x", enc(with(func(d *Decision) { d.Origin = "a>" }))},
		"version 1 (unsigned)":     {subj, []byte(`{"v":1,"op":"ban","prefix":"198.51.100.0/24","origin":"a","created":"2026-01-01T00:00:00Z"}`)},
		"version 3":                {subj, []byte(`{"v":3,"op":"ban","prefix":"198.51.100.0/24","origin":"a","created":"2026-01-01T00:00:00Z"}`)},
		"unsigned":                 {subj, enc(with(func(d *Decision) { d.Sig = nil }))},
		"no signer":                {subj, enc(with(func(d *Decision) { d.Signer = "" }))},
		"year 2400":                {subj, enc(with(func(d *Decision) { d.Expires = d.Created.AddDate(400, 0, 0) }))},
		"negative failures":        {subj, enc(with(func(d *Decision) { d.Failures = -1 }))},
		"unknown field":            {subj, []byte(`{"v":2,"op":"ban","prefix":"198.51.100.0/24","origin":"a","created":"2026-01-01T00:00:00Z","trusted":true}`)},
		"trailing data":            {subj, append(enc(good), []byte(`{}`)...)},
		"no created":               {subj, []byte(`{"v":1,"op":"ban","prefix":"198.51.100.0/24","origin":"a"}`)},
		"expires before created":   {subj, enc(with(func(d *Decision) { d.Expires = d.Created.Add(-time.Second) }))},
		"too large":                {subj, []byte(`{"v":1,"reason":"` + strings.Repeat("x", MaxDecisionSize) + `"}`)},
		"other fleet":              {good.Subject("g"), enc(good)},
	} {
		if _, err := ParseDecision("f", c.subj, c.data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseDecision(f *testing.F) {
	d := ban("a", "198.51.100.0/24", time.Hour)
	d.Sign("f", testKey(f, 0))
	b, _ := d.Marshal()
	f.Add(d.Subject("f"), b)
	f.Add("moat.f.decision.a.x", []byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, subj string, data []byte) {
		d, err := ParseDecision("f", subj, data)
		if err != nil {
			return
		}
		// Whatever is accepted is canonical and names its own subject.
		if d.Subject("f") != subj || d.Prefix != d.Prefix.Masked() || !ValidToken(d.Origin) {
			t.Fatalf("accepted %+v on %q", d, subj)
		}
		again, err := d.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseDecision("f", subj, again)
		if err != nil {
			t.Fatalf("re-encoded decision refused: %v", err)
		}
		// The signed encoding is a function of the fields: a verifier
		// and a signer never disagree over what was signed.
		if string(back.SignedBytes("f")) != string(d.SignedBytes("f")) {
			t.Fatalf("canonical bytes differ after a round trip: %+v", d)
		}
		// Verifying anything accepted never panics, and a decision the
		// key did not sign never verifies.
		v := newVerifier(Config{Name: "f", Hosts: map[string]string{"a": testPub(t, 0)}})
		if err := v.verify(d, d.Created); err == nil && string(d.Sig) != string(sigOf(t, d)) {
			t.Fatalf("verified a decision with a forged signature: %+v", d)
		}
	})
}

// TestGuard: what a trusted host may not make this host do.
func TestGuard(t *testing.T) {
	c := Config{Name: "f", Host: "b", Trust: []string{"prod-*"}}
	g := NewGuard(c, []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("192.0.2.52/32")})
	for _, tc := range []struct {
		d  Decision
		ok bool
	}{
		{ban("prod-a", "198.51.100.7/32", time.Hour), true},
		{ban("other", "198.51.100.7/32", time.Hour), false},                                             // untrusted origin
		{ban("b", "198.51.100.7/32", time.Hour), false},                                                 // its own name, echoed
		{ban("prod-a", "100.100.1.1/32", time.Hour), false},                                             // in the VPN
		{ban("prod-a", "192.0.2.0/24", time.Hour), false},                                               // a network holding the admin
		{ban("prod-a", "0.0.0.0/0", time.Hour), false},                                                  // everything
		{ban("prod-a", "192.0.2.53/32", time.Hour), true},                                               // the admin's neighbour
		{Decision{Op: OpUnban, Origin: "prod-a", Prefix: netip.MustParsePrefix("192.0.2.52/32")}, true}, // lifting is checked by origin
	} {
		if err := g.Check(tc.d); (err == nil) != tc.ok {
			t.Errorf("%s from %s: err %v, want ok=%v", tc.d.Prefix, tc.d.Origin, err, tc.ok)
		}
	}
}

// TestRootOnly: a credential anyone but root can read or write is
// refused by config validation.
func TestRootOnly(t *testing.T) {
	lab.RequireRoot(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	os.WriteFile(p, []byte("x"), 0o600)
	if err := RootOnly(p); err != nil {
		t.Fatalf("0600 root: %v", err)
	}
	os.Chmod(p, 0o400)
	if err := RootOnly(p); err != nil {
		t.Fatalf("0400 root: %v", err)
	}
	for _, m := range []os.FileMode{0o640, 0o604, 0o660, 0o644} {
		os.Chmod(p, m)
		if err := RootOnly(p); err == nil {
			t.Errorf("mode %04o accepted", m)
		}
	}
	os.Chmod(p, 0o600)
	os.Chown(p, 1000, 1000)
	if err := RootOnly(p); err == nil {
		t.Error("a file owned by uid 1000 accepted")
	}
	os.Chown(p, 0, 0)
	l := filepath.Join(dir, "link")
	os.Symlink(p, l)
	if err := RootOnly(l); err == nil {
		t.Error("a symlink accepted")
	}
	if err := RootOnly(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file accepted")
	}
}

// TestValidate: addresses outside loopback and the VPN are refused
// unless opted in; missing secrets are named.
func TestValidate(t *testing.T) {
	lab.RequireRoot(t)
	cfgs := testFleet(t, 3)
	vpn := []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10")}
	c := cfgs[0]
	if err := c.Validate(vpn); err != nil {
		t.Fatalf("loopback config: %v", err)
	}
	pub := c
	e := *c.NATS.Embedded
	e.Listen = "203.0.113.1:4222"
	pub.NATS.Embedded = &e
	err := pub.Validate(vpn)
	if err == nil || !strings.Contains(err.Error(), "allow_public_listen") {
		t.Fatalf("public listen: %v", err)
	}
	pub.AllowPublicListen = true
	if err := pub.Validate(vpn); err != nil {
		t.Fatalf("public listen, opted in: %v", err)
	}
	e.Listen = "100.64.0.1:4222"
	pub.AllowPublicListen = false
	if err := pub.Validate(vpn); err != nil {
		t.Fatalf("VPN listen: %v", err)
	}
	name := c
	e2 := *c.NATS.Embedded
	e2.Listen = "nats.example.com:4222"
	name.NATS.Embedded = &e2
	if err := name.Validate(vpn); err == nil || !strings.Contains(err.Error(), "never resolves") {
		t.Fatalf("host name: %v", err)
	}
	noSecret := c
	cl := *c.NATS.Embedded.Cluster
	cl.Secret = ""
	e3 := *c.NATS.Embedded
	e3.Cluster = &cl
	noSecret.NATS.Embedded = &e3
	if err := noSecret.Validate(vpn); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("no route secret: %v", err)
	}
}

// TestLists: a blocklist published by one member reaches the others'
// watchers as raw bytes; another member cannot overwrite it.
func TestLists(t *testing.T) {
	cfgs := testFleet(t, 1)
	m := startMember(t, cfgs[0], t.TempDir(), nil)
	defer m.stop()
	waitFor(t, 30*time.Second, "ready", m.client.Ready)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lists, err := m.client.Lists(ctx)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("; Spamhaus DROP\n192.0.2.0/24 ; SBL1\n")
	if err := lists.Publish(ctx, "drop", body); err != nil {
		t.Fatal(err)
	}
	got := make(chan ListUpdate, 1)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go lists.Watch(wctx, func(u ListUpdate) { got <- u })
	select {
	case u := <-got:
		if u.Origin != "h0" || u.Name != "drop" || string(u.Data) != string(body) {
			t.Fatalf("update %+v", u)
		}
	case <-ctx.Done():
		t.Fatal("no update")
	}
	if u, ok, err := lists.Latest(ctx, "drop"); err != nil || !ok || string(u.Data) != string(body) || u.Origin != "h0" || u.Time.IsZero() {
		t.Fatalf("latest: %+v %v %v", u, ok, err)
	}
	if _, ok, err := lists.LatestFrom(ctx, "drop", func(o string) bool { return o != "h0" }); err != nil || ok {
		t.Fatalf("latest from origins that published nothing: %v %v", ok, err)
	}
	if _, ok, err := lists.Latest(ctx, "edrop"); err != nil || ok {
		t.Fatalf("latest of a list nobody published: %v %v", ok, err)
	}
	if err := lists.Publish(ctx, "bad name", body); err == nil {
		t.Fatal("a list name with a space accepted")
	}
	if err := lists.Publish(ctx, "big", make([]byte, MaxListSize+1)); err == nil {
		t.Fatal("an oversized list accepted")
	}
	// Another host's key is not ours to write.
	if _, err := lists.kv.Put(ctx, "h1.drop", []byte("0.0.0.0/0\n")); err == nil {
		t.Fatal("wrote a list under another origin")
	}
}

// TestMetricsDocumented: every fleet metric is in docs/metrics.md.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) < 8 {
		t.Fatalf("gathered %d metrics", len(mfs))
	}
	for _, mf := range mfs {
		if !strings.Contains(string(doc), "`"+mf.GetName()+"`") {
			t.Errorf("%s is not in docs/metrics.md", mf.GetName())
		}
	}
}
