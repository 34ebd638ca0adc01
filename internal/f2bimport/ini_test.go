package f2bimport

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseINI(t *testing.T) {
	f, err := ParseINI("t.conf", []byte(`# comment
[DEFAULT]
Bantime = 1h ; inline
[sshd] # a note
logpath = /var/log/a
          /var/log/b
  # a comment inside the value

          /var/log/c
port: ssh
empty =
`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Defaults["bantime"] != "1h" {
		t.Errorf("defaults %v: option names are lower-cased, ; after space ends the value", f.Defaults)
	}
	s := f.Section("sshd")
	if s == nil {
		t.Fatalf("no [sshd] in %v", f.Sections)
	}
	if got := s.Options["logpath"]; got != "/var/log/a\n/var/log/b\n\n/var/log/c" {
		t.Errorf("logpath %q", got)
	}
	if s.Options["port"] != "ssh" || s.Options["empty"] != "" {
		t.Errorf("options %v", s.Options)
	}
	for _, bad := range []string{"x = 1\n", "[a]\nx\n", "[a]\n[a]\n", "[a]\nx=1\nX=2\n", "[a]\n= 1\n"} {
		if _, err := ParseINI("bad.conf", []byte(bad)); err == nil || !strings.Contains(err.Error(), "bad.conf:") {
			t.Errorf("%q: error %v, want one naming bad.conf:LINE", bad, err)
		}
	}
}

func TestInterpolation(t *testing.T) {
	f, err := ParseINI("t.conf", []byte(`[DEFAULT]
a = 1
b = %(a)s-%(c)s
known = x
[s]
c = 2
d = %(b)s %%(b)s %(__name__)s %(t/x)s %(default/a)s
e = %(e)s
g = %(nowhere)s
h = 50%
[t]
x = tx
`))
	if err != nil {
		t.Fatal(err)
	}
	c := newConfig()
	c.merge(f)
	over, _ := ParseINI("u.conf", []byte("[s]\nc = 3\nk = %(known/c)s\n"))
	c.merge(over)
	if v, err := c.Get("s", "d", nil); err != nil || v != "1-3 %(b)s s tx 1" {
		t.Errorf("d = %q, %v", v, err)
	}
	if v, err := c.Get("s", "k", nil); err != nil || v != "2" {
		t.Errorf("known/c = %q, %v: want the value before u.conf overrode it", v, err)
	}
	if v, err := c.Get("s", "b", map[string]string{"c": "v"}); err != nil || v != "1-v" {
		t.Errorf("vars first: %q, %v", v, err)
	}
	for _, opt := range []string{"e", "g", "h"} {
		if _, err := c.Get("s", opt, nil); err == nil {
			t.Errorf("%s: no error", opt)
		}
	}
}

// TestInterpolationBlowupBounded: references repeated at every level
// would grow past any memory; the reader stops at a bound, quickly.
func TestInterpolationBlowupBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("[s]\nl0 = x\n")
	for i := 1; i <= 9; i++ {
		b.WriteString("l" + string(rune('0'+i)) + " = " + strings.Repeat("%(l"+string(rune('0'+i-1))+")s", 60) + "\n")
	}
	f, err := ParseINI("t.conf", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	c := newConfig()
	c.merge(f)
	done := make(chan error, 1)
	go func() { _, err := c.Get("s", "l9", nil); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "more than") {
			t.Errorf("error %v, want the size bound", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("interpolation did not stop")
	}
}

func TestParseTime(t *testing.T) {
	for s, want := range map[string]float64{
		"600": 600, "10m": 600, "5m": 300, "1h": 3600, "30m": 1800, "604800": 604800, "-1": -1,
		"1h 30m": 5400, "1d+12h": 129600, "60*60*24": 86400, "2w": 1209600, "1 hour": 3600,
		"1mo": 365.25 * 86400 / 12, "1y-6mo": 365.25 * 86400 / 2, "0.5d": 43200, "10 min": 600,
	} {
		got, err := ParseTime(s)
		if err != nil || got != want {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, bad := range []string{"", "abc", "10x", "1h+", "--", "1e400", "%(x)s"} {
		if _, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

func TestDateRegex(t *testing.T) {
	for _, tc := range []struct {
		dp, line     string
		ok, anchored bool
	}{
		{"^t=%Y-%m-%dT%H:%M:%S%z", "t=2020-10-19T17:44:33+0200", true, true},
		{"{^LN-BEG}Epoch", "[1387288694]", true, true},
		{"^%b %d, %ExY %I:%M:%S %p", "apr 15, 2013 8:34:08 PM", true, true},
		{"%d/%b[^/]*/%Y:%H:%M:%S %z", "02/sept./2015:00:11:31 +0200", true, false},
		{"^[^\\[]*\\[({DATE})", "", false, false},
		{"{^LN-BEG}%Q", "", false, false},
	} {
		re, anch, ok := DateRegex(tc.dp)
		if ok != tc.ok || anch != tc.anchored {
			t.Errorf("%q: ok %v anchored %v, want %v %v", tc.dp, ok, anch, tc.ok, tc.anchored)
			continue
		}
		if ok && !regexp.MustCompile("(?i)^(?:"+re+")$").MatchString(tc.line) {
			t.Errorf("%q → %s does not match %q", tc.dp, re, tc.line)
		}
	}
}
