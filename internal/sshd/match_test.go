package sshd

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMatchPatternList(t *testing.T) {
	for _, tc := range []struct {
		s, list string
		want    int
	}{
		{"ops", "ops", 1},
		{"ops", "op?", 1},
		{"ops", "o*", 1},
		{"ops", "*", 1},
		{"ops", "dev,ops", 1},
		{"ops", "!ops", -1},
		{"ops", "*,!ops", -1},
		{"ops", "!dev", 0},
		{"ops", "OPS", 0}, // case-sensitive for users and groups
		{"ops", "o[p]s", 0},
		{"", "*", 1},
		{"a*b", "a*b", 1},
		{"ops", "", 0},
	} {
		if got := MatchPatternList(tc.s, tc.list); got != tc.want {
			t.Errorf("MatchPatternList(%q, %q) = %d, want %d", tc.s, tc.list, got, tc.want)
		}
	}
}

func TestAccountsMatchGroup(t *testing.T) {
	acc := loadAccounts("testdata/hosts/matchgroup")
	for _, tc := range []struct {
		user, pats string
		want       bool
	}{
		{"alice", "ops", true},
		{"alice", "ops,!interns", true},
		{"bob", "ops,!interns", false}, // a negated match wins
		{"carol", "ops", true},         // primary group
		{"dave", "ops", false},
		{"root", "wheel", true},
		{"nobody-here", "*", false}, // no such user: sshd cannot match a group
	} {
		if got := acc.MatchGroup(tc.user, tc.pats); got != tc.want {
			t.Errorf("MatchGroup(%s, %s) = %v, want %v (groups %v)", tc.user, tc.pats, got, tc.want, acc.GroupsOf(tc.user))
		}
	}
}

// Under a fixture root Match Group follows the fixture's /etc/group, not
// the running host's (where none of these users exist).
func TestRunnerMatchGroupFixture(t *testing.T) {
	requireSSHD(t)
	r := Runner{Root: "testdata/hosts/matchgroup"}
	for _, tc := range []struct {
		c         Context
		key, want string
	}{
		{Context{User: "alice", Addr: "203.0.113.7"}, "passwordauthentication", "yes"},
		{Context{User: "carol", Addr: "203.0.113.7"}, "passwordauthentication", "yes"},
		{Context{User: "bob", Addr: "203.0.113.7"}, "passwordauthentication", "no"},
		{Context{User: "dave", Addr: "203.0.113.7"}, "passwordauthentication", "no"},
		{Context{User: "root", Addr: "10.1.2.3"}, "permitrootlogin", "without-password"},
		{Context{User: "root", Addr: "203.0.113.7"}, "permitrootlogin", "no"},
		{Context{}, "passwordauthentication", "no"},
	} {
		e, err := r.Effective(context.Background(), tc.c)
		if err != nil {
			t.Fatalf("%v: %v", tc.c, err)
		}
		if got := e.Get(tc.key); got != tc.want {
			t.Errorf("%v: %s = %q, want %q", tc.c, tc.key, got, tc.want)
		}
	}
}

// A Match LocalPort block makes sshd refuse any -C without lport; the
// runner fills in a port no block names and says so, and an explicit
// lport is evaluated as given.
func TestRunnerMatchLocalPort(t *testing.T) {
	requireSSHD(t)
	r := Runner{Root: "testdata/hosts/matchlport"}
	for _, tc := range []struct {
		c        Context
		want     string
		wantNote bool
	}{
		{Context{}, "no", true},
		{Context{User: "root", Addr: "203.0.113.7"}, "no", true},
		{Context{User: "root", Addr: "203.0.113.7", LPort: 22}, "no", false},
		{Context{User: "root", Addr: "203.0.113.7", LPort: 2222}, "yes", false},
	} {
		e, err := r.Effective(context.Background(), tc.c)
		if err != nil {
			t.Fatalf("%v: %v", tc.c, err)
		}
		if got := e.Get("passwordauthentication"); got != tc.want {
			t.Errorf("%v: passwordauthentication %q, want %q", tc.c, got, tc.want)
		}
		notes := e.Notes()
		if tc.wantNote != (len(notes) > 0) {
			t.Errorf("%v: notes %q", tc.c, notes)
		}
		if tc.wantNote && !strings.Contains(notes[0], "LocalPort") {
			t.Errorf("%v: note %q does not name LocalPort", tc.c, notes[0])
		}
		if !slices.Equal(e.All("port"), []string{"22", "2222"}) {
			t.Errorf("%v: ports %v", tc.c, e.All("port"))
		}
	}
}

func TestConfigFilesRelativeInclude(t *testing.T) {
	root := "testdata/hosts/matchlport"
	got, err := ConfigFiles(root, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/10-alt.conf"}
	if !slices.Equal(got, want) {
		t.Errorf("ConfigFiles(%s) = %v, want %v", filepath.Clean(root), got, want)
	}
}

func TestNeutralPort(t *testing.T) {
	for _, tc := range []struct {
		named []int
		want  int
	}{{nil, 1}, {[]int{1}, 2}, {[]int{3, 1, 2}, 4}, {[]int{2222}, 1}} {
		if got := neutralPort(tc.named); got != tc.want {
			t.Errorf("neutralPort(%v) = %d, want %d", tc.named, got, tc.want)
		}
	}
}

// FuzzRewriteMatchGroups: any config text survives the rewrite with every
// line that is not a Match line left as it was, and the same line count.
func FuzzRewriteMatchGroups(f *testing.F) {
	f.Add("PasswordAuthentication no\nMatch Group ops,!interns Address 10.0.0.0/8\n\tPasswordAuthentication yes\n")
	f.Add("match group \"a b\"\nMatch Group\nMatch all\nMatch LocalPort 2222 Group *\n")
	f.Add("Match Group 'x\nInclude a\x00b\n")
	acc := loadAccounts("testdata/hosts/matchgroup")
	f.Fuzz(func(t *testing.T, text string) {
		out := string(rewriteMatchGroups([]byte(text), acc))
		in, got := strings.Split(text, "\n"), strings.Split(out, "\n")
		if len(in) != len(got) {
			t.Fatalf("%d lines became %d", len(in), len(got))
		}
		for i := range in {
			kw, _, ok := splitKeyword(in[i])
			if (!ok || !strings.EqualFold(kw, "match")) && in[i] != got[i] {
				t.Fatalf("line %d changed: %q -> %q", i+1, in[i], got[i])
			}
		}
		_ = matchLocalPorts([]byte(text))
	})
}

// completeSpec fills what sshd says is missing and drops what this sshd's
// -C does not know, saying so; anything else is left as an error.
func TestCompleteSpec(t *testing.T) {
	inv := &invocation{fixture: &fixtureTree{localPorts: []int{1, 2222}}}
	for _, tc := range []struct {
		spec, stderr, want, note string
		ok                       bool
	}{
		{"user=root", "'Match LocalPort' in configuration but 'lport' not in connection test specification.", "user=root,lport=2", "port 1, 2222", true},
		{"", "'Match LocalPort' in configuration but 'lport' not in connection test specification.", "lport=2", "LocalPort", true},
		{"user=root", "'Match RDomain' in configuration but 'rdomain' not in connection test specification.", "user=root,rdomain=moat-none", "Match RDomain", true},
		{"user=root,lport=22", "'Match LocalPort' in configuration but 'lport' not in connection test specification.", "", "", false},
		{"user=root,lport=22,addr=1.2.3.4", "Invalid test mode specification lport=22", "user=root,addr=1.2.3.4", "cannot test lport", true},
		{"user=root", "Match Frobnicate: Unsupported Match attribute frobnicate", "", "", false},
		{"user=root", "'Match Frob' in configuration but 'frob' not in connection test specification.", "", "", false},
	} {
		got, note, ok := inv.completeSpec(tc.spec, []byte(tc.stderr))
		if ok != tc.ok || got != tc.want || !strings.Contains(note, tc.note) {
			t.Errorf("completeSpec(%q, %q) = %q, %q, %v; want %q, ~%q, %v", tc.spec, tc.stderr, got, note, ok, tc.want, tc.note, tc.ok)
		}
	}
}
