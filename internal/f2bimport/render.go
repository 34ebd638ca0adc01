package f2bimport

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/filter"
	"github.com/moat-sh/moat/internal/schema"
)

// Options say where to read.
type Options struct {
	// Dir is fail2ban's configuration directory (/etc/fail2ban).
	Dir string
	// Root prefixes the log paths globbed and /etc/services ("": /).
	Root string
}

// Result is an import: the moat.yaml text and what it came from.
type Result struct {
	YAML  string
	Files []string // the fail2ban files read, in fail2ban's order
	Jails []Jail   // every jail, enabled or not
	// Filters names, for each user filter written, the fail2ban filter
	// and options it was translated from.
	Filters map[string]FilterSource
}

// FilterSource is a fail2ban filter as a jail names it.
type FilterSource struct {
	Name string
	Opts map[string]string
}

// maxMaxRetry is jail's bound on maxretry.
const maxMaxRetry = 1000

// Import reads fail2ban's jails under o.Dir and writes the equivalent
// moat.yaml sections: guard (jails, user filters, ignore), and ssh.port
// and firewall.public where the jails' ports name them. What has no
// equivalent is said in YAML comments.
func Import(o Options) (*Result, error) {
	c, err := Read(o.Dir, "jail")
	if err != nil {
		return nil, fmt.Errorf("read fail2ban's jails: %w (hint: moat import fail2ban DIR, where DIR holds jail.conf or jail.local)", err)
	}
	r := &Result{Files: c.Files, Jails: Jails(c)}
	w := &writer{o: o, svc: ReadServices(o.Root), filters: map[string]*userFilter{}}
	for i := range r.Jails {
		w.jail(&r.Jails[i])
	}
	w.narrowIgnores()
	r.YAML = w.render(r)
	r.Filters = map[string]FilterSource{}
	for key, uf := range w.filters {
		if len(uf.regex) > 0 && len(uf.usedBy) > 0 {
			r.Filters[key] = uf.src
		}
	}
	return r, nil
}

type userFilter struct {
	from, sig     string
	src           FilterSource
	regex, ignore []string
	notes         []string
	usedBy        []string
}

type jailOut struct {
	name  string
	lines []string // YAML lines under the jail's key, indented by 6
	notes []string // comments before it
	skip  string   // why it is commented out whole
}

type port struct {
	spec schema.PortSpec
	why  string
}

type writer struct {
	o        Options
	svc      Services
	jails    []jailOut
	filters  map[string]*userFilter
	ignore   []string // YAML list items with comments
	ignored  map[string]bool
	ports    []port
	sshPort  uint16
	sshNote  string
	disabled []string
	top      []string // comments at the top

	ignoreSets []ignoreSet
}

func (w *writer) note(format string, a ...any) { w.top = append(w.top, fmt.Sprintf(format, a...)) }

func (w *writer) jail(j *Jail) {
	if !j.Enabled {
		w.disabled = append(w.disabled, j.Name)
		return
	}
	out := jailOut{name: j.Name}
	add := func(format string, a ...any) { out.lines = append(out.lines, fmt.Sprintf(format, a...)) }
	comment := func(format string, a ...any) { out.lines = append(out.lines, "# "+oneLine(fmt.Sprintf(format, a...))) }
	defer func() { w.jails = append(w.jails, out) }()
	for _, e := range j.Errors {
		out.notes = append(out.notes, "fail2ban would refuse this jail: "+e.Error())
	}
	if len(j.Errors) > 0 {
		out.skip = "fail2ban itself cannot read this jail"
		return
	}
	if j.Name == "recidive" || j.Filter == "recidive" {
		out.skip = "moat's jails have recidive built in: increment (on by default) grows the bantime of repeat offenders, increment.max caps it"
		return
	}
	fname := j.Filter
	if fname == "" {
		out.skip = "it has no filter"
		return
	}
	mode := j.FilterOpt["mode"]
	desc := "filter " + fname
	if len(j.FilterOpt) > 0 {
		desc += "[" + optString(j.FilterOpt) + "]"
	}
	comment("fail2ban: %s, backend %s, logpath %s", desc, j.Backend, strings.Join(j.LogPaths, " "))
	builtin := false
	if modes, ok := filter.Modes(fname); ok {
		builtin = true
		for _, l := range []string{fname + ".local", fname + ".d"} {
			if _, err := os.Stat(filepath.Join(w.o.Dir, "filter.d", l)); err == nil {
				comment("filter.d/%s customises fail2ban's %s filter; moat runs its own (moat filter test %s LOG shows what it finds)", l, fname, fname)
			}
		}
		if fname != j.Name {
			add("filter: %s", fname)
		}
		switch {
		case mode == "" || mode == modes[0]:
		case slices.Contains(modes, mode):
			add("mode: %s", mode)
		default:
			comment("mode %s: moat's %s filter has modes %s; using %s", mode, fname, strings.Join(modes, ", "), modes[0])
		}
	} else {
		key, uf, err := w.userFilter(fname, j)
		if err != nil {
			out.skip = fmt.Sprintf("its filter %s cannot be read: %v", fname, err)
			return
		}
		if len(uf.regex) == 0 {
			out.skip = fmt.Sprintf("no regex of filter %s translates to moat's syntax (see guard.filters below)", fname)
			return
		}
		uf.usedBy = append(uf.usedBy, j.Name)
		if key != j.Name {
			add("filter: %s", yamlKey(key))
		}
	}
	if !w.source(j, builtin && fname == "sshd", fname, add, comment, &out) {
		return
	}
	maxretry := j.MaxRetry
	if maxretry < 1 || maxretry > maxMaxRetry {
		comment("maxretry %d is outside moat's 1 to %d", maxretry, maxMaxRetry)
		maxretry = min(max(maxretry, 1), maxMaxRetry)
	}
	add("maxretry: %d", maxretry)
	if j.FindTime <= 0 {
		comment("findtime %v: moat needs a positive window; using 10m", j.FindTime)
		add("findtime: 10m")
	} else {
		add("findtime: %s", fmtDur(j.FindTime))
	}
	ban := j.BanTime
	switch {
	case ban < 0:
		add("bantime: permanent   # fail2ban: -1 (for ever)")
		if j.Increment.Enabled {
			comment("bantime.increment: nothing to grow, the bans are permanent")
		}
		add("increment:")
		add("  enabled: false")
	case ban == 0:
		add("bantime: 1h   # fail2ban: 0")
		w.increment(j, time.Hour, add, comment)
	default:
		add("bantime: %s", fmtDur(ban))
		w.increment(j, ban, add, comment)
	}
	for _, a := range j.Actions {
		comment("%s", actionNote(a.Name))
	}
	w.jailPorts(j)
	w.jailIgnore(j)
	w.ignoreSets = append(w.ignoreSets, ignoreSet{j.Name, j.IgnoreIP})
}

type ignoreSet struct {
	jail string
	ips  []string
}

// narrowIgnores names the ignoreip entries that only some jails had:
// moat's guard.ignore holds for every jail.
func (w *writer) narrowIgnores() {
	for _, set := range w.ignoreSets {
		for _, ip := range set.ips {
			var without []string
			for _, other := range w.ignoreSets {
				if !slices.Contains(other.ips, ip) {
					without = append(without, other.jail)
				}
			}
			if len(without) > 0 {
				w.note("ignoreip %s: jail %s only; moat's guard.ignore holds for every jail (also %s)", ip, set.jail, strings.Join(without, ", "))
			}
		}
	}
}

// source writes where the jail reads; false when it cannot say.
func (w *writer) source(j *Jail, sshd bool, fname string, add, comment func(string, ...any), out *jailOut) bool {
	systemd := strings.HasPrefix(j.Backend, "systemd")
	switch j.Backend {
	case "", "auto", "polling", "pyinotify", "gamin":
	default:
		if !systemd {
			comment("backend %s: unknown to moat; reading the log files", j.Backend)
		}
	}
	if sshd {
		if systemd || allStandardSSHLogs(j.LogPaths) {
			comment("moat finds sshd's log itself: the journal, or auth.log where rsyslog writes it")
			return true
		}
	}
	if systemd {
		flt, err := ReadFilter(w.o.Dir, fname, j.FilterOpt, j.Backend)
		var matches []string
		if err == nil {
			matches = trustedMatches(flt.JournalMatch)
		}
		if len(matches) == 0 {
			out.skip = "backend systemd, and the filter's journalmatch names no field journald sets itself (_SYSTEMD_UNIT=, _COMM=): a local user could forge its entries"
			return false
		}
		add("source: journal")
		add("journal: [%s]", strings.Join(quoteAll(matches), ", "))
		return true
	}
	var paths []string
	for _, p := range j.LogPaths {
		if !strings.ContainsAny(p, "*?[") {
			paths = append(paths, p)
			continue
		}
		m, _ := filepath.Glob(filepath.Join(w.o.Root, p))
		if len(m) == 0 {
			comment("logpath %s: no file matches it now; moat reads files by name: list them here", p)
			continue
		}
		for _, f := range m {
			if rel, err := filepath.Rel(filepath.Join("/", w.o.Root), f); err == nil && w.o.Root != "" {
				f = "/" + rel
			}
			paths = append(paths, f)
		}
	}
	if len(paths) == 0 {
		out.skip = "no log file to read (logpath names none that exists)"
		return false
	}
	add("source: file")
	add("paths: [%s]", strings.Join(quoteAll(paths), ", "))
	return true
}

func allStandardSSHLogs(paths []string) bool {
	for _, p := range paths {
		switch p {
		case "/var/log/auth.log", "/var/log/secure", "/var/log/messages", "/var/log/syslog":
		default:
			return false
		}
	}
	return true
}

// trustedMatches turns journalmatch lines into moat's list, keeping only
// groups on fields journald sets ('_' first): moat refuses the others.
func trustedMatches(lines []string) []string {
	var out []string
	for _, l := range lines {
		var group []string
		ok := true
		for _, word := range strings.Fields(l) {
			if word == "+" {
				if ok && len(group) > 0 {
					if len(out) > 0 {
						out = append(out, "+")
					}
					out = append(out, group...)
				}
				group, ok = nil, true
				continue
			}
			k, _, has := strings.Cut(word, "=")
			if !has || !strings.HasPrefix(k, "_") || strings.ToUpper(k) != k {
				ok = false
			}
			group = append(group, word)
		}
		if ok && len(group) > 0 {
			if len(out) > 0 {
				out = append(out, "+")
			}
			out = append(out, group...)
		}
	}
	return out
}

func (w *writer) increment(j *Jail, ban time.Duration, add, comment func(string, ...any)) {
	inc := j.Increment
	maxT := inc.MaxTime
	if !inc.Enabled {
		add("increment:")
		add("  enabled: false   # as fail2ban (bantime.increment off); moat's default grows bans of repeat offenders")
		if ban > 7*24*time.Hour {
			add("  max: %s", fmtDur(ban))
		}
		return
	}
	add("increment:")
	add("  enabled: true")
	if inc.Formula != "" || inc.Multipliers != "" {
		comment("  bantime.formula/multipliers: moat grows bans as bantime × factor^(earlier bans)")
	}
	if inc.Factor != "" && inc.Factor != "1" {
		comment("  bantime.factor = %s scales fail2ban's doubling; moat doubles (factor 2)", inc.Factor)
	}
	add("  factor: 2")
	switch {
	case maxT > 0 && maxT >= ban:
		add("  max: %s", fmtDur(maxT))
	case maxT > 0:
		add("  max: %s   # bantime.maxtime %s is below bantime", fmtDur(ban), fmtDur(maxT))
	case ban > 7*24*time.Hour:
		add("  max: %s", fmtDur(ban))
	default:
		comment("  fail2ban sets no bantime.maxtime: moat caps at 7d by default")
	}
	if inc.RndTime != "" {
		comment("  bantime.rndtime = %s: no equivalent", inc.RndTime)
	}
	if inc.OverallJail {
		comment("  bantime.overalljails: no equivalent; each jail counts its own bans")
	}
}

// actionNote says what becomes of an action.
func actionNote(name string) string {
	n := strings.ToLower(name)
	for _, p := range []string{"iptables", "ip6tables", "nftables", "firewallcmd", "shorewall", "ufw", "route", "pf", "ipfw", "ipset", "bsd-ipfw", "npf", "hostsdeny", "apf", "dummy", "xt_recent"} {
		if strings.HasPrefix(n, p) {
			return fmt.Sprintf("action %s: moat bans in its own nftables sets (table inet moat), on every port", name)
		}
	}
	if strings.Contains(n, "mail") || strings.Contains(n, "whois") {
		return fmt.Sprintf("action %s: no per-jail mail in moat; send ban alerts through alerts: (email, ntfy, webhook…)", name)
	}
	return fmt.Sprintf("action %s: no equivalent in moat (custom action), not imported", name)
}

// userFilter reads and translates a filter moat lacks, once.
func (w *writer) userFilter(name string, j *Jail) (string, *userFilter, error) {
	sig := filterSig(j)
	for key, uf := range w.filters {
		if uf.sig == sig {
			return key, uf, nil
		}
	}
	// The same filter with other options (another mode, another log
	// type) is another moat filter.
	key := name
	for n := 2; w.filters[key] != nil; n++ {
		key = fmt.Sprintf("%s-%d", name, n)
		if m := j.FilterOpt["mode"]; m != "" && w.filters[name+"-"+m] == nil {
			key = name + "-" + m
		}
	}
	f, err := ReadFilter(w.o.Dir, name, j.FilterOpt, j.Backend)
	if err != nil {
		return "", nil, err
	}
	uf := &userFilter{from: "filter.d/" + name, sig: sig, src: FilterSource{Name: name, Opts: j.FilterOpt}}
	if len(j.FilterOpt) > 0 {
		uf.from += "[" + optString(j.FilterOpt) + "]"
	}
	if f.MaxLines != "" && f.MaxLines != "1" {
		uf.notes = append(uf.notes, fmt.Sprintf("maxlines = %s: fail2ban joins lines; moat matches one line at a time", f.MaxLines))
	}
	for _, t := range TranslateFail(f) {
		if t.Skip != "" {
			uf.notes = append(uf.notes, fmt.Sprintf("not imported: %s: %s", t.From, t.Skip))
			continue
		}
		uf.regex = append(uf.regex, t.Regex)
	}
	for _, t := range TranslateIgnore(f) {
		if t.Skip != "" {
			uf.notes = append(uf.notes, fmt.Sprintf("ignoreregex not imported: %s: %s", t.From, t.Skip))
			continue
		}
		uf.ignore = append(uf.ignore, t.Regex)
	}
	w.filters[key] = uf
	return key, uf, nil
}

// filterSig identifies a filter as a jail reads it.
func filterSig(j *Jail) string {
	logtype := "file"
	if strings.HasPrefix(j.Backend, "systemd") {
		logtype = "journal"
	}
	return j.Filter + "[" + optString(j.FilterOpt) + "]" + logtype
}

func optString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k+"="+m[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// jailPorts collects the ports the jail guards: sshd's becomes ssh.port,
// the others firewall.public.
func (w *writer) jailPorts(j *Jail) {
	protos := []string{j.Protocol}
	switch j.Protocol {
	case "all":
		protos = []string{"tcp", "udp"}
	case "tcp", "udp":
	default:
		w.note("jail %s: protocol %s: moat opens tcp or udp ports", j.Name, j.Protocol)
		return
	}
	if j.Ports == "" {
		return
	}
	var specs []schema.PortSpec
	for _, item := range strings.Split(j.Ports, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(item, ":")
		if !isRange {
			lo, hi, isRange = strings.Cut(item, "-")
		}
		for _, proto := range protos {
			a, ok := w.svc.Port(lo, proto)
			b := a
			if isRange {
				var ok2 bool
				b, ok2 = w.svc.Port(hi, proto)
				ok = ok && ok2
			}
			if isRange && (lo == "0" || a <= 1) && b == 65535 {
				return // every port: the ban covers that; nothing to open
			}
			if !ok || b < a {
				w.note("jail %s: port %q: not a port or service name in /etc/services", j.Name, item)
				continue
			}
			specs = append(specs, schema.PortSpec{Proto: proto, From: a, To: b})
		}
	}
	if j.Filter == "sshd" || j.Name == "sshd" {
		if len(specs) == 1 && specs[0].From == specs[0].To && specs[0].Proto == "tcp" {
			if p := specs[0].From; p != 22 {
				w.sshPort, w.sshNote = p, fmt.Sprintf("jail %s guards port %s: sshd's port (moat apply moves sshd if it listens elsewhere)", j.Name, j.Ports)
			}
		} else if len(specs) > 1 {
			w.note("jail %s guards several ports (%s): set ssh.port to the one sshd listens on", j.Name, j.Ports)
		}
		return
	}
	for _, s := range specs {
		if s.Proto == "tcp" && s.From == s.To && (s.From == 80 || s.From == 443 || s.From == 22) {
			continue // 80 and 443 are listed anyway; SSH's port is moat's own (ssh.exposure)
		}
		dup := false
		for _, p := range w.ports {
			dup = dup || p.spec == s
		}
		if !dup {
			w.ports = append(w.ports, port{s, fmt.Sprintf("jail %s (port = %s)", j.Name, j.Ports)})
		}
	}
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func (w *writer) jailIgnore(j *Jail) {
	if w.ignored == nil {
		w.ignored = map[string]bool{}
	}
	for _, s := range j.IgnoreIP {
		if w.ignored[s] {
			continue
		}
		w.ignored[s] = true
		c, err := schema.ParseCIDR(s)
		if err != nil {
			p, perr := netip.ParsePrefix(s)
			if perr != nil {
				w.ignore = append(w.ignore, fmt.Sprintf("# %s (ignoreip): not an address or CIDR; moat never resolves host names", quote(s)))
				continue
			}
			c = schema.CIDR{Prefix: p.Masked()}
		}
		if slices.ContainsFunc(loopback, func(l netip.Prefix) bool { return l.Bits() <= c.Bits() && l.Contains(c.Addr()) }) {
			continue // moat never bans loopback
		}
		item := "- " + c.String()
		if c.String() != s {
			item += "   # ignoreip " + s
		}
		w.ignore = append(w.ignore, item)
	}
}

func (w *writer) render(r *Result) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("# moat.yaml sections imported from fail2ban by `moat import fail2ban %s`.", w.o.Dir)
	p("# Read, in fail2ban's order:")
	for _, f := range r.Files {
		p("#   %s", f)
	}
	p("# Review, merge into /etc/moat/moat.yaml, then: moat config check && moat plan")
	if len(w.disabled) > 0 {
		p("# %d jails are disabled in fail2ban and were not imported.", len(w.disabled))
	}
	for _, n := range w.top {
		p("# %s", oneLine(n))
	}
	if w.sshPort != 0 {
		p("ssh:")
		p("  port: %d   # %s", w.sshPort, oneLine(w.sshNote))
	}
	if len(w.ports) > 0 {
		p("firewall:")
		p("  # the ports fail2ban's jails guard, opened to everyone by moat's default-drop firewall: keep only what must be public")
		p("  public:")
		p("    - 80/tcp")
		p("    - 443/tcp")
		for _, pt := range w.ports {
			if what := datastore(pt.spec); what != "" {
				p("    # - %s   # %s: %s; moat keeps those off the internet: list it under firewall.vpn or firewall.allow", pt.spec, oneLine(pt.why), what)
				continue
			}
			p("    - %s   # %s", pt.spec, oneLine(pt.why))
		}
	}
	p("guard:")
	if len(w.ignore) > 0 {
		p("  ignore:")
		for _, i := range w.ignore {
			p("    %s", i)
		}
	}
	sshdOn := false
	for _, j := range w.jails {
		sshdOn = sshdOn || j.name == "sshd" && j.skip == ""
	}
	p("  jails:")
	if !sshdOn && !slices.ContainsFunc(w.jails, func(j jailOut) bool { return j.name == "sshd" }) {
		p("    # fail2ban's sshd jail is off; moat guards sshd by default. To match fail2ban:")
		p("    # sshd:")
		p("    #   enabled: false")
	}
	for _, j := range w.jails {
		for _, n := range j.notes {
			p("    # %s", oneLine(n))
		}
		if j.skip != "" {
			p("    # %s: not imported: %s", j.name, oneLine(j.skip))
			continue
		}
		p("    %s:", yamlKey(j.name))
		for _, l := range j.lines {
			p("      %s", l)
		}
	}
	if len(w.jails) == 0 {
		p("    {}")
	}
	var names []string
	for n, f := range w.filters {
		if len(f.usedBy) > 0 || len(f.notes) > 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) > 0 {
		p("  filters:")
		for _, n := range names {
			f := w.filters[n]
			if len(f.regex) == 0 || len(f.usedBy) == 0 {
				p("    # %s (from %s): not imported", n, f.from)
				for _, note := range f.notes {
					p("    #   %s", oneLine(note))
				}
				continue
			}
			p("    %s:   # from %s", yamlKey(n), f.from)
			for _, note := range f.notes {
				p("      # %s", oneLine(note))
			}
			p("      regex:")
			for _, re := range f.regex {
				p("        - %s", quote(re))
			}
			if len(f.ignore) > 0 {
				p("      ignore:")
				for _, re := range f.ignore {
					p("        - %s", quote(re))
				}
			}
		}
	}
	return b.String()
}

// fmtDur writes a duration in moat's syntax: 30m, 1h30m, 7d.
func fmtDur(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit string
		d    time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.unit)
			d -= n * u.d
		}
	}
	if b.Len() == 0 {
		return "1s"
	}
	return b.String()
}

// quote writes s as a YAML scalar that reads back as s.
func quote(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfeff || r >= 0x80 && r < 0xa0 {
			return strconv.Quote(s)
		}
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = quote(s)
	}
	return out
}

// yamlKey writes a map key, quoted unless it is plain.
func yamlKey(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return quote(s)
		}
	}
	if s == "" || s[0] == '-' || s[0] == '.' {
		return quote(s)
	}
	return s
}

// oneLine keeps a comment on one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, s)
}

// datastores are ports no fail2ban jail should have made public.
var datastores = map[uint16]string{
	3306: "MySQL", 5432: "PostgreSQL", 1433: "SQL Server", 6379: "Redis", 27017: "MongoDB",
	11211: "memcached", 9200: "Elasticsearch", 10000: "Webmin", 2812: "Monit web interface",
}

// datastore names the database or admin interface a single port is.
func datastore(s schema.PortSpec) string {
	if s.From != s.To {
		return ""
	}
	if what, ok := datastores[s.From]; ok {
		return "a " + what + " port"
	}
	return ""
}
