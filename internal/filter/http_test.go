package filter

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestHTTPFilters(t *testing.T) {
	tests := []struct {
		filter, mode, line, want string
		kind                     Kind
		user                     string
	}{
		{"nginx-http-auth", "", `2026/11/21 05:42:36 [error] 7#7: *1 user "bob" was not found in "/etc/nginx/htpasswd", client: 203.0.113.9, server: s, request: "GET / HTTP/2.0", host: "h"`, "203.0.113.9", KindHTTPAuth, "bob"},
		{"nginx-http-auth", "", `2026/11/21 05:42:36 [error] 7#7: *1 user "bob": password mismatch, client: 2001:db8::9, server: , request: "GET / HTTP/1.1", host: "h"`, "2001:db8::9", KindHTTPAuth, "bob"},
		{"nginx-http-auth", "", `2026/11/21 05:42:36 [crit] 7#7: *1 SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) while SSL handshaking, client: 203.0.113.9, server: 0.0.0.0:443`, "", "", ""},
		{"nginx-http-auth", "fallback", `2026/11/21 05:42:36 [crit] 7#7: *1 SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) while SSL handshaking, client: 203.0.113.9, server: 0.0.0.0:443`, "203.0.113.9", KindTLS, ""},
		{"nginx-http-auth", "fallback", `2026/11/21 05:42:36 [error] 7#7: *1 user "bob": password mismatch, client: 203.0.113.9, server: , request: "GET / HTTP/1.1", host: "h"`, "", "", ""},
		{"nginx-http-auth", "aggressive", `2026/11/21 05:42:36 [error] 7#7: *1 user "bob": password mismatch, client: 203.0.113.9, server: , request: "GET / HTTP/1.1", host: "h"`, "203.0.113.9", KindHTTPAuth, "bob"},
		{"nginx-http-auth", "", `Nov 21 05:42:36 web nginx: 2026/11/21 05:42:36 [error] 7#7: *1 user "bob": password mismatch, client: 203.0.113.9, server: , request: "GET / HTTP/1.1", host: "h"`, "203.0.113.9", KindHTTPAuth, "bob"},
		{"nginx-http-auth", "", `2026/11/21 05:42:36 [error] 7#7: *1 open() "/x" failed (2: No such file or directory), client: 203.0.113.9, server: s`, "", "", ""},
		{"nginx-limit-req", "", `2026/11/21 05:42:36 [warn] 7#7: *1 delaying request, excess: 0.5, by zone "z", client: 203.0.113.9, server: s, request: "GET / HTTP/1.1", host: "h"`, "203.0.113.9", KindLimitReq, ""},
		{"nginx-limit-req", "", `2026/11/21 05:42:36 [error] 7#7: *1 limiting connections by zone "c", client: 203.0.113.9, server: s, request: "GET / HTTP/1.1", host: "h"`, "203.0.113.9", KindLimitReq, ""},
		{"nginx-forbidden", "", `2026/11/21 05:42:36 [error] 7#7: *1 access forbidden by rule, client: 203.0.113.9, server: s, request: "GET /.git/config HTTP/1.1", host: "h"`, "203.0.113.9", KindForbidden, ""},
		{"nginx-bad-request", "", `203.0.113.9 - - [21/Nov/2026:05:42:36 +0000] "\x16\x03\x01" 400 150 "-" "-"`, "203.0.113.9", KindBadRequest, ""},
		{"nginx-bad-request", "", `203.0.113.9 - - [21/Nov/2026:05:42:36 +0000] "GET / HTTP/1.1" 200 150 "-" "-"`, "", "", ""},
		{"nginx-botsearch", "", `203.0.113.9 - - [21/Nov/2026:05:42:36 +0000] "GET /wp-login.php HTTP/1.1" 404 150 "-" "-"`, "203.0.113.9", KindBotSearch, ""},
		{"nginx-botsearch", "", `203.0.113.9 - - [21/Nov/2026:05:42:36 +0000] "GET /phpMyAdmin/index.php HTTP/1.1" 404 150 "-" "-"`, "203.0.113.9", KindBotSearch, ""},
		{"nginx-botsearch", "", `203.0.113.9 - - [21/Nov/2026:05:42:36 +0000] "GET /blog/ HTTP/1.1" 404 150 "-" "-"`, "", "", ""},
		{"nginx-botsearch", "", `203.0.113.9 - - [21/Nov/2026:05:42:36 +0000] "GET /wp-login.php HTTP/1.1" 200 150 "-" "-"`, "", "", ""},
		{"traefik-auth", "", `203.0.113.9 - bob [21/Nov/2026:05:42:36 +0000] "GET / HTTP/2.0" 401 17 "-" "curl" 72 "r" "/" 0ms`, "203.0.113.9", KindHTTPAuth, "bob"},
		{"traefik-auth", "", `203.0.113.9 - - [21/Nov/2026:05:42:36 +0000] "GET / HTTP/2.0" 401 17 "-" "curl" 72 "r" "/" 0ms`, "", "", ""},
		{"traefik-auth", "ddos", `203.0.113.9 - - [21/Nov/2026:05:42:36 +0000] "GET / HTTP/2.0" 401 17 "-" "curl" 72 "r" "/" 0ms`, "203.0.113.9", KindHTTPAuth, ""},
		{"traefik-auth", "", `{"ClientHost":"203.0.113.9","ClientUsername":"bob","DownstreamStatus":401,"StartUTC":"2026-11-21T05:42:36.5Z"}`, "203.0.113.9", KindHTTPAuth, "bob"},
		{"caddy-auth", "", `{"level":"info","ts":1795000000.25,"logger":"http.log.access","msg":"handled request","request":{"remote_ip":"203.0.113.9","client_ip":"203.0.113.9","headers":{"Authorization":["REDACTED"]}},"status":401}`, "203.0.113.9", KindHTTPAuth, ""},
		{"caddy-auth", "", `{"ts":1795000000.25,"request":{"remote_ip":"203.0.113.9","client_ip":"2001:db8::5"},"status":401}`, "", "", ""},
		{"caddy-auth", "ddos", `{"ts":1795000000.25,"request":{"remote_ip":"203.0.113.9","client_ip":"2001:db8::5"},"status":401}`, "2001:db8::5", KindHTTPAuth, ""},
		{"caddy-auth", "", `{"ts":1795000000.25,"request":{"remote_ip":"203.0.113.9","headers":{"Authorization":["REDACTED"]}},"status":200}`, "", "", ""},
		{"gateway", "", `{"time":"2026-11-21T05:42:36Z","event":"failure","addr":"203.0.113.9","kind":"honeypot"}`, "203.0.113.9", KindHoneypot, ""},
		{"gateway", "", `{"time":"2026-11-21T05:42:36Z","event":"failure","addr":"203.0.113.9","kind":"auth"}`, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.filter+"/"+tt.mode+"/"+tt.line[:min(len(tt.line), 60)], func(t *testing.T) {
			fs := run(mustNew(t, tt.filter, tt.mode), tt.line)
			if got := addrsOf(fs); got != tt.want {
				t.Fatalf("failures %q, want %q: %+v", got, tt.want, fs)
			}
			if len(fs) == 0 {
				return
			}
			if fs[0].Kind != tt.kind || fs[0].User != tt.user || fs[0].Service != tt.filter || fs[0].Time.IsZero() {
				t.Errorf("failure %+v, want kind %s user %q", fs[0], tt.kind, tt.user)
			}
		})
	}
}

func TestHTTPTimes(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	o := Options{Location: loc, Now: func() time.Time { return testNow }}
	tests := []struct {
		filter, line string
		want         time.Time
	}{
		{"nginx-limit-req", `2026/11/21 05:42:36 [error] 7#7: *1 limiting requests, excess: 1 by zone "z", client: 203.0.113.9, server: s`, time.Date(2026, 11, 21, 5, 42, 36, 0, loc)},
		{"nginx-bad-request", `203.0.113.9 - - [21/Nov/2026:05:42:36 -0200] "x" 400 0 "-" "-"`, time.Date(2026, 11, 21, 7, 42, 36, 0, time.UTC)},
		{"caddy-auth", `{"ts":1795000000.25,"request":{"remote_ip":"203.0.113.9"},"status":401}`, time.Unix(1795000000, 250000000)},
		{"caddy-auth", `{"ts":"2026-11-21T05:42:36.5Z","request":{"remote_ip":"203.0.113.9"},"status":401}`, time.Date(2026, 11, 21, 5, 42, 36, 5e8, time.UTC)},
	}
	for _, tt := range tests {
		mode := ""
		if tt.filter == "caddy-auth" {
			mode = "aggressive"
		}
		f, err := New(tt.filter, mode, o)
		if err != nil {
			t.Fatal(err)
		}
		fs := run(f, tt.line)
		if len(fs) != 1 || !fs[0].Time.Equal(tt.want) {
			t.Errorf("%s: %+v, want time %s", tt.filter, fs, tt.want)
		}
	}
}

func TestGatewayRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 21, 5, 42, 36, 123e6, time.UTC)
	in := GatewayFailure(netip.MustParseAddr("::ffff:203.0.113.9"), at, KindHTTPAuth, "adm\x1bin")
	if in.Addr != addr("203.0.113.9") || in.User != `adm\x1bin` {
		t.Fatalf("GatewayFailure: %+v", in)
	}
	line := AppendGatewayEvent(nil, in)
	if !strings.HasSuffix(string(line), "\n") {
		t.Fatalf("no newline: %q", line)
	}
	fs := run(mustNew(t, "gateway", ""), strings.TrimSuffix(string(line), "\n"))
	if len(fs) != 1 {
		t.Fatalf("read back %q: %+v", line, fs)
	}
	got := fs[0]
	got.Time = got.Time.UTC()
	if got.Addr != in.Addr || !got.Time.Equal(at) || got.Kind != in.Kind || got.User != in.User || got.Service != "gateway" {
		t.Fatalf("round trip: %+v, want %+v", got, in)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []Custom{
		{},
		{Regex: []string{"no placeholder"}},
		{Regex: []string{"<HOST> and <HOST>"}},
		{Regex: []string{"from <HOST> ("}},
		{Regex: []string{"(?P<host>x) <HOST>"}},
		{Regex: []string{"from <HOST>"}, Ignore: []string{"("}},
	} {
		if _, err := Compile("x", c, Options{}); err == nil {
			t.Errorf("%+v: compiled", c)
		}
	}
}

func TestCustomFilter(t *testing.T) {
	f, err := Compile("app", Custom{
		Regex:  []string{`\S+ \S+ app\[\d+\]: login failed for (?P<user>\S+) from <HOST> port \d+`, `.*rejected client <HOST>`},
		Ignore: []string{`.* from 192\.0\.2\.\d+ .*`},
	}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	var r Result
	f.Process(Entry{Text: []byte("2026-11-21T05:42:36Z web app[7]: login failed for bob from 203.0.113.9 port 4444")}, &r)
	if len(r.Failures) != 1 || r.Failures[0].Addr != addr("203.0.113.9") || r.Failures[0].User != "bob" ||
		r.Failures[0].Kind != KindCustom || r.Failures[0].Service != "app" || !r.Failures[0].Time.Equal(time.Date(2026, 11, 21, 5, 42, 36, 0, time.UTC)) {
		t.Fatalf("%+v", r)
	}
	r.Reset()
	f.Process(Entry{Text: []byte("2026-11-21T05:42:36Z web app[7]: login failed for bob from 192.0.2.1 port 4444")}, &r)
	if r.Verdict != Ignored || len(r.Failures) != 0 {
		t.Fatalf("ignore regex: %+v", r)
	}
	r.Reset()
	f.Process(Entry{Text: []byte("x rejected client 2001:db8::1"), Time: testNow}, &r)
	if len(r.Failures) != 1 || r.Failures[0].Addr != addr("2001:db8::1") || !r.Failures[0].Time.Equal(testNow) {
		t.Fatalf("second regex: %+v", r)
	}
	r.Reset()
	f.Process(Entry{Text: []byte("unrelated")}, &r)
	if r.Verdict != Missed {
		t.Fatalf("unrelated: %+v", r)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New("nope", "", Options{}); err == nil {
		t.Error("unknown filter built")
	}
	if _, err := New("sshd", "paranoid", Options{}); err == nil {
		t.Error("unknown mode accepted")
	}
	for _, name := range Builtins() {
		f, err := New(name, "", Options{})
		if err != nil {
			t.Fatal(err)
		}
		modes, ok := Modes(name)
		if !ok || f.Name() != name || f.Mode() != modes[0] {
			t.Errorf("%s: name %q mode %q modes %v", name, f.Name(), f.Mode(), modes)
		}
	}
}
