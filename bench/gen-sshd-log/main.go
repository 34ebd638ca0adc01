// Command gen-sshd-log writes a realistic sshd auth.log for bench/guard.sh:
// OpenSSH 9 at LogLevel INFO with PAM, password guessing from thousands of
// IPv4 and IPv6 attackers, key-only probes, scanners, successful logins
// and other daemons' noise.
//
//	go run ./bench/gen-sshd-log -lines 1000000 -o /tmp/auth.log
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/moat-sh/moat/internal/filter/filtertest"
)

func main() {
	var g filtertest.SSHDLog
	out := flag.String("o", "-", "output `file` (- is stdout)")
	flag.IntVar(&g.Lines, "lines", 1000000, "lines to write (at least)")
	flag.IntVar(&g.Attackers, "attackers", 5000, "distinct attacking addresses")
	flag.Uint64Var(&g.Seed, "seed", 1, "random seed")
	flag.StringVar(&g.Ident, "ident", "sshd", `sshd's syslog identifier: "sshd" or "sshd-session" (OpenSSH 9.8+; fail2ban 1.0.2 ignores it)`)
	flag.BoolVar(&g.ISO, "iso", false, "RFC 3339 timestamps instead of \"Nov 21 05:42:36\"")
	flag.Float64Var(&g.Rate, "rate", 20, "mean lines per second of log time")
	start := flag.String("start", "", "time of the first line, RFC 3339 (default: so that the last line is about now)")
	flag.Parse()
	if *start != "" {
		t, err := time.Parse(time.RFC3339, *start)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gen-sshd-log: -start: %v\n", err)
			os.Exit(2)
		}
		g.Start = t
	} else {
		g.Start = time.Now().Add(-time.Duration(float64(g.Lines) / g.Rate * float64(time.Second)))
	}
	w := os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gen-sshd-log: %v\n", err)
			os.Exit(1)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	st, err := g.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gen-sshd-log: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "gen-sshd-log: %d lines, %d failed attempts, %d logins\n", st.Lines, st.Failures, st.Successes)
}
