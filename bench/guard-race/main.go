// Command guard-race times two ban daemons on the same lines, through the
// kernel: bench/guard.sh race sets up a network namespace with `moat run`
// and fail2ban each following their own copy of an sshd log, and this
// program writes the lines and watches `nft monitor` in the namespace for
// the elements each daemon adds to its ban set.
//
//	guard-race -ns NS -moat-log A -f2b-log B [-n 200] [-phase race|burst|spray]
//
// race: N single failures (maxretry 1 jails), one attacker at a time, each
// line written to both logs (the order alternates); a ban is timed from
// its own write() to the element's "add element" event. burst: 5,000
// attackers with 40 lines each (maxretry 5 jails) written at once, to
// moat's log then, once moat has banned all, to fail2ban's; timed until
// every attacker is in the set. spray: SPRAY single failures from distinct
// addresses (maxretry 5: tracked, not banned) to moat's log, then its peak
// RSS (VmHWM) with those tracked and the burst's bans.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	ns := flag.String("ns", "", "network `namespace` both daemons run in")
	moatLog := flag.String("moat-log", "", "the log `file` moat follows (race jail)")
	f2bLog := flag.String("f2b-log", "", "the log `file` fail2ban follows (race jail); empty: moat alone")
	moatBurst := flag.String("moat-burst-log", "", "moat's burst/spray jail log")
	f2bBurst := flag.String("f2b-burst-log", "", "fail2ban's burst jail log")
	n := flag.Int("n", 200, "bans in the race")
	gap := flag.Duration("gap", 20*time.Millisecond, "pause between race bans")
	first := flag.Int("first", 0, "race: the index of the first address (198.18.0.0 + first), so a second race bans new addresses")
	phase := flag.String("phase", "race", "race, burst or spray")
	attackers := flag.Int("attackers", 5000, "burst attackers")
	perAttacker := flag.Int("lines", 40, "burst lines per attacker")
	spray := flag.Int("spray", 1000000, "spray: distinct sources")
	f2bTimeout := flag.Duration("f2b-timeout", 180*time.Second, "how long fail2ban is given for the burst")
	moatPID := flag.Int("moat-pid", 0, "moat's pid (spray: its RSS)")
	moatBin := flag.String("moat", "", "the moat binary (spray: jail status)")
	sock := flag.String("socket", "", "moat's control socket (spray: jail status)")
	flag.Parse()

	mon, err := startMonitor(*ns)
	if err != nil {
		fail(err)
	}
	defer mon.stop()
	switch *phase {
	case "race":
		race(mon, *moatLog, *f2bLog, *first, *n, *gap)
	case "burst":
		burst(mon, *moatBurst, *f2bBurst, *attackers, *perAttacker, *f2bTimeout)
	case "spray":
		sprayRSS(*moatBurst, *spray, *moatPID, *moatBin, *sock)
	default:
		fail(fmt.Errorf("unknown phase %q", *phase))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "guard-race:", err)
	os.Exit(1)
}

func failLine(at time.Time, pid int, a netip.Addr) string {
	return fmt.Sprintf("%s vps sshd[%d]: Failed password for root from %s port %d ssh2\n", at.Format(time.Stamp), pid, a, 40000+pid%20000)
}

// monitor follows `nft monitor` and records when each element first
// appeared in each table.
type monitor struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	seen map[string]map[netip.Addr]time.Time // table → address → time
	cond *sync.Cond
}

func startMonitor(ns string) (*monitor, error) {
	args := []string{"monitor", "elements"}
	cmd := exec.Command("nft", args...)
	if ns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nft monitor: %w", err)
	}
	m := &monitor{cmd: cmd, seen: map[string]map[netip.Addr]time.Time{}}
	m.cond = sync.NewCond(&m.mu)
	go func() {
		r := bufio.NewReaderSize(out, 1<<20)
		for {
			line, err := r.ReadString('\n')
			now := time.Now()
			// "create" is an add with NLM_F_EXCL, as moat adds ban elements.
			if f := strings.Fields(line); len(f) > 4 && (f[0] == "add" || f[0] == "create") && f[1] == "element" {
				table := f[3]
				m.mu.Lock()
				if m.seen[table] == nil {
					m.seen[table] = map[netip.Addr]time.Time{}
				}
				for _, tok := range f[5:] {
					tok = strings.Trim(tok, "{},")
					tok, _, _ = strings.Cut(tok, "/")
					if a, err := netip.ParseAddr(tok); err == nil {
						if _, ok := m.seen[table][a]; !ok {
							m.seen[table][a] = now
						}
					}
				}
				m.cond.Broadcast()
				m.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // nft subscribes
	return m, nil
}

func (m *monitor) stop() { m.cmd.Process.Kill(); m.cmd.Wait() }

// wait returns when table holds a, or false after timeout.
func (m *monitor) wait(table string, a netip.Addr, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, func() { m.mu.Lock(); m.cond.Broadcast(); m.mu.Unlock() })
	defer t.Stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		if at, ok := m.seen[table][a]; ok {
			return at, true
		}
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		m.cond.Wait()
	}
}

// count returns how many of addrs table holds, and when the last came.
func (m *monitor) count(table string, addrs map[netip.Addr]bool) (int, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, last := 0, time.Time{}
	for a, at := range m.seen[table] {
		if addrs[a] {
			n++
			if at.After(last) {
				last = at
			}
		}
	}
	return n, last
}

const moatTable, f2bTable = "moat", "f2b-table"

func race(m *monitor, moatLog, f2bLog string, first, n int, gap time.Duration) {
	open := func(p string) *os.File {
		if p == "" {
			return nil
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			fail(err)
		}
		return f
	}
	mf, ff := open(moatLog), open(f2bLog)
	var moatLat, f2bLat []time.Duration
	missed := map[string]int{}
	for i := first; i < first+n; i++ {
		a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		line := []byte(failLine(time.Now(), 1000+i, a))
		var tm, tf time.Time
		writeMoat := func() { tm = time.Now(); mf.Write(line) }
		writeF2B := func() {
			if ff != nil {
				tf = time.Now()
				ff.Write(line)
			}
		}
		// Alternate who is written first.
		if i%2 == 0 {
			writeMoat()
			writeF2B()
		} else {
			writeF2B()
			writeMoat()
		}
		if at, ok := m.wait(moatTable, a, 5*time.Second); ok {
			moatLat = append(moatLat, at.Sub(tm))
		} else {
			missed["moat"]++
		}
		if ff != nil {
			if at, ok := m.wait(f2bTable, a, 5*time.Second); ok {
				f2bLat = append(f2bLat, at.Sub(tf))
			} else {
				missed["fail2ban"]++
			}
		}
		time.Sleep(gap)
	}
	if ff != nil {
		fmt.Printf("race: %d single failures (maxretry 1), each written to both logs; time from write() to the element in the kernel set (nft monitor)\n", n)
	} else {
		fmt.Printf("race, moat alone (fail2ban idle): %d single failures (maxretry 1); time from write() to the element in the kernel set (nft monitor)\n", n)
	}
	pm := report("moat run", moatLat, missed["moat"])
	if ff != nil {
		pf := report("fail2ban", f2bLat, missed["fail2ban"])
		if pm[0] > 0 && pm[1] > 0 {
			fmt.Printf("  ratio fail2ban / moat: p50 %.0fx, p99 %.0fx, max %.0fx\n", float64(pf[0])/float64(pm[0]), float64(pf[1])/float64(pm[1]), float64(pf[2])/float64(pm[2]))
		}
	}
}

// report prints p50/p99/max and returns them.
func report(who string, lat []time.Duration, missed int) [3]time.Duration {
	if len(lat) == 0 {
		fmt.Printf("  %-9s no bans seen (%d missed)\n", who, missed)
		return [3]time.Duration{}
	}
	slices.Sort(lat)
	p := [3]time.Duration{lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)], lat[len(lat)-1]}
	fmt.Printf("  %-9s p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms  (%d bans, %d not seen within 5 s)\n",
		who, ms(p[0]), ms(p[1]), ms(p[2]), len(lat), missed)
	return p
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func burst(m *monitor, moatLog, f2bLog string, attackers, per int, f2bTimeout time.Duration) {
	addrs := map[netip.Addr]bool{}
	var buf bytes.Buffer
	now := time.Now()
	for k := 0; k < per; k++ {
		for i := 0; i < attackers; i++ {
			a := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
			addrs[a] = true
			// A connection per line, as sshd forks one per client
			// (its pid keys the filter's connection state).
			buf.WriteString(failLine(now, 10000+k*attackers+i, a))
		}
	}
	fmt.Printf("burst: %d attackers x %d lines (%d lines, %.1f MB, maxretry 5) written at once; time until all are in the kernel set\n",
		attackers, per, attackers*per, float64(buf.Len())/1e6)
	one := func(who, table, path string, timeout time.Duration) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		t0 := time.Now()
		f.Write(buf.Bytes())
		deadline := t0.Add(timeout)
		for {
			got, last := m.count(table, addrs)
			if got == attackers {
				fmt.Printf("  %-9s all %d banned in %.3f s\n", who, attackers, last.Sub(t0).Seconds())
				return
			}
			if time.Now().After(deadline) {
				fmt.Printf("  %-9s %d of %d banned after %.0f s (gave up)\n", who, got, attackers, timeout.Seconds())
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	one("moat run", moatTable, moatLog, 60*time.Second)
	if f2bLog != "" {
		one("fail2ban", f2bTable, f2bLog, f2bTimeout)
	}
}

func sprayRSS(moatLog string, n, pid int, bin, sock string) {
	f, err := os.OpenFile(moatLog, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		fail(err)
	}
	before := jailLines(bin, sock, "burst")
	w := bufio.NewWriterSize(f, 1<<20)
	now := time.Now()
	for i := 0; i < n; i++ {
		// 23.0.0.0/10: four million public addresses, none of them in
		// an ignore list (100.64.0.0/10 would be: Tailscale's range).
		a := netip.AddrFrom4([4]byte{23, byte(i >> 16 & 63), byte(i >> 8), byte(i)})
		w.WriteString(failLine(now, 1000000+i, a))
	}
	w.Flush()
	f.Close()
	t0 := time.Now()
	for jailLines(bin, sock, "burst") < before+uint64(n) {
		if time.Since(t0) > 5*time.Minute {
			fail(fmt.Errorf("moat did not read the spray in 5 minutes"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("spray: %d single failures from distinct addresses (tracked, not banned) read in %.1f s; on top of the burst's bans\n", n, time.Since(t0).Seconds())
	st := jailStatus(bin, sock, "burst")
	fmt.Printf("  moat run  tracked %d sources, %d bans decided; RSS %s, peak RSS %s\n", st.Stats.Tracked, st.Stats.Decisions, procKB(pid, "VmRSS"), procKB(pid, "VmHWM"))
}

type jailStat struct {
	Name  string
	Lines uint64
	Stats struct {
		Tracked   int
		Decisions uint64
	}
}

func jailStatus(bin, sock, name string) jailStat {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "jail", "status", "--json", "--socket", sock).Output()
	if err != nil {
		fail(fmt.Errorf("moat jail status: %w", err))
	}
	var js []jailStat
	if err := json.Unmarshal(out, &js); err != nil {
		fail(fmt.Errorf("moat jail status: %w", err))
	}
	for _, j := range js {
		if j.Name == name {
			return j
		}
	}
	fail(fmt.Errorf("moat runs no jail %s", name))
	return jailStat{}
}

func jailLines(bin, sock, name string) uint64 { return jailStatus(bin, sock, name).Lines }

func procKB(pid int, key string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return fmt.Sprintf("%.0f MiB", kb/1024)
		}
	}
	return "?"
}
