package f2bimport

import (
	"bufio"
	"bytes"
	"context"
	"github.com/moat-sh/moat/internal/schema"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/filter"
	"github.com/moat-sh/moat/internal/lab"
)

// packageTree copies the files Debian's fail2ban package installed under
// /etc/fail2ban (as dpkg lists them, so a local jail.local on the test
// machine is left out) into a new directory, and overlays the fixture
// shapes dirs on it.
func packageTree(t *testing.T, overlays ...string) string {
	t.Helper()
	lab.RequireTool(t, "dpkg")
	out, err := exec.Command("dpkg", "-L", "fail2ban").Output()
	lab.Require(t, err == nil, "needs Debian's fail2ban package (dpkg -L fail2ban failed; it is in scripts/deps.sh)")
	dir := filepath.Join(t.TempDir(), "fail2ban")
	n := 0
	for _, p := range strings.Split(string(out), "\n") {
		rel, ok := strings.CutPrefix(p, "/etc/fail2ban/")
		if !ok {
			continue
		}
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		copyFile(t, p, filepath.Join(dir, rel))
		n++
	}
	lab.Require(t, n > 50, "fail2ban's package lists no config files under /etc/fail2ban")
	for _, o := range overlays {
		err := filepath.WalkDir(o, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(o, p)
			copyFile(t, p, filepath.Join(dir, rel))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// check runs the output through the path `moat config check` takes.
func check(t *testing.T, yaml string) *config.Config {
	t.Helper()
	c, err := config.Parse("imported.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("moat config check refuses the import: %v\n%s", err, yaml)
	}
	return c
}

func importDir(t *testing.T, dir, root string) (*Result, *config.Config) {
	t.Helper()
	r, err := Import(Options{Dir: dir, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return r, check(t, r.YAML)
}

func TestImportPackageDefaults(t *testing.T) {
	dir := packageTree(t)
	r, c := importDir(t, dir, "")
	// Debian enables sshd alone (jail.d/defaults-debian.conf).
	if len(c.Guard.Jails) != 1 {
		t.Fatalf("jails %v, want sshd alone\n%s", c.Guard.Jails, r.YAML)
	}
	j := c.Guard.Jails["sshd"]
	if j.MaxRetry != 5 || j.FindTime.D() != 10*time.Minute || j.BanTime.D() != 10*time.Minute {
		t.Errorf("sshd %+v, want fail2ban's 5 / 10m / 10m", j)
	}
	if j.Increment.IsEnabled() {
		t.Error("bantime.increment is off in fail2ban, on in the import")
	}
	want := []string{"paths-common.conf", "paths-debian.conf", "jail.conf", "defaults-debian.conf"}
	var got []string
	for _, f := range r.Files {
		got = append(got, filepath.Base(f))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("read %v, want fail2ban's order %v", got, want)
	}
	if !strings.Contains(r.YAML, "# action iptables-multiport: moat bans in its own nftables sets") {
		t.Errorf("banaction not explained:\n%s", r.YAML)
	}
}

func TestImportHardeningShape(t *testing.T) {
	dir := packageTree(t, "testdata/shapes/hardening")
	r, c := importDir(t, dir, "")
	if len(c.Guard.Jails) != 1 {
		t.Fatalf("jails %v: [DEFAULT] enabled = false must leave sshd alone", c.Guard.Jails)
	}
	j := c.Guard.Jails["sshd"]
	if j.MaxRetry != 3 || j.FindTime.D() != 5*time.Minute || j.BanTime.D() != 30*time.Minute {
		t.Errorf("sshd %+v, want 3 / 5m / 30m", j)
	}
	var ign []string
	for _, p := range c.Guard.Ignore {
		ign = append(ign, p.String())
	}
	if strings.Join(ign, " ") != "192.0.2.10/32 198.51.100.0/24" {
		t.Errorf("guard.ignore %v, want the office and the host (loopback is moat's anyway)\n%s", ign, r.YAML)
	}
	if c.SSH.Port != 22 || strings.Contains(r.YAML, "ssh:\n") {
		t.Errorf("port = ssh must leave ssh.port alone:\n%s", r.YAML)
	}
}

func TestImportSystemdShape(t *testing.T) {
	dir := packageTree(t, "testdata/shapes/systemd")
	r, c := importDir(t, dir, "")
	j := c.Guard.Jails["sshd"]
	if j.BanTime.D() != 7*24*time.Hour {
		t.Errorf("bantime %v, want 604800s = 7d\n%s", j.BanTime, r.YAML)
	}
	if j.Source != "" || len(j.Paths) != 0 {
		t.Errorf("backend systemd for sshd: moat chooses sshd's journal itself, got source %q paths %v", j.Source, j.Paths)
	}
	if c.SSH.Port != 2222 {
		t.Errorf("ssh.port %d, want 2222 from the sshd jail's port\n%s", c.SSH.Port, r.YAML)
	}
}

func TestImportCustomFilterAndActions(t *testing.T) {
	dir := packageTree(t, "testdata/shapes/custom")
	r, c := importDir(t, dir, "")
	y := r.YAML
	if j := c.Guard.Jails["sshd"]; j.Mode != "aggressive" {
		t.Errorf("sshd mode %q, want aggressive (mode = aggressive → filter sshd[mode=aggressive])", j.Mode)
	}
	if j := c.Guard.Jails["nginx-http-auth"]; j.Filter != "" || j.Source != "file" || len(j.Paths) != 1 {
		t.Errorf("nginx-http-auth %+v: want moat's built-in filter over the file", j)
	}
	j := c.Guard.Jails["myapp"]
	if j.BanTime != schema.Permanent || j.MaxRetry != 2 || j.Increment.IsEnabled() {
		t.Errorf("myapp %+v: want bantime -1 as permanent, maxretry 2, nothing to increment", j)
	}
	if j := c.Guard.Jails["sshd"]; j.Increment.Max.D() != 35*24*time.Hour || j.BanTime.D() != 2*time.Hour {
		t.Errorf("sshd increment %+v, want max 5w from bantime.maxtime", j)
	}
	for _, want := range []string{
		"action sendmail-whois-lines: no per-jail mail in moat",
		"action abuseipdb: no equivalent in moat",
		"(?P=", // the backreference, said why
		"backreference",
		"- 8443/tcp",
		"- 9000-9010/tcp",
		"ignoreip 203.0.113.50: jail myapp only; moat's guard.ignore holds for every jail",
		"# recidive: not imported: moat's jails have recidive built in",
		"filter.d/nginx-http-auth.local customises fail2ban's nginx-http-auth filter",
	} {
		if !strings.Contains(y, want) {
			t.Errorf("import lacks %q:\n%s", want, y)
		}
	}
	f, ok := c.Guard.Filters["myapp"]
	if !ok || len(f.Regex) != 2 || len(f.Ignore) != 1 {
		t.Fatalf("filter myapp %+v: want two regexes (the third has a backreference) and the ignore\n%s", f, y)
	}
	// The translated filter finds what fail2ban's finds, in a syslog
	// file line and a journal message alike.
	flt, err := c.Filter("myapp", "", filter.Options{Now: func() time.Time { return time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line, addr, user string
	}{
		{"Dec  6 19:29:39 web myapp[123]: Login failed for bob from 203.0.113.9 port 4242", "203.0.113.9", "bob"},
		{"2026-12-06T19:29:39.123456+00:00 web myapp[9]: Token refused: client 2001:db8::7, reason=expired", "2001:db8::7", ""},
		{"Login failed for eve from 198.51.100.4", "198.51.100.4", "eve"},
		{"Dec  6 19:29:39 web myapp[123]: Login failed for healthcheck from 192.0.2.1", "", ""},
		{"Dec  6 19:29:39 web myapp[123]: Login failed for bob from 203.0.113.9 because 1.2.3.4", "", ""},
	} {
		var res filter.Result
		res.Reset()
		flt.Process(filter.Entry{Text: []byte(tc.line)}, &res)
		var got, user string
		if len(res.Failures) == 1 && res.Failures[0].Addr.IsValid() {
			got, user = res.Failures[0].Addr.String(), res.Failures[0].User
		}
		if got != tc.addr || user != tc.user {
			t.Errorf("%q: failure %q user %q, want %q %q (%+v)", tc.line, got, user, tc.addr, tc.user, res)
		}
	}
	if !strings.Contains(y, "webmin-auth:") || c.Guard.Jails["webmin-auth"].Filter != "" {
		t.Errorf("webmin-auth (jail.d/*.conf) not imported as a user filter:\n%s", y)
	}
}

// TestImportEveryShippedJail enables every jail of the package's
// jail.conf: each either becomes a jail moat's config check accepts or is
// commented out with the reason, and every regex that is imported
// compiles as the daemon compiles it.
func TestImportEveryShippedJail(t *testing.T) {
	dir := packageTree(t)
	if err := os.WriteFile(filepath.Join(dir, "jail.d", "zz-all.local"), []byte("[DEFAULT]\nenabled = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A root where every logpath glob finds a file.
	root := t.TempDir()
	cfg, err := Read(dir, "jail")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range Jails(cfg) {
		for _, p := range j.LogPaths {
			p = strings.NewReplacer("*", "x", "?", "x").Replace(p)
			_ = os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
			_ = os.WriteFile(filepath.Join(root, p), nil, 0o644)
		}
	}
	r, c := importDir(t, dir, root)
	imported, skipped := 0, 0
	for _, j := range r.Jails {
		if !j.Enabled {
			t.Errorf("jail %s not enabled by [DEFAULT] enabled = true", j.Name)
			continue
		}
		if _, ok := c.Guard.Jails[j.Name]; ok {
			imported++
			continue
		}
		if !regexp.MustCompile(`(?m)^    # ` + regexp.QuoteMeta(j.Name) + `: not imported: \S`).MatchString(r.YAML) {
			t.Errorf("jail %s neither imported nor commented with a reason", j.Name)
		}
		skipped++
	}
	t.Logf("%d jails imported, %d commented out with the reason", imported, skipped)
	if imported < len(r.Jails)/2 {
		t.Errorf("only %d of %d shipped jails imported", imported, len(r.Jails))
	}
	// The same import (translating ~90 filters is the slow part) against
	// fail2ban-regex.
	t.Run("DifferentialFail2banRegex", func(t *testing.T) { differentialFail2banRegex(t, dir, r, c) })
}

// TestDifferentialFail2banClient compares the jails, their state and
// numbers with what fail2ban itself parses from the same directory
// (fail2ban-client -d dumps its parsed config without starting).
func TestDifferentialFail2banClient(t *testing.T) {
	lab.RequireTool(t, "fail2ban-client")
	for _, shape := range []string{"", "testdata/shapes/hardening", "testdata/shapes/systemd", "testdata/shapes/custom"} {
		t.Run(filepath.Base(shape), func(t *testing.T) {
			var overlays []string
			if shape != "" {
				overlays = append(overlays, shape)
			}
			dir := packageTree(t, overlays...)
			theirs := dumpFail2ban(t, dir)
			cfg, err := Read(dir, "jail")
			if err != nil {
				t.Fatal(err)
			}
			ours := map[string]Jail{}
			for _, j := range Jails(cfg) {
				if j.Enabled {
					ours[j.Name] = j
				}
			}
			if len(ours) != len(theirs) {
				t.Errorf("enabled jails: ours %v, fail2ban's %v", keys(ours), keys(theirs))
			}
			for name, f := range theirs {
				j, ok := ours[name]
				if !ok {
					t.Errorf("fail2ban starts jail %s, the import does not", name)
					continue
				}
				if f.maxretry != j.MaxRetry || f.findtime != j.FindTime || f.bantime != j.BanTime {
					t.Errorf("jail %s: fail2ban maxretry %d findtime %v bantime %v, ours %d %v %v", name, f.maxretry, f.findtime, f.bantime, j.MaxRetry, j.FindTime, j.BanTime)
				}
				if strings.Join(f.ignoreip, " ") != strings.Join(j.IgnoreIP, " ") {
					t.Errorf("jail %s: fail2ban ignoreip %v, ours %v", name, f.ignoreip, j.IgnoreIP)
				}
				if f.increment != j.Increment.Enabled || f.maxtime != j.Increment.MaxTime {
					t.Errorf("jail %s: fail2ban bantime.increment %v maxtime %v, ours %v %v", name, f.increment, f.maxtime, j.Increment.Enabled, j.Increment.MaxTime)
				}
				if f.backend != j.Backend {
					t.Errorf("jail %s: fail2ban backend %q, ours %q", name, f.backend, j.Backend)
				}
			}
		})
	}
}

type f2bJail struct {
	backend           string
	maxretry          int
	findtime, bantime time.Duration
	ignoreip          []string
	increment         bool
	maxtime           time.Duration
}

var (
	dumpAdd = regexp.MustCompile(`^\['add', '([^']+)', '([^']+)'\]$`)
	dumpSet = regexp.MustCompile(`^\['set', '([^']+)', '(maxretry|findtime|bantime|bantime\.increment|bantime\.maxtime)', '?(-?[^']*?)'?\]$`)
	dumpIgn = regexp.MustCompile(`^\['set', '([^']+)', 'addignoreip'((?:, '[^']*')*)\]$`)
)

func dumpFail2ban(t *testing.T, dir string) map[string]*f2bJail {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "fail2ban-client", "-c", dir, "-d")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fail2ban-client -c %s -d: %v\n%s", dir, err, stderr.String())
	}
	jails := map[string]*f2bJail{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		l := sc.Text()
		if m := dumpAdd.FindStringSubmatch(l); m != nil {
			jails[m[1]] = &f2bJail{backend: m[2]}
			continue
		}
		if m := dumpSet.FindStringSubmatch(l); m != nil && jails[m[1]] != nil {
			j := jails[m[1]]
			switch m[2] {
			case "maxretry":
				j.maxretry, _ = strconv.Atoi(m[3])
			case "bantime.increment":
				j.increment = m[3] == "True"
			case "bantime.maxtime":
				s, err := ParseTime(m[3])
				if err != nil {
					t.Fatalf("fail2ban dumped %s = %q: %v", m[2], m[3], err)
				}
				j.maxtime = Seconds(s)
			case "findtime", "bantime":
				s, err := ParseTime(m[3])
				if err != nil {
					t.Fatalf("fail2ban dumped %s = %q: %v", m[2], m[3], err)
				}
				d := Seconds(s)
				if s < 0 {
					d = -1
				}
				if m[2] == "findtime" {
					j.findtime = d
				} else {
					j.bantime = d
				}
			}
			continue
		}
		if m := dumpIgn.FindStringSubmatch(l); m != nil && jails[m[1]] != nil {
			for _, a := range strings.Split(strings.TrimPrefix(m[2], ", "), ", ") {
				jails[m[1]].ignoreip = append(jails[m[1]].ignoreip, strings.Trim(a, "'"))
			}
		}
	}
	if len(jails) == 0 {
		t.Fatalf("fail2ban-client -d listed no jail:\n%s\n%s", out, stderr.String())
	}
	return jails
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
