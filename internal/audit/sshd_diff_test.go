package audit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/sshd"
)

var sshdDiffCases = flag.Int("sshd.cases", 30, "random sshd configurations TestSSHDDifferential compares (bench/sshd-diff.sh runs more)")

// sshdDiffSource is one place a connection comes from: an address of the
// attacker host, and the vps address it reaches (the LocalAddress sshd sees).
type sshdDiffSource struct{ src, dst string }

var (
	sshdDiffSources = []sshdDiffSource{{"10.77.0.2", "10.77.0.1"}, {"10.77.0.3", "10.77.0.1"}, {"10.78.0.2", "10.78.0.1"}, {"2001:db8:77::2", "2001:db8:77::1"}}
	sshdDiffPorts   = []int{22, 2222}
	// mallory does not exist: sshd still answers with the methods its
	// Match blocks give that name, and can match no group for it.
	sshdDiffUsers = []string{"root", "alice", "bob", "carol", "mallory"}
	// sshdKeyUsers log in for real with a key: whether sshd lets them in
	// (PermitRootLogin, AllowUsers/DenyUsers/AllowGroups/DenyGroups,
	// PubkeyAuthentication) against the audit's reading.
	sshdKeyUsers = []string{"root", "alice", "bob", "carol"}
)

// TestSSHDDifferential compares the audit's per-user, per-source, per-port
// verdicts — passwords offered, root allowed to log in — with a real sshd's
// answers. Each case is a random sshd_config with drop-ins and Match blocks
// (User, Group, Address, LocalAddress, LocalPort, Host) over users in
// supplementary groups. The audit's side is what it computes under --root:
// sshd -T -C through sshd.Runner on a fixture tree holding the same files
// and the lab's accounts. sshd's side: the live sshd in a lab namespace,
// asked from each source address with a no-credential probe of its auth
// methods, and for root a real key login. 0 disagreements is the target;
// the seed is printed (MOAT_SSHD_SEED reproduces a run), and every
// disagreement found is kept as a fixed case below.
func TestSSHDDifferential(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "sshd", "ip")
	// Fixed by default so the suite judges the code, not the dice;
	// MOAT_SSHD_SEED explores.
	seed := uint64(20261206)
	if s := os.Getenv("MOAT_SSHD_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (MOAT_SSHD_SEED=%d reproduces)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	l := lab.New(t)
	vps, attacker := l.Host("vps"), l.Host("attacker")
	l.Link(vps, "eth0", attacker, "eth0", []string{"10.77.0.1/24", "10.78.0.1/24", "2001:db8:77::1/64"}, []string{"10.77.0.2/24", "10.77.0.3/24", "10.78.0.2/24", "2001:db8:77::2/64"})
	signer, key := lab.GenerateKey()
	users := []lab.SSHUser{
		{Name: "alice", Groups: []string{"ops"}},
		{Name: "bob", Groups: []string{"dev", "interns"}},
		{Name: "carol", Groups: []string{"ops", "interns"}},
	}

	cases := append(slices.Clone(sshdDiffRegressions), make([]sshdDiffCase, *sshdDiffCases)...)
	for i := len(sshdDiffRegressions); i < len(cases); i++ {
		cases[i] = randomSSHDCase(rng)
	}
	var d *lab.SSHD
	disagreements, verdicts := 0, 0
	for i, c := range cases {
		if d != nil {
			d.Stop()
		}
		root := t.TempDir()
		extra := c.write(t, root, key)
		opts := lab.SSHDOptions{ExtraConfig: extra}
		if i == 0 {
			opts.Users = users
		}
		d = vps.StartSSHD(t, opts)
		if err := sshdDiffFixture(root, d, vps); err != nil {
			t.Fatal(err)
		}
		n, bad := compareSSHD(t, root, attacker, signer, c)
		verdicts += n
		if len(bad) > 0 {
			disagreements++
			t.Errorf("case %d (seed %d) disagrees with sshd:\n  %s\nconfig:\n%s", i, seed, strings.Join(bad, "\n  "), c)
		}
	}
	d.Stop()
	t.Logf("%d cases (%d fixed), %d verdicts compared, %d cases disagreed", len(cases), len(sshdDiffRegressions), verdicts, disagreements)
}

// sshdDiffCase is one configuration: the main file's own lines (globals,
// then Match blocks) and drop-ins under sshd_config.d.
type sshdDiffCase struct {
	Main    string
	DropIns map[string]string
}

func (c sshdDiffCase) String() string {
	var b strings.Builder
	b.WriteString("--- sshd_config\n" + c.Main)
	for _, n := range slices.Sorted(maps.Keys(c.DropIns)) {
		b.WriteString("--- sshd_config.d/" + n + "\n" + c.DropIns[n])
	}
	return b.String()
}

// includeMarker stands for the drop-in directory in Main; write puts the
// real path in.
const includeMarker = "@DROPINS@"

// write lays the drop-ins out under root and returns the lab sshd's extra
// config: every user's key (one key for all) from files under root (never
// /root), then Main.
func (c sshdDiffCase) write(t *testing.T, root, key string) string {
	t.Helper()
	dir := filepath.Join(root, "etc/ssh/sshd_config.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Not under t.TempDir (root-only): sshd reads a user's keys as that
	// user.
	keys, err := os.MkdirTemp("", "moat-sshd-diff-keys-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(keys) })
	if err := os.Chmod(keys, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, body := range c.DropIns {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range sshdDiffUsers {
		if err := os.WriteFile(filepath.Join(keys, u), []byte(key+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	main := strings.ReplaceAll(c.Main, includeMarker, filepath.Join(dir, "*.conf"))
	return "AuthorizedKeysFile " + filepath.Join(keys, "%u") + "\nStrictModes no\nMaxStartups 100:30:200\nPort 2222\n" + main
}

// sshdDiffFixture turns root into the fixture tree the audit reads: the
// lab sshd's own config as etc/ssh/sshd_config, its drop-in Include
// pointing inside the tree, and the namespace's passwd and group.
func sshdDiffFixture(root string, d *lab.SSHD, vps *lab.Host) error {
	cfg, err := os.ReadFile(d.Config)
	if err != nil {
		return err
	}
	text := strings.ReplaceAll(string(cfg), filepath.Join(root, "etc/ssh/sshd_config.d"), "/etc/ssh/sshd_config.d")
	if err := os.WriteFile(filepath.Join(root, "etc/ssh/sshd_config"), []byte(text), 0o644); err != nil {
		return err
	}
	for _, name := range []string{"passwd", "group"} {
		b, err := os.ReadFile(vps.AccountFile(name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, "etc", name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// compareSSHD asks both sides about every user, source and port.
func compareSSHD(t *testing.T, root string, attacker *lab.Host, signer ssh.Signer, c sshdDiffCase) (int, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var cs []sshd.Context
	for _, s := range sshdDiffSources {
		for _, p := range sshdDiffPorts {
			for _, u := range sshdDiffUsers {
				cs = append(cs, sshd.Context{User: u, Addr: s.src, LAddr: s.dst, LPort: p})
			}
		}
	}
	effs, err := sshd.Runner{Root: root}.EffectiveMany(ctx, cs)
	if err != nil {
		t.Fatalf("audit side: %v\n%s", err, c)
	}
	audit := map[string]sshd.Effective{}
	for i, x := range cs {
		audit[fmt.Sprintf("%s/%s/%d", x.User, x.Addr, x.LPort)] = effs[i]
	}
	af := newFacts(ctx, &Options{Root: root}, host.New(root))
	groups := af.groupsOf
	var (
		mu   sync.Mutex
		bad  []string
		n    int
		errs []error
		wg   sync.WaitGroup
		// Three targets at a time: 15 unauthenticated connections at
		// most, under the MaxStartups the case's config sets.
		sem = make(chan struct{}, 3)
	)
	for _, s := range sshdDiffSources {
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialFrom(ctx, attacker, s.src, network, addr)
		}
		for _, p := range sshdDiffPorts {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				target := net.JoinHostPort(s.dst, strconv.Itoa(p))
				res, err := sshd.ProbeVia(ctx, dial, target, sshdDiffUsers, 10*time.Second)
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("probe %s from %s: %w", target, s.src, err))
					mu.Unlock()
					return
				}
				loginErr := map[string]error{}
				for _, u := range sshdKeyUsers {
					loginErr[u] = keyLogin(ctx, dial, target, u, signer)
				}
				mu.Lock()
				defer mu.Unlock()
				for _, u := range sshdDiffUsers {
					e := audit[fmt.Sprintf("%s/%s/%d", u, s.src, p)]
					want := slices.Contains(res.AuthMethods[u], "password")
					got := e.Get("passwordauthentication") == "yes"
					n++
					if got != want {
						bad = append(bad, fmt.Sprintf("%s from %s to port %d: audit says password %v, sshd offers %v", u, s.src, p, got, res.AuthMethods[u]))
					}
				}
				for _, u := range sshdKeyUsers {
					e := audit[fmt.Sprintf("%s/%s/%d", u, s.src, p)]
					got, why := e.UserAllowed(u, groups(u), s.src)
					if got && e.Get("pubkeyauthentication") == "no" {
						got, why = false, "pubkeyauthentication no"
					}
					if v := e.Get("permitrootlogin"); got && u == "root" && v != "yes" && v != "prohibit-password" && v != "without-password" {
						got, why = false, "permitrootlogin "+v
					}
					n++
					if want := loginErr[u] == nil; got != want {
						bad = append(bad, fmt.Sprintf("%s from %s to port %d: audit says key login %v (%s), a key login: %v", u, s.src, p, got, why, errOrOK(loginErr[u])))
					}
				}
			})
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("sshd side: %v", errors.Join(errs...))
	}
	slices.Sort(bad)
	return n, bad
}

func errOrOK(err error) string {
	if err == nil {
		return "logged in"
	}
	return err.Error()
}

// dialFrom connects from one of h's addresses.
func dialFrom(ctx context.Context, h *lab.Host, local, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() (err error) {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(local), 0))}
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// keyLogin authenticates with the key, checks the connection lives on,
// and hangs up: no session, no command. The check matters: with
// PermitRootLogin forced-commands-only, OpenSSH 9.2's unprivileged child
// answers a key without command= with USERAUTH_SUCCESS ("Root login
// accepted for forced command"), and only then does the monitor refuse
// root and drop the connection; a client that stops at the handshake
// would count a login that never happened.
func keyLogin(ctx context.Context, dial sshd.DialFunc, addr, user string, signer ssh.Signer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // the lab's own sshd
	})
	if err != nil {
		return err
	}
	go ssh.DiscardRequests(reqs)
	go func() {
		for ch := range chans {
			ch.Reject(ssh.Prohibited, "")
		}
	}()
	defer cc.Close()
	if _, _, err := cc.SendRequest("keepalive@openssh.com", true, nil); err != nil {
		return fmt.Errorf("connection dropped after authentication: %w", err)
	}
	return nil
}

// randomSSHDCase writes a realistic configuration: a few global settings,
// Debian's Include of the drop-in directory (first or later), drop-ins
// with settings and Match blocks of their own, and Match blocks at the
// end of the main file.
func randomSSHDCase(rng *rand.Rand) sshdDiffCase {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	global := func(b *strings.Builder) {
		if rng.IntN(2) == 0 {
			fmt.Fprintf(b, "PasswordAuthentication %s\n", pick("yes", "no"))
		}
		if rng.IntN(2) == 0 {
			fmt.Fprintf(b, "PermitRootLogin %s\n", pick("yes", "no", "prohibit-password", "without-password", "forced-commands-only"))
		}
		if rng.IntN(4) == 0 {
			b.WriteString(randomAccess(rng))
		}
	}
	c := sshdDiffCase{DropIns: map[string]string{}}
	var m strings.Builder
	includeFirst := rng.IntN(2) == 0
	if includeFirst {
		m.WriteString("Include " + includeMarker + "\n")
	}
	global(&m)
	if !includeFirst {
		m.WriteString("Include " + includeMarker + "\n")
	}
	for _, name := range []string{"10-moat.conf", "50-cloud-init.conf"} {
		if rng.IntN(2) == 0 {
			continue
		}
		var b strings.Builder
		global(&b)
		for range rng.IntN(2) {
			b.WriteString(randomMatch(rng))
		}
		c.DropIns[name] = b.String()
	}
	for range rng.IntN(4) {
		m.WriteString(randomMatch(rng))
	}
	c.Main = m.String()
	return c
}

func randomMatch(rng *rand.Rand) string {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	var crit []string
	if rng.IntN(8) == 0 {
		crit = []string{"all"}
	} else {
		kinds := []string{"User", "Group", "Address", "LocalAddress", "LocalPort", "Host"}
		rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		for _, k := range kinds[:1+rng.IntN(2)] {
			var v string
			switch k {
			case "User":
				v = pick("alice", "bob", "carol", "root", "mallory", "a*", "*o*", "alice,bob", "*,!bob", "!root,*")
			case "Group":
				v = pick("ops", "dev", "interns", "ops,!interns", "o*", "*,!dev", "nosuchgroup")
			case "Address":
				v = pick("10.77.0.0/24", "10.77.0.2", "10.78.0.0/16", "10.77.0.0/16,!10.77.0.3", "10.77.0.2/32", "0.0.0.0/0", "10.77.0.*", "2001:db8:77::/64", "::/0,!2001:db8:77::2", "2001:db8:*")
			case "LocalAddress":
				v = pick("10.77.0.1", "10.78.0.1", "10.78.0.0/24", "2001:db8:77::1")
			case "LocalPort":
				v = pick("22", "2222")
			case "Host":
				v = pick("10.77.0.*", "10.78.*", "*", "10.77.0.3", "2001:db8:77:*")
			}
			crit = append(crit, k+" "+v)
		}
	}
	var b strings.Builder
	b.WriteString("Match " + strings.Join(crit, " ") + "\n")
	body := 0
	if rng.IntN(3) != 0 {
		fmt.Fprintf(&b, "\tPasswordAuthentication %s\n", pick("yes", "no"))
		body++
	}
	if body == 0 || rng.IntN(2) == 0 {
		fmt.Fprintf(&b, "\tPermitRootLogin %s\n", pick("yes", "no", "prohibit-password", "forced-commands-only"))
	}
	if rng.IntN(5) == 0 {
		b.WriteString("\t" + randomAccess(rng))
	}
	if rng.IntN(8) == 0 {
		b.WriteString("\tPubkeyAuthentication no\n")
	}
	return b.String()
}

// randomAccess writes one of sshd's account rules.
func randomAccess(rng *rand.Rand) string {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	switch rng.IntN(4) {
	case 0:
		return "AllowUsers " + pick("alice", "alice bob", "root alice", "*", "a* root", "alice@10.77.0.0/24 root", "bob@10.78.*", "carol@!10.77.0.3,10.77.0.0/16 root", "alice@2001:db8:77::/64 root") + "\n"
	case 1:
		return "DenyUsers " + pick("bob", "root", "c*", "alice@10.77.0.2", "*@10.78.0.0/24") + "\n"
	case 2:
		return "AllowGroups " + pick("ops", "ops root", "dev", "o* root", "interns") + "\n"
	default:
		return "DenyGroups " + pick("interns", "dev", "nosuchgroup") + "\n"
	}
}

// sshdDiffRegressions are disagreements the harness found once, fixed and
// kept. Each runs before the random cases.
var sshdDiffRegressions = []sshdDiffCase{
	// Match Group under --root: sshd -T asked the running host's NSS,
	// which knows none of the lab's groups.
	{Main: "Include " + includeMarker + "\nPasswordAuthentication no\nMatch Group ops,!interns\n\tPasswordAuthentication yes\n"},
	// Match LocalPort: every sshd -T -C without lport failed.
	{Main: "Include " + includeMarker + "\nPasswordAuthentication no\nMatch LocalPort 2222\n\tPasswordAuthentication yes\n\tPermitRootLogin prohibit-password\n"},
	// forced-commands-only: sshd 9.2 sends USERAUTH_SUCCESS for a root key
	// without command= and drops the connection right after; the verdict
	// (root cannot log in with such a key) must hold against a client that
	// checks the connection lives.
	{Main: "Include " + includeMarker + "\n", DropIns: map[string]string{"50-cloud-init.conf": "PasswordAuthentication no\nPermitRootLogin forced-commands-only\n"}},
}
