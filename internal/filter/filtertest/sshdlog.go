// Package filtertest generates realistic logs for the filters' tests and
// benchmarks (and bench/guard.sh), so that no large log is committed.
package filtertest

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"
)

// SSHDLog describes a generated auth.log.
type SSHDLog struct {
	Lines     int       // at least this many lines are written
	Attackers int       // distinct attacking addresses (a fifth IPv6); 0 is 5000
	Start     time.Time // the first line's time; zero is 2026-11-20 00:00 UTC
	Seed      uint64
	// Ident is sshd's syslog identifier: "sshd" (OpenSSH up to 9.7) or
	// "sshd-session" (9.8 and later); empty is "sshd".
	Ident string
	// ISO writes RFC 3339 stamps (rsyslog's high-precision format)
	// instead of "Nov 21 05:42:36".
	ISO bool
	// Rate is the mean lines per second of log time; 0 is 20.
	Rate float64
}

// Stats counts what a generated log holds.
type Stats struct {
	Lines, Failures, Successes int
}

// Write writes the log to w: OpenSSH 9 at LogLevel INFO with PAM, as on
// Debian: password guessing against valid and invalid users (with
// "maximum authentication attempts exceeded"), probes of key-only
// accounts, scanners (kex errors, negotiation failures), successful key
// logins with their sessions, and the noise of other daemons.
func (g SSHDLog) Write(w io.Writer) (Stats, error) {
	if g.Attackers <= 0 {
		g.Attackers = 5000
	}
	if g.Start.IsZero() {
		g.Start = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	}
	if g.Ident == "" {
		g.Ident = "sshd"
	}
	if g.Rate <= 0 {
		g.Rate = 20
	}
	r := rand.New(rand.NewPCG(g.Seed, 0x6d6f6174))
	attackers := make([]netip.Addr, g.Attackers)
	for i := range attackers {
		if i%5 == 4 {
			var b [16]byte
			b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
			for j := 4; j < 16; j++ {
				b[j] = byte(r.UintN(256))
			}
			attackers[i] = netip.AddrFrom16(b)
		} else {
			attackers[i] = netip.AddrFrom4([4]byte{byte(1 + r.UintN(222)), byte(r.UintN(256)), byte(r.UintN(256)), byte(1 + r.UintN(254))})
		}
	}
	admins := []netip.Addr{netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("2001:db8:100::10")}
	users := []string{"root", "admin", "ubuntu", "test", "user", "oracle", "postgres", "git", "deploy", "pi", "ftpuser", "support", "guest", "hadoop", "minecraft", "a b", ""}
	validUsers := map[string]bool{"root": true, "deploy": true, "git": true}

	bw := bufio.NewWriterSize(w, 1<<20)
	var st Stats
	t := g.Start
	pid := 10000
	var buf []byte
	emit := func(ident string, pid int, msg string) {
		t = t.Add(time.Duration(r.ExpFloat64() / g.Rate * float64(time.Second)))
		buf = buf[:0]
		if g.ISO {
			buf = t.AppendFormat(buf, "2006-01-02T15:04:05.000000-07:00")
		} else {
			buf = t.AppendFormat(buf, time.Stamp)
		}
		buf = append(buf, " vps "...)
		buf = append(buf, ident...)
		if pid > 0 {
			buf = fmt.Appendf(buf, "[%d]", pid)
		}
		buf = append(buf, ": "...)
		buf = append(buf, msg...)
		buf = append(buf, '\n')
		bw.Write(buf)
		st.Lines++
	}
	sshd := func(msg string, args ...any) { emit(g.Ident, pid, fmt.Sprintf(msg, args...)) }
	// A zipf-like pick: a few attackers do most of the work.
	attacker := func() netip.Addr {
		return attackers[int(float64(len(attackers))*r.Float64()*r.Float64())]
	}
	for st.Lines < g.Lines {
		pid += 1 + int(r.UintN(7))
		if pid > 4000000 {
			pid = 10000
		}
		port := 1024 + r.UintN(64000)
		switch k := r.UintN(100); {
		case k < 30: // password guessing, invalid user
			a, u := attacker(), users[r.IntN(len(users))]
			if validUsers[u] {
				u = "admin"
			}
			sshd("Invalid user %s from %s port %d", u, a, port)
			sshd("pam_unix(sshd:auth): check pass; user unknown")
			sshd("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s", a)
			sshd("Failed password for invalid user %s from %s port %d ssh2", u, a, port)
			st.Failures += 2
			sshd("Received disconnect from %s port %d:11: Bye Bye [preauth]", a, port)
			sshd("Disconnected from invalid user %s %s port %d [preauth]", u, a, port)
		case k < 45: // password guessing against root, up to MaxAuthTries
			a := attacker()
			n := 1 + int(r.UintN(6))
			for range n {
				sshd("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=root", a)
				sshd("Failed password for root from %s port %d ssh2", a, port)
				st.Failures++
			}
			if n == 6 {
				sshd("error: maximum authentication attempts exceeded for root from %s port %d ssh2 [preauth]", a, port)
				sshd("Disconnecting authenticating user root %s port %d: Too many authentication failures [preauth]", a, port)
				st.Failures++
			} else {
				sshd("Connection closed by authenticating user root %s port %d [preauth]", a, port)
			}
		case k < 60: // a key-only server's usual probe
			a := attacker()
			sshd("Connection closed by authenticating user %s %s port %d [preauth]", []string{"root", "git", "deploy"}[r.UintN(3)], a, port)
			st.Failures++
		case k < 68: // scanners
			a := attacker()
			switch r.UintN(4) {
			case 0:
				sshd("error: kex_exchange_identification: Connection closed by remote host")
				sshd("Connection closed by %s port %d", a, port)
			case 1:
				sshd("error: kex_exchange_identification: read: Connection reset by peer")
				sshd("Connection reset by %s port %d", a, port)
			case 2:
				sshd("banner exchange: Connection from %s port %d: invalid format", a, port)
			default:
				sshd("Unable to negotiate with %s port %d: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1,diffie-hellman-group14-sha1 [preauth]", a, port)
			}
		case k < 73: // the admin logs in with a key
			a := admins[r.IntN(len(admins))]
			sshd("Accepted publickey for deploy from %s port %d ssh2: ED25519 SHA256:3a6kXG0xJ2bAvp0FfZ9lqY1QmR7vT4nH8sWcLdEuKoI", a, port)
			sshd("pam_unix(sshd:session): session opened for user deploy(uid=1000) by deploy(uid=0)")
			st.Successes++
			sshd("Received disconnect from %s port %d:11: disconnected by user", a, port)
			sshd("Disconnected from user deploy %s port %d", a, port)
			sshd("pam_unix(sshd:session): session closed for user deploy")
		default: // other daemons
			switch r.UintN(6) {
			case 0:
				emit("CRON", pid, "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)")
				emit("CRON", pid, "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)")
				emit("CRON", pid, "pam_unix(cron:session): session closed for user root")
			case 1:
				emit("systemd", 1, "Started session-42.scope - Session 42 of User deploy.")
				emit("systemd-logind", 612, "New session 42 of user deploy.")
			case 2:
				emit("kernel", 0, fmt.Sprintf("[UFW BLOCK] IN=eth0 OUT= MAC=00:00:5e:00:53:01 SRC=%s DST=192.0.2.1 LEN=40 TOS=0x00 PREC=0x00 TTL=244 ID=54321 PROTO=TCP SPT=%d DPT=23 WINDOW=1024 RES=0x00 SYN URGP=0", attacker(), port))
			case 3:
				emit("sudo", 0, "  deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl restart app")
				emit("sudo", 0, "pam_unix(sudo:session): session opened for user root(uid=0) by deploy(uid=1000)")
			case 4:
				emit("postfix/smtpd", pid, fmt.Sprintf("connect from unknown[%s]", attacker()))
				emit("postfix/smtpd", pid, fmt.Sprintf("disconnect from unknown[%s] ehlo=1 auth=0/1 quit=1 commands=2/3", attacker()))
			default:
				emit("systemd", 1, "Starting apt-daily.service - Daily apt download activities...")
			}
		}
	}
	return st, bw.Flush()
}
