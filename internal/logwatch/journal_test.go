package logwatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseEntry(t *testing.T) {
	const cur = `"__CURSOR":"s=1;i=2;b=3;m=4;t=5;x=6"`
	for _, tc := range []struct {
		name, line string
		max        int
		want       entry
		err        bool
	}{
		{
			name: "string message and fields",
			line: `{` + cur + `,"__REALTIME_TIMESTAMP":"1795240476900631","__MONOTONIC_TIMESTAMP":"1","_BOOT_ID":"b","MESSAGE":"Failed password for root from 203.0.113.7 port 22 ssh2","_PID":"812","SYSLOG_IDENTIFIER":"sshd-session","_SYSTEMD_UNIT":"ssh.service","_HOSTNAME":"vps"}`,
			want: entry{
				cursor: "s=1;i=2;b=3;m=4;t=5;x=6", realtime: time.UnixMicro(1795240476900631),
				message: []byte("Failed password for root from 203.0.113.7 port 22 ssh2"),
				fields:  map[string]string{"_BOOT_ID": "b", "_PID": "812", "SYSLOG_IDENTIFIER": "sshd-session", "_SYSTEMD_UNIT": "ssh.service", "_HOSTNAME": "vps"},
			},
		},
		{
			// journalctl writes bytes for data that is not printable
			// UTF-8: an escape sequence, invalid UTF-8, a NUL.
			name: "byte array message",
			line: `{` + cur + `,"MESSAGE":[99,97,102,195,169,32,27,91,51,49,109,0,255]}`,
			want: entry{cursor: "s=1;i=2;b=3;m=4;t=5;x=6", message: []byte("caf\xc3\xa9 \x1b[31m\x00\xff")},
		},
		{
			name: "null message (too large without --all)",
			line: `{` + cur + `,"MESSAGE":null,"_PID":"1"}`,
			want: entry{cursor: "s=1;i=2;b=3;m=4;t=5;x=6", fields: map[string]string{"_PID": "1"}},
		},
		{
			name: "field given twice: first value kept",
			line: `{` + cur + `,"MESSAGE":["first",[115,101,99]],"DUP":[[1,2],"x"]}`,
			want: entry{cursor: "s=1;i=2;b=3;m=4;t=5;x=6", message: []byte("first"), fields: map[string]string{"DUP": "\x01\x02"}},
		},
		{
			name: "cut at max",
			line: `{` + cur + `,"MESSAGE":"0123456789","F":"abcdefghij"}`,
			max:  4,
			want: entry{cursor: "s=1;i=2;b=3;m=4;t=5;x=6", message: []byte("0123"), cut: true, fields: map[string]string{"F": "abcd"}},
		},
		{
			name: "odd shapes skipped",
			line: `{` + cur + `,"MESSAGE":{"a":1},"N":12,"B":[256],"E":[],"__REALTIME_TIMESTAMP":"soon"}`,
			want: entry{cursor: "s=1;i=2;b=3;m=4;t=5;x=6", fields: map[string]string{"N": "12"}},
		},
		{name: "no cursor", line: `{"MESSAGE":"x"}`, err: true},
		{name: "cursor not a string", line: `{"__CURSOR":[1,2],"MESSAGE":"x"}`, want: entry{cursor: "\x01\x02"}, err: false},
		{name: "not JSON", line: `-- No entries --`, err: true},
		{name: "empty", line: ``, err: true},
		{name: "array", line: `[1,2]`, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			max := tc.max
			if max == 0 {
				max = DefaultMaxLine
			}
			got, err := parseEntry([]byte(tc.line), max)
			if tc.err {
				if err == nil {
					t.Fatalf("parseEntry = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "cursor not a string" {
				return // accepted as bytes: journalctl never writes it, only must not crash
			}
			if got.cursor != tc.want.cursor || !got.realtime.Equal(tc.want.realtime) || string(got.message) != string(tc.want.message) ||
				got.cut != tc.want.cut || !mapsEqual(got.fields, tc.want.fields) {
				t.Fatalf("parseEntry =\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestJournalArgs(t *testing.T) {
	j, err := NewJournal(JournalConfig{Matches: []string{"_SYSTEMD_UNIT=ssh.service", "+", "SYSLOG_IDENTIFIER=sshd"}, Namespace: "ns1"})
	if err != nil {
		t.Fatal(err)
	}
	since := time.UnixMicro(1_700_000_000_123_456)
	got := strings.Join(j.args("", since), " ")
	want := "--follow --output=json --all --no-pager --quiet --output-fields=" + strings.Join(DefaultJournalFields, ",") +
		" --namespace=ns1 --since=@1700000000.123456 -- _SYSTEMD_UNIT=ssh.service + SYSLOG_IDENTIFIER=sshd"
	if got != want {
		t.Errorf("first start:\n got %s\nwant %s", got, want)
	}
	got = strings.Join(j.args("s=abc;i=1", since), " ")
	if !strings.Contains(got, " --after-cursor=s=abc;i=1 -- ") || strings.Contains(got, "--since") {
		t.Errorf("resume: %s", got)
	}
}

func TestJournalConfigChecks(t *testing.T) {
	for _, tc := range []struct {
		cfg JournalConfig
		ok  bool
	}{
		{JournalConfig{Matches: sshdMatches}, true},
		{JournalConfig{Matches: []string{"SYSLOG_IDENTIFIER=sshd", "SYSLOG_IDENTIFIER=sshd-session"}}, true},
		{JournalConfig{Matches: []string{"+", "A=b"}}, false},
		{JournalConfig{Matches: []string{"A=b", "+"}}, false},
		{JournalConfig{Matches: []string{"A=b", "+", "+", "C=d"}}, false},
		{JournalConfig{Matches: []string{"/usr/sbin/sshd"}}, false},
		{JournalConfig{Matches: []string{"--since=yesterday"}}, false},
		{JournalConfig{Matches: []string{"lower=x"}}, false},
		{JournalConfig{Matches: []string{"A=b\nc"}}, false},
		{JournalConfig{Fields: []string{"MESSAGE", "bad field"}}, false},
		{JournalConfig{Namespace: "--help"}, false},
		{JournalConfig{Namespace: "a/b"}, false},
	} {
		_, err := NewJournal(tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("NewJournal(%+v) error = %v, want ok=%v", tc.cfg, err, tc.ok)
		}
	}
}

func TestCursorTime(t *testing.T) {
	def := time.Unix(1, 0)
	if got := cursorTime("s=1;i=2;b=3;m=4;t=660c2fee97d17;x=6", def); got.UnixMicro() != 0x660c2fee97d17 {
		t.Errorf("cursorTime = %v", got)
	}
	if got := cursorTime("garbage", def); !got.Equal(def) {
		t.Errorf("cursorTime(garbage) = %v, want the default", got)
	}
}

// fakeJournal is the journal a fake journalctl serves.
type fakeJournal struct {
	t   testing.TB
	dir string
	n   int
}

func newFakeJournal(t testing.TB) *fakeJournal {
	dir := t.TempDir()
	t.Setenv(fakeJournalctlEnv, dir)
	if err := os.WriteFile(filepath.Join(dir, "journal.jsonl"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return &fakeJournal{t: t, dir: dir}
}

// add appends an entry and returns its cursor.
func (j *fakeJournal) add(ident, msg string, at time.Time) string {
	j.n++
	cursor := fmt.Sprintf("s=fake;i=%x;b=boot;m=%x;t=%x;x=0", j.n, j.n, at.UnixMicro())
	b, _ := json.Marshal(map[string]string{
		"__CURSOR": cursor, "__REALTIME_TIMESTAMP": strconv.FormatInt(at.UnixMicro(), 10),
		"MESSAGE": msg, "SYSLOG_IDENTIFIER": ident, "_COMM": ident, "_UID": "0", "_PID": strconv.Itoa(1000 + j.n),
	})
	j.raw(string(b))
	return cursor
}

func (j *fakeJournal) raw(line string) {
	f, err := os.OpenFile(filepath.Join(j.dir, "journal.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		j.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		j.t.Fatal(err)
	}
}

func (j *fakeJournal) crashAfter(n int) {
	if err := os.WriteFile(filepath.Join(j.dir, "crash"), []byte(strconv.Itoa(n)), 0o644); err != nil {
		j.t.Fatal(err)
	}
}

// invoked waits until journalctl has run n times: from the first, the
// --since of a first start is fixed, and entries added after it are read.
func (j *fakeJournal) invoked(n int) {
	j.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(j.invocations()) < n {
		if time.Now().After(deadline) {
			j.t.Fatalf("journalctl not run %d times within 30s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// invocations returns journalctl's argument lists so far.
func (j *fakeJournal) invocations() [][]string {
	b, _ := os.ReadFile(filepath.Join(j.dir, "args"))
	var out [][]string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var a []string
		if json.Unmarshal([]byte(l), &a) == nil {
			out = append(out, a)
		}
	}
	return out
}

func (j *fakeJournal) source(store Store) *Journal {
	exe, err := os.Executable()
	if err != nil {
		j.t.Fatal(err)
	}
	src, err := NewJournal(JournalConfig{
		Name: "sshd", Journalctl: exe, Store: store, Matches: sshdMatches,
		RestartMin: 10 * time.Millisecond, RestartMax: 40 * time.Millisecond, SaveInterval: time.Nanosecond,
		Log: debugLog(j.t),
	})
	if err != nil {
		j.t.Fatal(err)
	}
	return src
}

func TestJournalFakeFirstStartAndResume(t *testing.T) {
	j := newFakeJournal(t)
	j.add("sshd", "old: before the first start", time.Now().Add(-time.Hour))
	store := NewMemStore()
	var c collector
	src := j.source(store)
	r := start(t, src, c.handle)
	j.invoked(1)
	now := time.Now()
	j.add("sshd", "one", now)
	j.add("cron", "not sshd", now)
	j.raw(fmt.Sprintf(`{"MESSAGE":"no cursor: skipped","_COMM":"sshd","_UID":"0","__REALTIME_TIMESTAMP":"%d"}`, now.UnixMicro()))
	j.raw(`not json`)
	c2 := j.add("sshd-session", "two", now)
	waitFor(t, 5*time.Second, "two entries", func() bool { return c.len() == 2 })
	got := c.snapshot()
	if string(got[0].Text) != "one" || string(got[1].Text) != "two" {
		t.Fatalf("got %q, %q", got[0].Text, got[1].Text)
	}
	if l := got[1]; l.Source != "sshd" || l.Pos.Cursor != c2 || l.Fields["SYSLOG_IDENTIFIER"] != "sshd-session" ||
		l.Fields["_PID"] == "" || l.Time.UnixMicro() != now.UnixMicro() {
		t.Errorf("entry %+v: want source, cursor, fields and time", l)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := store.Load("sshd"); p.Cursor != c2 {
		t.Fatalf("stored %v, want cursor %s", p, c2)
	}
	if st := src.Stats(); st.Skipped != 2 {
		t.Errorf("stats %+v: want 2 skipped lines", st)
	}

	// Written while stopped: delivered after the saved cursor, once.
	j.add("sshd", "three", time.Now())
	var c3 collector
	start(t, j.source(store), c3.handle)
	j.add("sshd", "four", time.Now())
	waitFor(t, 5*time.Second, "the rest", func() bool { return c3.len() == 2 })
	time.Sleep(50 * time.Millisecond)
	if got := c3.texts(); !slices.Equal(got, []string{"three", "four"}) {
		t.Fatalf("after restart got %q", got)
	}
	inv := j.invocations()
	if last := strings.Join(inv[len(inv)-1], " "); !strings.Contains(last, "--after-cursor="+c2) {
		t.Errorf("restart ran journalctl %s, want --after-cursor", last)
	}
	if first := strings.Join(inv[0], " "); !strings.Contains(first, "--since=@") ||
		!strings.HasSuffix(first, "-- "+strings.Join(sshdMatches, " ")) {
		t.Errorf("first start ran journalctl %s", first)
	}
}

func TestJournalFakeRestartsAfterCrash(t *testing.T) {
	j := newFakeJournal(t)
	store := NewMemStore()
	var c collector
	src := j.source(store)
	j.crashAfter(3)
	start(t, src, c.handle)
	j.invoked(1)
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("entry %d", i))
		j.add("sshd", want[i], time.Now())
	}
	waitFor(t, 5*time.Second, "10 entries", func() bool { return c.len() >= 10 })
	time.Sleep(50 * time.Millisecond)
	if got := c.texts(); !slices.Equal(got, want) {
		t.Fatalf("got %q, want each entry once: %q", got, want)
	}
	if st := src.Stats(); st.Restarts < 1 {
		t.Errorf("stats %+v: want a restart", st)
	}
	inv := j.invocations()
	if len(inv) < 2 || !strings.Contains(strings.Join(inv[1], " "), "--after-cursor=") {
		t.Errorf("restart without cursor: %q", inv)
	}
}

func TestJournalFakeBadCursorFallsBackToItsTime(t *testing.T) {
	j := newFakeJournal(t)
	t0 := time.Now().Add(-time.Minute)
	j.add("sshd", "before the cursor's time", t0.Add(-time.Second))
	j.add("sshd", "after the cursor's time", t0.Add(time.Second))
	store := NewMemStore()
	// A cursor the journal no longer knows (vacuumed), from time t0.
	store.Save("sshd", Position{Cursor: fmt.Sprintf("s=gone;i=1;b=boot;m=1;t=%x;x=0", t0.UnixMicro())})
	var c collector
	start(t, j.source(store), c.handle)
	waitFor(t, 5*time.Second, "the entry after the cursor's time", func() bool { return c.len() == 1 })
	if got := c.texts(); got[0] != "after the cursor's time" {
		t.Fatalf("got %q", got)
	}
}

func TestJournalFakeHandlerErrorAndStop(t *testing.T) {
	j := newFakeJournal(t)
	boom := errors.New("boom")
	src := j.source(nil)
	r := start(t, src, func([]Line) error { return boom })
	j.invoked(1)
	j.add("sshd", "x", time.Now())
	select {
	case err := <-r.done:
		r.done <- err
		if !errors.Is(err, boom) {
			t.Fatalf("Run = %v, want the handler's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return the handler's error")
	}
	assertGone(t, j)

	// Cancelling stops journalctl too.
	var c collector
	r = start(t, j.source(nil), c.handle)
	time.Sleep(100 * time.Millisecond)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after cancel = %v", err)
	}
	assertGone(t, j)
}

// assertGone fails if the latest fake journalctl is still running.
func assertGone(t *testing.T, j *fakeJournal) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(j.dir, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(b))
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("journalctl %d still runs after Run returned", pid)
	}
}

func TestJournalMissingJournalctl(t *testing.T) {
	src, err := NewJournal(JournalConfig{Journalctl: "/nonexistent/journalctl"})
	if err != nil {
		t.Fatal(err)
	}
	var c collector
	r := start(t, src, c.handle)
	select {
	case err := <-r.done:
		r.done <- err
		if err == nil || !strings.Contains(err.Error(), "install") {
			t.Fatalf("Run = %v, want an error with a hint", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not fail")
	}
}
