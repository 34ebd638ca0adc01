package alert

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// running starts d.Run and stops it when the test ends; stop stops it
// early and reports how long Run took to return.
func running(t *testing.T, d *Dispatcher) (stop func() time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if err := d.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
		close(done)
	}()
	stopped := false
	stop = func() time.Duration {
		if stopped {
			return 0
		}
		stopped = true
		start := time.Now()
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of its context ending")
		}
		return time.Since(start)
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func health(d *Dispatcher, name string) NotifierHealth {
	for _, h := range d.Health() {
		if h.Name == name {
			return h
		}
	}
	return NotifierHealth{}
}

func hookConfig(urls map[string]string) Config {
	c := Config{Notifiers: map[string]Notifier{}}
	for name, u := range urls {
		c.Notifiers[name] = Notifier{Type: "webhook", URL: u}
	}
	return c
}

func TestRetryThenSuccess(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			http.Error(w, "upstream hiccup", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	d, err := New(hookConfig(map[string]string{"hook": rc.URL}), Options{Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	running(t, d)
	d.Notify(TestEvent("hook"))
	waitFor(t, "delivery", func() bool { return health(d, "hook").Sent == 1 })
	h := health(d, "hook")
	if rc.count() != 2 || h.Retries != 1 || h.Failed != 0 || !strings.Contains(h.LastError, "HTTP 500: upstream hiccup") || h.LastSuccess.IsZero() {
		t.Errorf("requests %d, health %+v", rc.count(), h)
	}
	first, second := rc.reqs[0], rc.reqs[1]
	if first.Header.Get(HeaderDelivery) != second.Header.Get(HeaderDelivery) {
		t.Error("a retry must carry the same delivery ID, so receivers can drop duplicates")
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, "ok")
	})
	d, err := New(hookConfig(map[string]string{"hook": rc.URL}), Options{Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	running(t, d)
	d.Notify(TestEvent("hook"))
	waitFor(t, "delivery", func() bool { return health(d, "hook").Sent == 1 })
	// The backoff alone would retry after at most 10ms.
	if gap := rc.reqs[1].At.Sub(rc.reqs[0].At); gap < time.Second || gap > 3*time.Second {
		t.Errorf("retried %s after a 429 with Retry-After: 1", gap)
	}
}

func TestRetryAfterTooLongGivesUp(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	d, _ := New(hookConfig(map[string]string{"hook": rc.URL}), Options{Retry: fastRetry})
	running(t, d)
	d.Notify(TestEvent("hook"))
	waitFor(t, "failure", func() bool { return health(d, "hook").Failed == 1 })
	if h := health(d, "hook"); rc.count() != 1 || !strings.Contains(h.LastError, "asks to wait 1h0m0s") {
		t.Errorf("requests %d, health %+v", rc.count(), h)
	}
}

func TestPermanentRefusalIsNotRetried(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
	})
	d, _ := New(hookConfig(map[string]string{"hook": rc.URL}), Options{Retry: fastRetry})
	running(t, d)
	d.Notify(TestEvent("hook"))
	waitFor(t, "failure", func() bool { return health(d, "hook").Failed == 1 })
	time.Sleep(100 * time.Millisecond) // long enough for any retry to show
	if h := health(d, "hook"); rc.count() != 1 || h.Retries != 0 || h.LastError != "HTTP 400: invalid_payload" {
		t.Errorf("requests %d, health %+v", rc.count(), h)
	}
}

func TestGivesUpAfterAttempts(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	d, _ := New(hookConfig(map[string]string{"hook": rc.URL}), Options{Retry: fastRetry})
	running(t, d)
	d.Notify(TestEvent("hook"))
	waitFor(t, "failure", func() bool { return health(d, "hook").Failed == 1 })
	if h := health(d, "hook"); rc.count() != fastRetry.Attempts || h.Retries != uint64(fastRetry.Attempts-1) || !strings.Contains(h.LastError, "gave up after 4 tries") {
		t.Errorf("requests %d, health %+v", rc.count(), h)
	}
}

// TestNotifyNeverBlocks: a receiver that hangs fills its notifier's queue;
// Notify keeps returning at once, drops are counted, another notifier is
// unaffected, and shutdown does not wait for the hang.
func TestNotifyNeverBlocks(t *testing.T) {
	hang := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	fine := newReceiver(t, nil)
	d, err := New(hookConfig(map[string]string{"hang": hang.URL, "fine": fine.URL}),
		Options{QueueSize: 4, Timeout: time.Minute, DrainTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := running(t, d)
	d.Notify(TestEvent("first"))
	hang.next(t) // the first event is in flight, and stays there
	// Not timed (a loaded machine makes any bound a guess): a Notify that
	// waited for the hanging receiver would wait for a minute, and the
	// counts below say every call returned without queueing past 4.
	notified := make(chan struct{})
	go func() {
		defer close(notified)
		for i := range 100 {
			d.Notify(Event{Kind: KindLogin, Title: fmt.Sprint("login ", i)})
		}
	}()
	select {
	case <-notified:
	case <-time.After(30 * time.Second):
		t.Fatal("Notify blocks behind a hanging receiver")
	}
	h := health(d, "hang")
	if h.Queued != 4 || h.Dropped != 96 || h.Sent != 0 {
		t.Errorf("hanging notifier: %+v, want 4 queued and 96 dropped", h)
	}
	// The other notifier's queue overflowed too (the flood came at once),
	// but it delivers what it kept and keeps up afterwards.
	waitFor(t, "the other notifier", func() bool { f := health(d, "fine"); return f.Queued == 0 && f.Sent+f.Dropped == 101 })
	d.Notify(TestEvent("after"))
	waitFor(t, "the other notifier", func() bool { f := health(d, "fine"); return f.Sent+f.Dropped == 102 && f.Sent >= 5 })
	// The hanging request would last the notifier's 1-minute timeout;
	// stop fails the test after 10 s, so returning at all shows shutdown
	// did not wait for it.
	t.Logf("shutdown took %s", stop())
	if h := health(d, "hang"); h.Dropped != 102 || h.Queued != 0 {
		t.Errorf("after shutdown: %+v, want all 102 undelivered counted as dropped", h)
	}
}

func TestDropPolicyKeepsSevereEvents(t *testing.T) {
	m, _ := newMetrics(nil)
	o := Options{QueueSize: 3}.withDefaults()
	w := newWorker("w", Notifier{Type: "webhook"}, nil, &o, m)
	ev := func(title string, s Severity) Event { return Event{Title: title, Severity: s} }
	w.enqueue(ev("i1", Info))
	w.enqueue(ev("c1", Critical))
	w.enqueue(ev("i2", Info))
	w.enqueue(ev("w1", Warning)) // evicts i1, the oldest of the least severe
	w.enqueue(ev("i3", Info))    // evicts i2
	w.enqueue(ev("c2", Critical))
	w.enqueue(ev("c3", Critical))
	w.enqueue(ev("i4", Info)) // less severe than all queued: dropped itself
	var got []string
	for _, e := range w.q {
		got = append(got, e.Title)
	}
	if h := w.snapshot(); strings.Join(got, " ") != "c1 c2 c3" || h.Dropped != 5 {
		t.Errorf("queue %v, dropped %d", got, h.Dropped)
	}
}

// TestStoppedGoesOut: "moat stopped" notified just before shutdown is
// still delivered while Run drains.
func TestStoppedGoesOut(t *testing.T) {
	rc := newReceiver(t, nil)
	d, _ := New(hookConfig(map[string]string{"hook": rc.URL}), Options{})
	stop := running(t, d)
	d.Notify(Lifecycle{Action: Stopped, Reason: "SIGTERM"}.Event())
	stop()
	if rc.count() != 1 || !strings.Contains(string(rc.reqs[0].Body), `"title":"moat stopped"`) {
		t.Errorf("requests %d", rc.count())
	}
}

func TestEventsBeforeRunWait(t *testing.T) {
	rc := newReceiver(t, nil)
	d, _ := New(hookConfig(map[string]string{"hook": rc.URL}), Options{})
	d.Notify(Lifecycle{Action: Started}.Event())
	if rc.count() != 0 {
		t.Fatal("delivered before Run")
	}
	running(t, d)
	rc.next(t)
}

func TestMetrics(t *testing.T) {
	ok := newReceiver(t, nil)
	bad := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })
	reg := prometheus.NewRegistry()
	d, err := New(hookConfig(map[string]string{"ok": ok.URL, "bad": bad.URL}), Options{Registerer: reg, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(hookConfig(map[string]string{"ok": ok.URL}), Options{Registerer: reg}); err == nil {
		t.Error("a second dispatcher on the same registry must fail, not share series")
	}
	running(t, d)
	d.Notify(TestEvent("x"))
	d.Notify(Event{Kind: "made-up", Title: "x"})
	waitFor(t, "deliveries", func() bool { return health(d, "ok").Sent == 2 && health(d, "bad").Failed == 2 })
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "moat_alert_") {
			t.Errorf("metric %s outside moat_alert_", mf.GetName())
		}
		for _, m := range mf.GetMetric() {
			got[mf.GetName()+labels(m)] = m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	for k, v := range map[string]float64{
		`moat_alert_sent_total{notifier="ok"}`:             2,
		`moat_alert_failed_total{notifier="bad"}`:          2,
		`moat_alert_sent_total{notifier="bad"}`:            0,
		`moat_alert_dropped_total{notifier="ok"}`:          0,
		`moat_alert_events_total{kind="test"}`:             1,
		`moat_alert_events_total{kind="other"}`:            1,
		`moat_alert_queue_events{notifier="ok"}`:           0,
		`moat_alert_send_duration_seconds{notifier="bad"}`: 2,
		`moat_alert_retries_total{notifier="bad"}`:         0,
		`moat_alert_send_duration_seconds{notifier="ok"}`:  2,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestTestBypassesQueue(t *testing.T) {
	ok := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"id":"abc"}`) })
	bad := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such hook", http.StatusNotFound)
	})
	c := hookConfig(map[string]string{"ok": ok.URL, "bad": bad.URL})
	c.Routes = []Route{{Events: []string{"ban"}, Notifiers: []string{"ok"}}} // routes do not apply to tests
	d, _ := New(c, Options{Retry: fastRetry})
	res, err := d.Test(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Notifier != "bad" || res[1].Notifier != "ok" {
		t.Fatalf("results %+v", res)
	}
	if res[0].Err == nil || res[0].Reply.String() != "HTTP 404: no such hook" || bad.count() != 1 {
		t.Errorf("bad: %+v after %d requests (one try, no retry)", res[0], bad.count())
	}
	if res[1].Err != nil || res[1].Reply.String() != `HTTP 200: {"id":"abc"}` {
		t.Errorf("ok: %+v", res[1])
	}
	if _, err := d.Test(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), "configured are bad, ok") {
		t.Errorf("unknown notifier: %v", err)
	}
	if h := health(d, "ok"); h.Sent != 0 {
		t.Errorf("tests must not count as alerts: %+v", h)
	}
}

func TestReload(t *testing.T) {
	a, b := newReceiver(t, nil), newReceiver(t, nil)
	reg := prometheus.NewRegistry()
	d, _ := New(hookConfig(map[string]string{"a": a.URL, "gone": a.URL}), Options{Registerer: reg})
	d.Notify(TestEvent("1")) // queued, not running yet
	kept := d.workers["a"]
	// Same "a", so its worker and queue stay; "gone" goes with its queue.
	if err := d.Reload(hookConfig(map[string]string{"a": a.URL, "b": b.URL})); err != nil {
		t.Fatal(err)
	}
	if d.workers["a"] != kept || len(d.workers) != 2 {
		t.Fatalf("workers %v", d.workers)
	}
	running(t, d)
	a.next(t)
	d.Notify(TestEvent("2"))
	a.next(t)
	b.next(t)
	// "a" moves to b's URL while running: a new worker, carrying counts.
	if err := d.Reload(hookConfig(map[string]string{"a": b.URL})); err != nil {
		t.Fatal(err)
	}
	d.Notify(TestEvent("3"))
	b.next(t)
	waitFor(t, "counts to carry over the reload", func() bool { h := health(d, "a"); return h.Sent == 3 && h.Dropped == 0 })
	if err := d.Reload(Config{Notifiers: map[string]Notifier{"x": {Type: "pager"}}}); err == nil {
		t.Error("an invalid config must not load")
	}
	if len(d.Health()) != 1 {
		t.Errorf("a failed reload must leave the running config: %+v", d.Health())
	}
}
