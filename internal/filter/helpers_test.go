package filter

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// testNow is the clock of unit tests: syslog lines without a year are of
// 2026.
var testNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func testOptions() Options {
	return Options{Location: time.UTC, Now: func() time.Time { return testNow }, MaxConns: 256}
}

// mustNew builds a built-in filter or fails the test.
func mustNew(t testing.TB, name, mode string) Filter {
	t.Helper()
	f, err := New(name, mode, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// run feeds lines to f and returns every failure, in order.
func run(f Filter, lines ...string) []Failure {
	var out []Failure
	var r Result
	for _, l := range lines {
		r.Reset()
		f.Process(Entry{Text: []byte(l)}, &r)
		out = append(out, r.Failures...)
	}
	return out
}

// runOne feeds one line and returns its result (a copy).
func runOne(f Filter, e Entry) Result {
	var r Result
	f.Process(e, &r)
	return r
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// syslog wraps an sshd message in a syslog line of pid.
func syslog(pid int, msg string) string {
	return "Nov 21 05:42:36 vps sshd[" + itoa(pid) + "]: " + msg
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// addrsOf lists the failures' addresses ("-" for unattributable).
func addrsOf(fs []Failure) string {
	var s []string
	for _, f := range fs {
		if f.Addr.IsValid() {
			s = append(s, f.Addr.String())
		} else {
			s = append(s, "-")
		}
	}
	return strings.Join(s, " ")
}
