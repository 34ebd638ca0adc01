package sshd

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moat-sh/moat/internal/host"
)

// Accounts is a fixture's user and group database: what sshd would learn
// from NSS on that host. sshd -T resolves Match Group through the running
// host's NSS, so under a fixture root the Group criteria are rewritten from
// these (see rewriteMatchGroups).
type Accounts struct {
	// Users maps a login name to its primary GID (first entry wins, as
	// with getpwnam).
	Users map[string]int
	// Order lists the user names in file order, for stable output.
	Order []string
	// GroupName maps a GID to its name (first entry wins, as getgrgid).
	GroupName map[int]string
	// Members maps a user to the supplementary groups listing it.
	Members map[string][]string
}

// GroupsOf returns the names of the groups user is in, as getgrouplist
// and getgrgid would give them to sshd: the primary group (when it has a
// name) and every group listing user as a member.
func (a *Accounts) GroupsOf(user string) []string {
	gid, ok := a.Users[user]
	if !ok {
		return nil
	}
	var out []string
	if n, ok := a.GroupName[gid]; ok {
		out = append(out, n)
	}
	for _, g := range a.Members[user] {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// MatchGroup evaluates a Match Group pattern list for user the way sshd's
// ga_match_pattern_list does: a negated pattern matching any of the user's
// groups wins (no match), otherwise any positive match matches. A user who
// does not exist, or is in no group, never matches.
func (a *Accounts) MatchGroup(user, patterns string) bool {
	found := false
	for _, g := range a.GroupsOf(user) {
		switch MatchPatternList(g, patterns) {
		case -1:
			return false
		case 1:
			found = true
		}
	}
	return found
}

// MatchPatternList is OpenSSH's match_pattern_list (case-sensitive): the
// comma-separated patterns, each optionally negated with '!', are tried
// against s; -1 if a negated pattern matches, 1 if a positive one does and
// no negated one, 0 otherwise.
func MatchPatternList(s, list string) int {
	got := 0
	for sub := range strings.SplitSeq(list, ",") {
		neg := strings.HasPrefix(sub, "!")
		if neg {
			sub = sub[1:]
		}
		if MatchPattern(s, sub) {
			if neg {
				return -1
			}
			got = 1
		}
	}
	return got
}

// MatchPattern is OpenSSH's match_pattern: '*' matches any run of
// characters, '?' any one; nothing else is special.
func MatchPattern(s, p string) bool {
	for {
		if p == "" {
			return s == ""
		}
		switch p[0] {
		case '*':
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if MatchPattern(s[i:], p) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
		}
		s, p = s[1:], p[1:]
	}
}

// neverUser is a User pattern list no name matches: a lone negation.
const neverUser = "!*"

// usersInGroups lists the users for whom MatchGroup(patterns) holds, as a
// User pattern list; names that would read as patterns are left out.
func (a *Accounts) usersInGroups(patterns string) string {
	var names []string
	for _, u := range a.Order {
		if strings.ContainsAny(u, "*?!,") {
			continue
		}
		if a.MatchGroup(u, patterns) {
			names = append(names, u)
		}
	}
	if len(names) == 0 {
		return neverUser
	}
	return strings.Join(names, ",")
}

// rewriteMatchGroups turns every "Group LIST" criterion of every Match line
// in data into "User NAMES", the users the fixture's accounts put in those
// groups, so sshd -T evaluates Match Group against the fixture and not the
// running host's NSS. Lines that do not parse are left for sshd to reject.
func rewriteMatchGroups(data []byte, acc *Accounts) []byte {
	if acc == nil {
		return data
	}
	lines := strings.Split(string(data), "\n")
	changed := false
	for i, line := range lines {
		kw, args, ok := splitKeyword(line)
		if !ok || !strings.EqualFold(kw, "match") {
			continue
		}
		argv, err := argvSplit(args)
		if err != nil {
			continue
		}
		hasGroup := false
		for j := 0; j+1 < len(argv); j += 2 {
			if strings.EqualFold(argv[j], "group") {
				hasGroup = true
			}
		}
		if !hasGroup || len(argv)%2 != 0 {
			continue
		}
		var b strings.Builder
		b.WriteString("Match")
		for j := 0; j+1 < len(argv); j += 2 {
			k, v := argv[j], argv[j+1]
			if strings.EqualFold(k, "group") {
				k, v = "User", acc.usersInGroups(v)
			}
			b.WriteString(" " + k + " " + quoteArg(v))
		}
		lines[i] = b.String()
		changed = true
	}
	if !changed {
		return data
	}
	return []byte(strings.Join(lines, "\n"))
}

// matchLocalPorts returns the ports every "Match ... LocalPort N" line in
// data names.
func matchLocalPorts(data []byte) []int {
	var out []int
	for line := range strings.SplitSeq(string(data), "\n") {
		kw, args, ok := splitKeyword(line)
		if !ok || !strings.EqualFold(kw, "match") {
			continue
		}
		argv, err := argvSplit(args)
		if err != nil {
			continue
		}
		for j := 0; j+1 < len(argv); j += 2 {
			if strings.EqualFold(argv[j], "localport") {
				if n, err := strconv.Atoi(argv[j+1]); err == nil {
					out = append(out, n)
				}
			}
		}
	}
	return out
}

// neutralPort is a port no Match LocalPort names: evaluating with it
// shows the configuration as it is outside every LocalPort block.
func neutralPort(named []int) int {
	sort.Ints(named)
	p := 1
	for _, n := range named {
		if n == p {
			p++
		}
	}
	return p
}

// loadAccounts reads a fixture root's /etc/passwd and /etc/group. Missing
// files give an empty database: nobody exists, so no Match Group matches,
// as on a host whose NSS knows no such users.
func loadAccounts(root string) *Accounts {
	h := host.New(root)
	acc := &Accounts{Users: map[string]int{}, GroupName: map[int]string{}, Members: map[string][]string{}}
	if b, err := h.ReadFile("/etc/passwd"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			f := strings.Split(line, ":")
			if len(f) != 7 || f[0] == "" || f[0][0] == '#' || f[0][0] == '+' || f[0][0] == '-' {
				continue
			}
			gid, err := strconv.Atoi(f[3])
			if err != nil {
				continue
			}
			if _, dup := acc.Users[f[0]]; !dup {
				acc.Users[f[0]] = gid
				acc.Order = append(acc.Order, f[0])
			}
		}
	}
	if b, err := h.ReadFile("/etc/group"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			f := strings.Split(line, ":")
			if len(f) != 4 || f[0] == "" || f[0][0] == '#' || f[0][0] == '+' || f[0][0] == '-' {
				continue
			}
			gid, err := strconv.Atoi(f[2])
			if err != nil {
				continue
			}
			if _, dup := acc.GroupName[gid]; !dup {
				acc.GroupName[gid] = f[0]
			}
			for m := range strings.SplitSeq(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" && !slices.Contains(acc.Members[m], f[0]) {
					acc.Members[m] = append(acc.Members[m], f[0])
				}
			}
		}
	}
	return acc
}
