package alert

import (
	"testing"
	"time"
)

// benchDispatcher is never Run, so queues fill and every Notify after the
// first 64 takes the drop path: the worst case a stalled receiver causes.
func benchDispatcher(b *testing.B, digest int) *Dispatcher {
	c := Config{Notifiers: map[string]Notifier{"phone": {}, "ops": {}}, Digest: minutes(digest),
		Routes: []Route{
			{Events: []string{"login", "ban", "drift"}, Notifiers: []string{"phone"}, QuietHours: "23:00-07:00"},
			{Notifiers: []string{"ops"}},
		}}
	clock := &fakeClock{t: base}
	d := quietDispatcher(&testing.T{}, c, clock, time.UTC)
	b.ReportAllocs()
	return d
}

// BenchmarkNotifyLogin: what a login costs its producer (routing, two
// full queues).
func BenchmarkNotifyLogin(b *testing.B) {
	d := benchDispatcher(b, 5)
	e := Login{User: "deploy", Addr: "203.0.113.7", Method: "publickey", Fingerprint: "SHA256:q7Zkx3Yt0ZoJ1Vz6bW3f9nKc"}.Event()
	for b.Loop() {
		d.Notify(e)
	}
}

// BenchmarkNotifyBanDigested: what a ban costs the guard during a brute
// force (two routes' digests).
func BenchmarkNotifyBanDigested(b *testing.B) {
	d := benchDispatcher(b, 5)
	e := ban("sshd", "192.0.2.1", "CN")
	for b.Loop() {
		d.Notify(e)
	}
}

// BenchmarkBanEvent: building the ban event itself.
func BenchmarkBanEvent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Ban{Jail: "sshd", Addr: "192.0.2.1", Country: "CN", Failures: 5, Duration: time.Hour}.Event()
	}
}
