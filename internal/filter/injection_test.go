package filter

import (
	"strings"
	"testing"
	"time"
)

// The log-injection suite: an attacker controls user names, auth info,
// HTTP requests and headers. None of it may get an address of the
// attacker's choosing (1.2.3.4 here) banned; the real peer is
// 203.0.113.9. A line that cannot be read unambiguously is reported
// unattributable ("-") or not at all.

const injected = "1.2.3.4"

func TestInjectionSSHD(t *testing.T) {
	long := strings.Repeat("x", 20000)
	tests := []struct {
		name, mode string
		lines      []string
		want       string
	}{
		{"user name carries from ADDR port N ssh2", "",
			[]string{syslog(1, "Failed password for invalid user x from 1.2.3.4 port 22 ssh2 from 203.0.113.9 port 5555 ssh2")}, "203.0.113.9"},
		{"user name carries a whole tail with info", "",
			[]string{syslog(1, "Failed password for invalid user x from 1.2.3.4 port 22 ssh2: y from 203.0.113.9 port 5555 ssh2")}, "-"},
		{"auth info carries from ADDR port N ssh2", "",
			[]string{syslog(1, "Failed password for invalid user x from 203.0.113.9 port 5555 ssh2: from 1.2.3.4 port 22 ssh2")}, "-"},
		{"ambiguity settled by the connection's address", "",
			[]string{
				syslog(1, "Invalid user x from 203.0.113.9 port 5555"),
				syslog(1, "Failed password for invalid user x from 1.2.3.4 port 22 ssh2: y from 203.0.113.9 port 5555 ssh2")},
			"203.0.113.9 203.0.113.9"},
		{"an ambiguous line teaches the connection nothing", "",
			[]string{
				syslog(1, "Failed password for invalid user x from 1.2.3.4 port 22 ssh2: y from 203.0.113.9 port 5555 ssh2"),
				syslog(1, "Disconnecting: Too many authentication failures [preauth]")},
			"-"},
		{"hostbased client user", "",
			[]string{syslog(1, `Failed hostbased for invalid user x from 203.0.113.9 port 5555 ssh2: RSA SHA256:abc, client user "from 1.2.3.4 port 22 ssh2", client host "h"`)}, "203.0.113.9"},
		{"valid user: the first from is sshd's", "",
			[]string{syslog(1, "Failed password for root from 203.0.113.9 port 5555 ssh2: from 1.2.3.4 port 22 ssh2")}, "203.0.113.9"},
		{"invalid user line", "",
			[]string{syslog(1, "Invalid user a from 1.2.3.4 port 22 from 203.0.113.9 port 5555")}, "203.0.113.9"},
		{"closed by authenticating user", "",
			[]string{syslog(1, "Connection closed by authenticating user root 1.2.3.4 port 22 203.0.113.9 port 5555 [preauth]")}, "203.0.113.9"},
		{"max attempts", "",
			[]string{syslog(1, "error: maximum authentication attempts exceeded for invalid user a from 1.2.3.4 port 22 ssh2 from 203.0.113.9 port 5555 ssh2 [preauth]")}, "203.0.113.9"},
		{"not allowed", "",
			[]string{syslog(1, "User a from 1.2.3.4 not allowed because listed in DenyUsers from 203.0.113.9 not allowed because listed in DenyUsers")}, "203.0.113.9"},
		{"PAM ruser", "",
			[]string{
				syslog(1, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=a rhost=1.2.3.4 rhost=203.0.113.9  user=a"),
				syslog(1, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=b rhost=203.0.113.9  user=b")},
			"203.0.113.9"},
		{"PAM user after rhost", "",
			[]string{
				syslog(1, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=a rhost=1.2.3.4"),
				syslog(1, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=b")},
			"203.0.113.9"}, // the second line is unambiguous
		{"change of user name", "",
			[]string{syslog(1, "Disconnecting invalid user a 1.2.3.4 port 22: Change of username or service not allowed: (a,ssh-connection) -> (b,ssh-connection) 203.0.113.9 port 5555: Change of username or service not allowed: (a,ssh-connection) -> (b,ssh-connection) [preauth]")},
			"-"},
		{"bad protocol version", "ddos",
			[]string{syslog(1, "Bad protocol version identification 'x from 1.2.3.4 port 22' from 203.0.113.9 port 5555")}, "203.0.113.9"},
		{"received disconnect text", "",
			[]string{syslog(1, "Received disconnect from 203.0.113.9 port 5555:3: x from 1.2.3.4: Auth fail [preauth]")}, "203.0.113.9"},
		{"embedded newline (journal message)", "",
			[]string{syslog(1, "Failed password for invalid user x\nNov 21 05:42:36 vps sshd[2]: Failed password for root from 1.2.3.4 port 22 ssh2")}, ""},
		{"carriage return", "",
			[]string{syslog(1, "Failed password for invalid user x\rfrom 1.2.3.4 port 22 ssh2")}, ""},
		{"ANSI escape", "",
			[]string{syslog(1, "Failed password for invalid user \x1b[2K\x1b[1Groot from 1.2.3.4 port 22 ssh2")}, ""},
		{"NUL", "",
			[]string{syslog(1, "Failed password for invalid user a\x00 from 1.2.3.4 port 22 ssh2")}, ""},
		{"very long line", "",
			[]string{syslog(1, "Failed password for invalid user "+long+" from 1.2.3.4 port 22 ssh2")}, ""},
		{"invalid UTF-8 user", "",
			[]string{syslog(1, "Failed password for invalid user \xff\xfe\xfd from 203.0.113.9 port 5555 ssh2")}, "203.0.113.9"},
		{"vis-escaped newline in user (as sshd logs it)", "",
			[]string{syslog(1, `Failed password for invalid user a\012Nov 21 05:42:36 vps sshd[2]: Failed password for root from 1.2.3.4 port 22 ssh2 from 203.0.113.9 port 5555 ssh2`)}, "203.0.113.9"},
		{"IPv4-mapped IPv6", "",
			[]string{syslog(1, "Failed password for root from ::ffff:203.0.113.9 port 5555 ssh2")}, "203.0.113.9"},
		{"zone id", "",
			[]string{syslog(1, "Failed password for root from fe80::1%eth0 port 5555 ssh2")}, "-"},
		{"leading zeros", "",
			[]string{syslog(1, "Invalid user a from 001.002.003.004 port 5555")}, "-"},
		{"octal-looking address", "",
			[]string{syslog(1, "Invalid user a from 0x1.0x2.0x3.0x4 port 5555")}, "-"},
		{"host name", "",
			[]string{syslog(1, "Invalid user a from 1.2.3.4.nip.io port 5555")}, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, "sshd", tt.mode)
			fs := run(f, tt.lines...)
			got := addrsOf(fs)
			if strings.Contains(" "+got+" ", " "+injected+" ") {
				t.Fatalf("INJECTED ADDRESS ATTRIBUTED: %q", got)
			}
			if got != tt.want {
				t.Fatalf("failures %q, want %q", got, tt.want)
			}
			for _, f := range fs {
				if !isPrintableASCII(f.User) || len(f.User) > maxUser+3 || !isPrintableASCII(f.Host) {
					t.Errorf("unsanitized user %q host %q", f.User, f.Host)
				}
			}
		})
	}
}

func TestInjectionTruncatedEntry(t *testing.T) {
	f := mustNew(t, "sshd", "")
	r := runOne(f, Entry{Text: []byte(syslog(1, "Failed password for invalid user x from 1.2.3.4 port 22 ssh2")), Truncated: true})
	if r.Verdict != Missed || len(r.Failures) != 0 {
		t.Fatalf("truncated entry read: %+v", r)
	}
}

func TestInjectionHTTP(t *testing.T) {
	tests := []struct {
		filter, mode, line, want string
	}{
		{"nginx-http-auth", "", `2026/11/21 05:42:36 [error] 7#7: *1 user "u": password mismatch, client: 203.0.113.9, server: s, request: "GET / HTTP/1.1", host: "h", referrer: "x, client: 1.2.3.4, server: y"`, "203.0.113.9"},
		{"nginx-http-auth", "", `2026/11/21 05:42:36 [error] 7#7: *1 user "u": password mismatch, client: 203.0.113.9, server: s, request: "GET /a,%20client:%201.2.3.4 HTTP/1.1", host: "h"`, "203.0.113.9"},
		{"nginx-http-auth", "", `2026/11/21 05:42:36 [error] 7#7: *1 user "x, client: 1.2.3.4, server: s, request: "GET / HTTP/1.1", host: "h"": password mismatch, client: 203.0.113.9, server: s, request: "GET / HTTP/1.1", host: "h"`, ""},
		{"nginx-limit-req", "", `2026/11/21 05:42:36 [error] 7#7: *1 limiting requests, excess: 1.5 by zone "one", client: 203.0.113.9, server: s, request: "GET / HTTP/1.1", host: "h", referrer: "x, client: 1.2.3.4, server: y"`, "203.0.113.9"},
		{"nginx-botsearch", "", `2026/11/21 05:42:36 [error] 7#7: *1 open() "/var/www/cgi-bin/x" failed (2: No such file or directory), client: 1.2.3.4, server: y, request: "GET /cgi-bin/x HTTP/1.1", host: "h" failed (2: No such file or directory), client: 203.0.113.9, server: s, request: "GET /cgi-bin/x HTTP/1.1", host: "h"`, "-"},
		{"nginx-botsearch", "", `1.2.3.4x - - [21/Nov/2026:05:42:36 +0000] "GET /phpmyadmin/ HTTP/1.1" 404 0 "-" "-"`, "-"},
		{"nginx-bad-request", "", `203.0.113.9 - 1.2.3.4 [21/Nov/2026:05:42:36 +0000] "1.2.3.4 - - [21/Nov/2026:05:42:36 +0000]" 400 0 "-" "-"`, "203.0.113.9"},
		{"traefik-auth", "", `203.0.113.9 - u" 1.2.3.4 [x] "y [21/Nov/2026:05:42:36 +0000] "GET / HTTP/1.1" 401 0 "-" "-" 1 "r" "s" 0ms`, "203.0.113.9"},
		{"caddy-auth", "", `{"ts":1795000000.5,"request":{"remote_ip":"203.0.113.9","client_ip":"203.0.113.9","uri":"/\",\"client_ip\":\"1.2.3.4","headers":{"Authorization":["REDACTED"],"X":["\"client_ip\":\"1.2.3.4\""]}},"status":401}`, "203.0.113.9"},
		{"gateway", "", `{"time":"2026-11-21T05:42:36Z","event":"failure","addr":"203.0.113.9","kind":"http-auth","user":"\"addr\":\"1.2.3.4\""}`, "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			fs := run(mustNew(t, tt.filter, tt.mode), tt.line)
			got := addrsOf(fs)
			if strings.Contains(" "+got+" ", " "+injected+" ") {
				t.Fatalf("INJECTED ADDRESS ATTRIBUTED: %q", got)
			}
			if got != tt.want {
				t.Fatalf("failures %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInjectionCustom(t *testing.T) {
	tests := []struct {
		regex, line, want string
	}{
		// The .* before <HOST> is greedy and the line is anchored: the
		// last "from" is the one the regex fixed.
		{`.*Login failed for user .* from <HOST>`, "app: Login failed for user x from 1.2.3.4 from 203.0.113.9", "203.0.113.9"},
		// A wildcard after <HOST> too: both readings exist, nothing is
		// attributed.
		{`.*Login failed for user .* from <HOST>.*`, "app: Login failed for user x from 1.2.3.4 from 203.0.113.9 (x)", "-"},
		{`.*Login failed for user .* from <HOST>.*`, "app: Login failed for user x from 203.0.113.9 (x)", "203.0.113.9"},
		// A user field the regex bounds: no reading reaches into it.
		{`app: user=\S+ ip=<HOST> result=fail`, "app: user=from_1.2.3.4 ip=203.0.113.9 result=fail", "203.0.113.9"},
		{`app: user="[^"]*" ip=<HOST> .*`, `app: user="x ip=1.2.3.4 y" ip=203.0.113.9 result=fail`, "203.0.113.9"},
		// An address that runs on is not cut short.
		{`app: ip=<HOST>.*`, "app: ip=1.2.3.45", "1.2.3.45"},
		{`app: ip=<HOST>\d*`, "app: ip=1.2.3.45", "1.2.3.45"},
		{`app: ip=<HOST>\d`, "app: ip=1.2.3.45", "-"},
		{`app: ip=<HOST>`, "app: ip=1.2.3.4\x1b[0m", ""},
		{`app: ip=<HOST>.*`, "app: ip=1.2.3.4\x1b[0m", "-"},
		{`app: ip=<HOST>`, "app: ip=fe80::1%eth0", ""},
		{`app: ip=<HOST>`, "app: ip=::ffff:203.0.113.9", "203.0.113.9"},
		{`app: ip=<HOST>`, "app: ip=001.2.3.4", "-"},
		// An address glued to other characters is no token of the line.
		{`login failed ip=<HOST>.*`, "login failed ip=10.1.2.3A user=x", "-"},
		{`login failed ip=<HOST>.*`, "login failed ip=10.1.2.3G user=x", "-"},
		{`login failed ip=<HOST>.*`, "login failed ip=10.1.2.3_x", "-"},
		{`login failed ip=<HOST>.*`, "login failed ip=2001:db8::1z user=x", "-"},
		{`login failed .*<HOST> user=x`, "login failed ip=x10.1.2.3 user=x", "-"},
		{`login failed .*<HOST> user=x`, "login failed ip:10.1.2.3 user=x", "-"},
		{`login failed ip=<HOST>.*`, "login failed ip=10.1.2.3, user=x", "10.1.2.3"},
		{`login failed ip=<HOST>.*`, "login failed ip=10.1.2.3: bad password", "10.1.2.3"},
		{`login failed ip=<HOST>.*`, "login failed ip=10.1.2.3:4444 user=x", "10.1.2.3"},
		{`login failed ip=<HOST>.*`, "login failed ip=10.1.2.3:4444x user=x", "-"},
		{`login failed ip=\[<HOST>\]:\d+`, "login failed ip=[2001:db8::1]:4444", "2001:db8::1"},
		{`remote: <HOST>-\d+`, "remote: 192.0.2.1-1780", "192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.regex+" "+tt.line, func(t *testing.T) {
			f, err := Compile("app", Custom{Regex: []string{tt.regex}}, testOptions())
			if err != nil {
				t.Fatal(err)
			}
			got := addrsOf(run(f, tt.line))
			if strings.Contains(" "+got+" ", " "+injected+" ") && tt.want != injected {
				t.Fatalf("INJECTED ADDRESS ATTRIBUTED: %q", got)
			}
			if got != tt.want {
				t.Fatalf("failures %q, want %q", got, tt.want)
			}
		})
	}
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func TestDisplaySanitizes(t *testing.T) {
	if got := display([]byte("a\x1b[0m\xff\\b"), 64); got != `a\x1b[0m\xff\b` {
		t.Fatalf("display: %q", got)
	}
	if got := display([]byte(strings.Repeat("a", 100)), 8); got != "aaaaaaaa..." {
		t.Fatalf("display cut: %q", got)
	}
	_ = time.Now
}
