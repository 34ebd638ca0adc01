package filter

import (
	"bufio"
	"bytes"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/filter/filtertest"
)

// sshdLines is a generated auth.log: OpenSSH 9 lines of password guessing,
// probes, scanners, logins, and other daemons' noise.
func sshdLines(b *testing.B, n int) [][]byte {
	b.Helper()
	var buf bytes.Buffer
	if _, err := (filtertest.SSHDLog{Lines: n, Seed: 1}).Write(&buf); err != nil {
		b.Fatal(err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	return lines
}

// BenchmarkSSHD reads a realistic mix; one op is one line.
func BenchmarkSSHD(b *testing.B) {
	for _, mode := range []string{"normal", "aggressive"} {
		b.Run(mode, func(b *testing.B) {
			lines := sshdLines(b, 100000)
			f, err := New("sshd", mode, Options{Location: time.UTC, Now: func() time.Time { return time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC) }})
			if err != nil {
				b.Fatal(err)
			}
			var r Result
			failures := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.Reset()
				f.Process(Entry{Text: lines[i%len(lines)]}, &r)
				failures += len(r.Failures)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
			b.ReportMetric(float64(failures)/float64(b.N), "failures/line")
		})
	}
}

// BenchmarkSSHDNoise reads only lines that are no failure: other daemons'
// and sshd's sessions. They must cost no allocation.
func BenchmarkSSHDNoise(b *testing.B) {
	lines := [][]byte{
		[]byte("Nov 21 05:42:36 vps CRON[4242]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"),
		[]byte("Nov 21 05:42:36 vps sshd[4242]: pam_unix(sshd:session): session closed for user deploy"),
		[]byte("Nov 21 05:42:36 vps kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.9 DST=192.0.2.1 PROTO=TCP SPT=5 DPT=23"),
		[]byte("Nov 21 05:42:37 vps sshd[4243]: Connection closed by 203.0.113.9 port 5555"),
	}
	f, _ := New("sshd", "", Options{Location: time.UTC})
	var r Result
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Reset()
		f.Process(Entry{Text: lines[i%len(lines)]}, &r)
	}
}

func TestSSHDNoiseAllocatesNothing(t *testing.T) {
	f, _ := New("sshd", "", Options{Location: time.UTC})
	lines := [][]byte{
		[]byte("Nov 21 05:42:36 vps CRON[4242]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"),
		[]byte("Nov 21 05:42:36 vps sshd[4242]: pam_unix(sshd:session): session closed for user deploy"),
		[]byte("Nov 21 05:42:37 vps sshd[4243]: Connection closed by 203.0.113.9 port 5555"),
		[]byte("Nov 21 05:42:37 vps sshd[4243]: Failed password for root from 203.0.113.9 port 5555 ssh2"),
	}
	var r Result
	r.Failures = make([]Failure, 0, 4)
	for _, l := range lines {
		f.Process(Entry{Text: l}, &r) // warm the caches
	}
	for _, l := range lines {
		n := testing.AllocsPerRun(100, func() {
			r.Reset()
			f.Process(Entry{Text: l}, &r)
		})
		if n != 0 {
			t.Errorf("%d allocations for %q", int(n), l)
		}
	}
}

func TestGeneratedLogIsRead(t *testing.T) {
	var buf bytes.Buffer
	st, err := (filtertest.SSHDLog{Lines: 20000, Seed: 2, Ident: "sshd-session"}).Write(&buf)
	if err != nil {
		t.Fatal(err)
	}
	f := mustNew(t, "sshd", "")
	var r Result
	failures, successes := 0, 0
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		r.Reset()
		f.Process(Entry{Text: sc.Bytes()}, &r)
		for _, x := range r.Failures {
			failures += x.Attempts
			if !x.Addr.IsValid() {
				t.Errorf("unattributable failure in the generated log: %+v", x)
			}
		}
		successes += len(r.Successes)
	}
	// Each guess is one attempt (the PAM line and the Failed line are the
	// same attempt); the generator counts its failure lines.
	if successes != st.Successes || failures < st.Failures*9/10 || failures > st.Failures {
		t.Errorf("read %d failures, %d successes; the log holds %d failures, %d successes", failures, successes, st.Failures, st.Successes)
	}
}
