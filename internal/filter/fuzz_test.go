package filter

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for every parser of outside input. Besides "no panic", they
// check what can be checked of injection safety:
//
//   - any address a filter reports is written in the line, as a whole
//     token (never a piece of a longer one);
//   - in lines built from the service's own format with attacker fields
//     filled by the fuzzer (user names, auth info, requests, referrers,
//     sanitized as the service itself sanitizes them), the only address
//     ever reported is the real peer's.

const realPeer = "203.0.113.9"

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "::ffff:1.2.3.4", "2001:db8::1", "::", "1::", "::1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8", "01.2.3.4", "1.2.3", "fe80::1%eth0", "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseAddr([]byte(s))
		want, err := netip.ParseAddr(s)
		if strings.Contains(s, "%") {
			if ok {
				t.Fatalf("%q: zone accepted", s)
			}
			return
		}
		if ok != (err == nil) || ok && got != want.Unmap() {
			t.Fatalf("%q: parseAddr %v %v, netip %v %v", s, got, ok, want, err)
		}
	})
}

// inLine reports whether a is written in line as a whole token.
func inLine(line []byte, a netip.Addr) bool {
	// Tokens are runs of letters, digits and '.', ':', '_', '%'; one
	// holds a as a whole, or as "ADDR:" (punctuation) or "IPv4:PORT".
	toks := bytes.FieldsFunc(line, func(r rune) bool {
		return !(r < 0x80 && (r >= '0' && r <= '9' || r|0x20 >= 'a' && r|0x20 <= 'z' || strings.ContainsRune(".:_%", r)))
	})
	for _, tok := range toks {
		cands := [][]byte{tok, bytes.TrimSuffix(tok, []byte(":"))}
		if i := bytes.LastIndexByte(tok, ':'); i > 0 && i < len(tok)-1 && len(tok)-i-1 <= 5 {
			if _, err := strconv.Atoi(string(tok[i+1:])); err == nil {
				if v4, ok := parseAddr(tok[:i]); ok && v4.Is4() {
					cands = append(cands, tok[:i])
				}
			}
		}
		for _, t := range cands {
			if b, ok := parseAddr(t); ok && b == a {
				return true
			}
		}
	}
	return false
}

func checkFound(t *testing.T, name string, line []byte, fs []Failure) {
	t.Helper()
	checkFoundIn(t, name, line, line, fs)
}

// checkFoundIn checks the failures line produced, whose addresses may
// come from the lines of context (the line and those before it).
func checkFoundIn(t *testing.T, name string, line, context []byte, fs []Failure) {
	t.Helper()
	for _, fl := range fs {
		if fl.Attempts < 1 {
			t.Fatalf("%s: attempts %d", name, fl.Attempts)
		}
		if !fl.Addr.IsValid() {
			continue
		}
		if !clean(line) {
			t.Fatalf("%s: attributed %v from a line with control characters %q", name, fl.Addr, line)
		}
		if !inLine(context, fl.Addr) {
			t.Fatalf("%s: attributed %v, not a token of %q", name, fl.Addr, context)
		}
	}
}

func FuzzSSHD(f *testing.F) {
	for _, s := range []string{
		"Nov 21 05:42:36 vps sshd[1]: Failed password for root from 203.0.113.9 port 22 ssh2",
		"Nov 21 05:42:36 vps sshd-session[1]: Invalid user a from 2001:db8::1 port 22",
		"2026-11-21T05:42:36.1+00:00 vps sshd[1]: Connection closed by authenticating user root 1.2.3.4 port 22 [preauth]",
		"<38>1 2026-11-21T05:42:36Z h sshd 5 - - Failed unknown for invalid user r from 1.2.3.4 port 5 ssh2",
		"Nov 21 05:42:36 vps sshd[1]: Received disconnect from 1.2.3.4 port 5:3: x: Auth fail [preauth]",
	} {
		f.Add([]byte(s), []byte("Nov 21 05:42:37 vps sshd[1]: Disconnecting: Too many authentication failures [preauth]"))
	}
	modes, _ := Modes("sshd")
	f.Fuzz(func(t *testing.T, a, b []byte) {
		for _, m := range modes {
			fl := mustNew(t, "sshd", m)
			var r Result
			fl.Process(Entry{Text: a}, &r)
			checkFound(t, "sshd "+m, a, r.Failures)
			// The second line may report the connection's address, which
			// the first gave.
			r.Reset()
			fl.Process(Entry{Text: b}, &r)
			checkFoundIn(t, "sshd "+m, b, append(append(append([]byte(nil), a...), ' '), b...), r.Failures)
			r.Reset()
			fl.Process(Entry{Text: a, Time: testNow, Ident: "sshd", PID: 3}, &r)
			checkFound(t, "sshd journal "+m, a, r.Failures)
		}
	})
}

// sshdVis sanitizes fuzzer bytes as sshd does what it logs: printable
// ASCII stays, anything else becomes \ooo (vis(3) VIS_OCTAL).
func sshdVis(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			s.WriteByte(c)
		} else {
			s.WriteByte('\\')
			s.WriteByte('0' + c>>6)
			s.WriteByte('0' + c>>3&7)
			s.WriteByte('0' + c&7)
		}
	}
	return s.String()
}

func FuzzSSHDInjection(f *testing.F) {
	f.Add([]byte("x from 1.2.3.4 port 22 ssh2"), []byte("from 1.2.3.4 port 22 ssh2"))
	f.Add([]byte("a from 1.2.3.4 port 22 ssh2: b"), []byte(`x", client host "1.2.3.4`))
	f.Add([]byte("root 1.2.3.4 port 22"), []byte(""))
	f.Add([]byte(""), []byte("rhost=1.2.3.4"))
	modes, _ := Modes("sshd")
	f.Fuzz(func(t *testing.T, user, info []byte) {
		u, in := sshdVis(user), sshdVis(info)
		const p = "Nov 21 05:42:36 vps sshd[77]: "
		lines := []string{
			p + "Failed password for invalid user " + u + " from " + realPeer + " port 5555 ssh2",
			p + "Failed publickey for invalid user " + u + " from " + realPeer + " port 5555 ssh2: ED25519 SHA256:" + in,
			p + "Failed hostbased for invalid user " + u + " from " + realPeer + ` port 5555 ssh2: RSA SHA256:x, client user "` + in + `", client host "` + u + `"`,
			p + "Failed keyboard-interactive/pam for invalid user " + u + " from " + realPeer + " port 5555 ssh2",
			p + "Invalid user " + u + " from " + realPeer + " port 5555",
			p + "Connection closed by authenticating user " + u + " " + realPeer + " port 5555 [preauth]",
			p + "Connection closed by invalid user " + u + " " + realPeer + " port 5555 [preauth]",
			p + "Disconnected from invalid user " + u + " " + realPeer + " port 5555 [preauth]",
			p + "error: maximum authentication attempts exceeded for invalid user " + u + " from " + realPeer + " port 5555 ssh2 [preauth]",
			p + "Disconnecting invalid user " + u + " " + realPeer + " port 5555: Too many authentication failures [preauth]",
			p + "Disconnecting invalid user " + u + " " + realPeer + " port 5555: Change of username or service not allowed: (" + u + ",ssh-connection) -> (" + in + ",ssh-connection) [preauth]",
			p + "User " + u + " from " + realPeer + " not allowed because not listed in AllowUsers",
			p + "error: PAM: Authentication failure for " + u + " from " + realPeer,
			p + "error: PAM: User not known to the underlying authentication module for illegal user " + u + " from " + realPeer,
			p + "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=" + u + " rhost=" + realPeer + "  user=" + u,
			p + "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=" + in + " rhost=" + realPeer,
			p + "Bad protocol version identification '" + u + "' from " + realPeer + " port 5555",
			p + "Received disconnect from " + realPeer + " port 5555:3: " + u + ": Auth fail [preauth]",
			p + "Unable to negotiate with " + realPeer + " port 5555: no matching cipher found. Their offer: " + u + " [preauth]",
			p + "Accepted password for root from " + realPeer + " port 5555 ssh2",
		}
		for _, m := range modes {
			fl := mustNew(t, "sshd", m)
			var r Result
			for _, l := range lines {
				r.Reset()
				fl.Process(Entry{Text: []byte(l)}, &r)
				for _, x := range r.Failures {
					if x.Addr.IsValid() && x.Addr.String() != realPeer {
						t.Fatalf("mode %s: %v attributed from %q", m, x.Addr, l)
					}
				}
				for _, s := range r.Successes {
					if s.Addr.String() != realPeer {
						t.Fatalf("mode %s: success from %v in %q", m, s.Addr, l)
					}
				}
			}
		}
	})
}

func FuzzHTTP(f *testing.F) {
	for _, s := range []string{
		`2026/11/21 05:42:36 [error] 7#7: *1 user "bob": password mismatch, client: 203.0.113.9, server: s, request: "GET / HTTP/1.1", host: "h"`,
		`2026/11/21 05:42:36 [error] 7#7: *1 limiting requests, excess: 1.5 by zone "one", client: 2001:db8::1, server: s`,
		`2026/11/21 05:42:36 [error] 7#7: *1 open() "/var/www/cgi-bin/x" failed (2: No such file or directory), client: 203.0.113.9, server: s, request: "GET /cgi-bin/x HTTP/1.1", host: "h"`,
		`203.0.113.9 - bob [21/Nov/2026:05:42:36 +0000] "GET /wp-login.php HTTP/1.1" 404 0 "-" "-"`,
		`203.0.113.9 - bob [21/Nov/2026:05:42:36 +0000] "GET / HTTP/2.0" 401 17 "-" "curl" 72 "r" "/" 0ms`,
		`{"ts":1795000000.25,"request":{"remote_ip":"203.0.113.9","headers":{"Authorization":["REDACTED"]}},"status":401}`,
		`{"ClientHost":"203.0.113.9","ClientUsername":"bob","DownstreamStatus":401}`,
		`{"time":"2026-11-21T05:42:36Z","event":"failure","addr":"203.0.113.9","kind":"http-auth"}`,
		`host nginx[1]: host nginx: 2026/11/21 05:42:36 [error] 7#7: *1 access forbidden by rule, client: 203.0.113.9, server: s`,
	} {
		f.Add([]byte(s))
	}
	type fm struct{ name, mode string }
	var all []fm
	for _, n := range Builtins() {
		if n == "sshd" {
			continue
		}
		modes, _ := Modes(n)
		for _, m := range modes {
			all = append(all, fm{n, m})
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, x := range all {
			fl := mustNew(t, x.name, x.mode)
			var r Result
			fl.Process(Entry{Text: line}, &r)
			if x.name == "caddy-auth" || x.name == "gateway" || x.name == "traefik-auth" && len(line) > 0 && line[0] == '{' {
				continue // JSON: the address is a decoded string, checked below
			}
			checkFound(t, x.name+" "+x.mode, line, r.Failures)
			r.Reset()
			fl.Process(Entry{Text: line, Time: testNow}, &r)
			checkFound(t, x.name+" "+x.mode+" journal", line, r.Failures)
		}
	})
}

// nginxUser sanitizes fuzzer bytes into what nginx can log as a basic-auth
// user name: no ':' (nginx cuts the credentials there), no control
// characters (moat reads no line holding them).
func nginxUser(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r == ':' || r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, string(b))
}

// printable replaces control characters (moat reads no line holding
// them).
func printable(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, string(b))
}

// noSpace sanitizes fuzzer bytes into a request target or Host header:
// nginx refuses spaces and control characters there.
func noSpace(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r <= 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, string(b))
}

func FuzzNginxInjection(f *testing.F) {
	f.Add([]byte(`x", client: 1.2.3.4, server: s`), []byte(`/,client:1.2.3.4`), []byte(`x, client: 1.2.3.4, server: y`))
	f.Add([]byte(`u`), []byte(`/"`), []byte(`x", client: 1.2.3.4, server: s, request: "GET / HTTP/1.1", host: "h`))
	f.Fuzz(func(t *testing.T, user, uri, ref []byte) {
		u, p, rf := nginxUser(user), noSpace(uri), printable(ref)
		const pre = "2026/11/21 05:42:36 [error] 7#7: *1 "
		tail := ", client: " + realPeer + ", server: s, request: \"GET " + p + " HTTP/1.1\", host: \"" + p + "\", referrer: \"" + rf + "\""
		cases := map[string]string{
			"nginx-http-auth":   pre + `user "` + u + `": password mismatch` + tail,
			"nginx-limit-req":   pre + `limiting requests, excess: 1.5 by zone "one"` + tail,
			"nginx-forbidden":   pre + `access forbidden by rule` + tail,
			"nginx-botsearch":   pre + `open() "/var/www/cgi-bin/` + nginxUser(uri) + `" failed (2: No such file or directory)` + tail,
			"nginx-bad-request": realPeer + ` - ` + noSpace(user) + ` [21/Nov/2026:05:42:36 +0000] "` + strings.ReplaceAll(nginxUser(uri), `"`, `\x22`) + `" 400 0 "` + strings.ReplaceAll(rf, `"`, `\x22`) + `" "-"`,
			"traefik-auth":      realPeer + ` - ` + u + ` [21/Nov/2026:05:42:36 +0000] "GET ` + p + ` HTTP/1.1" 401 0 "` + rf + `" "` + u + `" 1 "r" "s" 0ms`,
		}
		for name, line := range cases {
			modes, _ := Modes(name)
			for _, m := range modes {
				for _, x := range run(mustNew(t, name, m), line) {
					if x.Addr.IsValid() && x.Addr.String() != realPeer {
						t.Fatalf("%s %s: %v attributed from %q", name, m, x.Addr, line)
					}
				}
			}
		}
	})
}

func FuzzCustomInjection(f *testing.F) {
	f.Add([]byte("x from 1.2.3.4"))
	f.Add([]byte(`" ip=1.2.3.4 "`))
	res := []string{
		`.*Login failed for user .* from <HOST>`,
		`.*Login failed for user .* from <HOST>.*`,
		`.*user="[^"]*" ip=<HOST>( .*)?`,
		`(?:\S+ ){2}app\[\d+\]: .* from <HOST> port \d+`,
	}
	var fs []Filter
	for _, re := range res {
		fl, err := Compile("app", Custom{Regex: []string{re}}, testOptions())
		if err != nil {
			f.Fatal(err)
		}
		fs = append(fs, fl)
	}
	f.Fuzz(func(t *testing.T, user []byte) {
		u := sshdVis(user)
		lines := []string{
			"app: Login failed for user " + u + " from " + realPeer,
			`app: user="` + strings.ReplaceAll(u, `"`, `'`) + `" ip=` + realPeer + " result=fail",
			"Nov 21 05:42:36 web app[1]: login for " + u + " from " + realPeer + " port 4444",
		}
		for i, fl := range fs {
			for _, l := range lines {
				for _, x := range run(fl, l) {
					if x.Addr.IsValid() && x.Addr.String() != realPeer {
						t.Fatalf("regex %q: %v attributed from %q", res[i], x.Addr, l)
					}
				}
			}
		}
	})
}

func FuzzCustom(f *testing.F) {
	f.Add(`.* from <HOST> port \d+`, []byte("a from 1.2.3.4 port 22"))
	f.Add(`(?P<user>\S+) <HOST>`, []byte("x ::1"))
	f.Fuzz(func(t *testing.T, re string, line []byte) {
		fl, err := Compile("x", Custom{Regex: []string{re}}, testOptions())
		if err != nil {
			return
		}
		var r Result
		fl.Process(Entry{Text: line}, &r)
		checkFound(t, "custom "+re, line, r.Failures)
	})
}

func FuzzSyslogHeader(f *testing.F) {
	for _, s := range []string{"Nov 21 05:42:36 vps sshd[123]: x", "<38>1 2026-11-21T05:42:36Z h a 1 - [x y=\"]\"] m", "2026-11-21T05:42:36.5+01:00 h t: m", "srv sshd[1]: m"} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, noStamp bool) {
		c := newClock(Options{Location: time.UTC, Now: func() time.Time { return testNow }})
		var h header
		if c.syslogHeader(b, &h, noStamp) {
			if !bytes.HasSuffix(b, h.msg) || len(h.ident) == 0 {
				t.Fatalf("%q: ident %q msg %q", b, h.ident, h.msg)
			}
		}
		var l ngxLine
		c.accessLine(b, &l)
		c.isoStamp(b)
		c.clfStamp(b)
		c.slashStamp(b)
	})
}

func FuzzClean(f *testing.F) {
	f.Add([]byte("Nov 21 05:42:36 vps sshd[1]: \tx\x7f"))
	f.Add([]byte("\xff\xfe\x80\x9f\xa0 ~~~~~~~~"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if clean(b) != cleanBytes(b) {
			t.Fatalf("%q: clean %v, bytewise %v", b, clean(b), cleanBytes(b))
		}
	})
}

// FuzzEntryFromFields: whatever the fields a sender controls say
// (SYSLOG_IDENTIFIER, SYSLOG_PID, MESSAGE with a syslog header in it),
// an entry whose trusted fields are not root's sshd produces no failure;
// and with trusted fields set, the untrusted ones change nothing.
func FuzzEntryFromFields(f *testing.F) {
	f.Add("sshd", "1", "Invalid user x from 192.0.2.9 port 22", "logger", "1000", "77")
	f.Add("sshd-session", "4242", "sshd[1]: Failed password for root from 192.0.2.9 port 22 ssh2", "", "0", "")
	f.Add("sshd", "", "Failed password for root from 192.0.2.9 port 22 ssh2", "sshd", "33", "9")
	modes, _ := Modes("sshd")
	f.Fuzz(func(t *testing.T, ident, spid, msg, comm, uid, pid string) {
		fields := map[string]string{"SYSLOG_IDENTIFIER": ident, "SYSLOG_PID": spid, "_COMM": comm, "_UID": uid, "_PID": pid}
		trusted := isSSHDIdentStr(comm) && uid == "0"
		for _, m := range modes {
			fl := mustNew(t, "sshd", m)
			var r Result
			fl.Process(EntryFromFields([]byte(msg), testNow, fields), &r)
			if !trusted && r.Verdict != Missed {
				t.Fatalf("%s: entry with _COMM=%q _UID=%q read as sshd's: %+v", m, comm, uid, r)
			}
			checkFound(t, "sshd "+m, []byte(msg), r.Failures)
			// The sender's own fields do not change the reading.
			fl2 := mustNew(t, "sshd", m)
			var r2 Result
			fl2.Process(EntryFromFields([]byte(msg), testNow, map[string]string{"_COMM": comm, "_UID": uid, "_PID": pid}), &r2)
			if addrsOf(r.Failures) != addrsOf(r2.Failures) || r.Verdict != r2.Verdict {
				t.Fatalf("%s: SYSLOG_IDENTIFIER=%q SYSLOG_PID=%q changed the reading: %+v vs %+v", m, ident, spid, r, r2)
			}
		}
	})
}
