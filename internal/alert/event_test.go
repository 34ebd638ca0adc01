package alert

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// everyEvent is one of each documented event, for the golden file and the
// payload tests.
func everyEvent() map[string]Event {
	return map[string]Event{
		"login":            Login{User: "deploy", Addr: "203.0.113.7", Method: "publickey", Fingerprint: "SHA256:q7Zkx3Yt0ZoJ1Vz6bW3f9nKc", Time: t0}.Event(),
		"login-new-source": Login{User: "deploy", Addr: "198.51.100.23", Method: "publickey", Country: "DE", NewSource: true, Time: t0}.Event(),
		"ban":              Ban{Jail: "sshd", Addr: "192.0.2.44", Country: "CN", Failures: 5, Duration: 10 * time.Minute, Time: t0}.Event(),
		"ban-manual":       Ban{Addr: "192.0.2.0/24", Manual: true, By: "root", Reason: "scanner", Time: t0}.Event(),
		"unban-expired":    Unban{Jail: "sshd", Addr: "192.0.2.44", Time: t0}.Event(),
		"unban-manual":     Unban{Addr: "192.0.2.0/24", Manual: true, By: "root", Time: t0}.Event(),
		"drift-score":      Drift{Score: 78, PreviousScore: 92, Time: t0}.Event(),
		"drift-critical": Drift{Score: 61, PreviousScore: 92, Time: t0,
			NewCritical: []string{"ssh-password-auth: PasswordAuthentication is back on", "listener-public: redis-server on 0.0.0.0:6379"}}.Event(),
		"cert-expiry":       Cert{Domain: "example.com", NotAfter: t0.Add(9 * 24 * time.Hour), Time: t0}.Event(),
		"cert-renew-failed": Cert{Domain: "example.com", NotAfter: t0.Add(2 * 24 * time.Hour), RenewErr: "acme: rate limited", Time: t0}.Event(),
		"cert-expired":      Cert{Domain: "old.example.com", NotAfter: t0.Add(-time.Hour), Time: t0}.Event(),
		"disk":              Disk{Mount: "/", UsedPercent: 93.4, FreeBytes: 1503238553, Time: t0}.Event(),
		"memory-pressure":   Memory{AvailablePercent: 3.6, Stall: 12.5, Time: t0}.Event(),
		"memory-oom":        Memory{OOMKill: true, Process: "postgres", PID: 4242, AvailablePercent: 41, Time: t0}.Event(),
		"reboot":            Reboot{Packages: []string{"linux-image-6.1.0-31-amd64", "libc6"}, Time: t0}.Event(),
		"change-applied": Change{ID: "20250314-092653", Action: ChangeApplied, Summary: "firewall: drop 6379/tcp from the internet",
			ConfirmBy: t0.Add(2 * time.Minute), Time: t0}.Event(),
		"change-confirmed":  Change{ID: "20250314-092653", Action: ChangeConfirmed, Summary: "firewall: drop 6379/tcp from the internet", Time: t0}.Event(),
		"change-rolledback": Change{ID: "20250314-092653", Action: ChangeRolledBack, Summary: "ssh: port 2222", Reason: "no confirm within 2m", Time: t0}.Event(),
		"started":           Lifecycle{Action: Started, Version: "v0.6.0", Time: t0}.Event(),
		"stopped":           Lifecycle{Action: Stopped, Version: "v0.6.0", Reason: "SIGTERM", Time: t0}.Event(),
		"test":              TestEvent("phone"),
	}
}

func TestEventsGolden(t *testing.T) {
	evs := everyEvent()
	var b strings.Builder
	for _, name := range sortedKeys(evs) {
		e := stamped(evs[name])
		if !slices.Contains(Events, e.Kind) {
			t.Errorf("%s: kind %q is not in Events", name, e.Kind)
		}
		js, err := json.MarshalIndent(e, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("== " + name + "\n" + string(js) + "\n")
	}
	golden(t, "events.golden", []byte(b.String()))
}

func TestEventSeverities(t *testing.T) {
	evs := everyEvent()
	want := map[string]Severity{
		"login": Info, "login-new-source": Warning, "ban": Info, "ban-manual": Info, "unban-expired": Info,
		"drift-score": Warning, "drift-critical": Critical, "cert-expiry": Warning, "cert-renew-failed": Critical,
		"cert-expired": Critical, "disk": Warning, "memory-pressure": Warning, "memory-oom": Critical, "reboot": Warning,
		"change-applied": Info, "change-confirmed": Info, "change-rolledback": Critical, "started": Info, "stopped": Warning,
	}
	for name, s := range want {
		if got := evs[name].Severity; got != s {
			t.Errorf("%s: severity %v, want %v", name, got, s)
		}
	}
	if got := (Disk{Mount: "/", UsedPercent: 98.2}).Event().Severity; got != Critical {
		t.Errorf("disk 98%%: %v, want critical", got)
	}
	if !digested(evs["ban"]) || !digested(evs["unban-expired"]) || digested(evs["ban-manual"]) || digested(evs["unban-manual"]) {
		t.Error("only automatic bans and expiries belong in digests")
	}
}

func TestSeverityText(t *testing.T) {
	for _, s := range []Severity{Info, Warning, Critical} {
		b, _ := s.MarshalText()
		var back Severity
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%v round trip: %v, %v", s, back, err)
		}
	}
	if _, err := ParseSeverity("urgent"); err == nil {
		t.Error("urgent is no severity")
	}
}

func TestNormalize(t *testing.T) {
	cases := []struct {
		name        string
		in          Event
		title, text string
	}{
		{"newline in title", Event{Title: "login: root\nX-Injected: yes", Text: "a\r\nb"}, "login: root X-Injected: yes", "a\nb"},
		{"escape sequences", Event{Title: "user \x1b[31mred\x1b[0m", Text: "bell\a here"}, "user [31mred[0m", "bell here"},
		{"bidi override", Event{Title: "evil\u202eexe.txt"}, "evilexe.txt", ""},
		{"invalid utf8", Event{Title: "a\xffb"}, "a\uFFFDb", ""},
		{"long title", Event{Title: strings.Repeat("x", 500)}, strings.Repeat("x", maxTitle) + "…", ""},
		{"trailing space", Event{Title: "x  ", Text: "y\n\n"}, "x", "y"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.normalize()
			if got.Title != tc.title || got.Text != tc.text {
				t.Errorf("got title %q text %q, want %q %q", got.Title, got.Text, tc.title, tc.text)
			}
		})
	}
	many := map[string]string{}
	for i := range 50 {
		many[strings.Repeat("k", i+1)] = strings.Repeat("v", 1000)
	}
	e := Event{Fields: many}.normalize()
	if len(e.Fields) != maxFields {
		t.Errorf("%d fields kept, want %d", len(e.Fields), maxFields)
	}
	for k, v := range e.Fields {
		if utf8.RuneCountInString(k) > maxFieldKey+1 || utf8.RuneCountInString(v) > maxFieldValue+1 {
			t.Errorf("field %q not cut: %d runes", k, len(v))
		}
	}
}

func FuzzNormalize(f *testing.F) {
	f.Add("login: root", "line one\nline two", "user", "root")
	f.Add("a\x00b\r\nc", "\x1b[2J\u202e", "k\n", "v\r")
	f.Add(strings.Repeat("é", 300), strings.Repeat("\xff", 10), "", "")
	f.Fuzz(func(t *testing.T, title, text, k, v string) {
		e := Event{Title: title, Text: text, Fields: map[string]string{k: v}}.normalize()
		for _, s := range []string{e.Title, e.Text} {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8: %q", s)
			}
		}
		if strings.ContainsAny(e.Title, "\r\n\x00\x1b") || strings.ContainsAny(e.Text, "\r\x00\x1b") {
			t.Fatalf("control characters survive: %q / %q", e.Title, e.Text)
		}
		for fk, fv := range e.Fields {
			if strings.ContainsAny(fk+fv, "\r\n") {
				t.Fatalf("newline in field %q=%q", fk, fv)
			}
		}
		if n := utf8.RuneCountInString(e.Title); n > maxTitle+1 {
			t.Fatalf("title of %d runes", n)
		}
		if n := utf8.RuneCountInString(e.Text); n > maxText+1 {
			t.Fatalf("text of %d runes", n)
		}
	})
}
