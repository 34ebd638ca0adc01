package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSudoRules(t *testing.T) {
	rules, err := New(fixtureRoot).SudoRules()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		got = append(got, fmt.Sprintf("%s:%d %v %s", r.File, r.Line, r.NoPasswd, r.Text))
	}
	want := []string{
		"/etc/sudoers:4 false Defaults	env_reset",
		`/etc/sudoers:5 false Defaults	secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"`,
		"/etc/sudoers:8 false root	ALL=(ALL:ALL) ALL",
		"/etc/sudoers:11 false %sudo	ALL=(ALL:ALL) ALL",
		"/etc/sudoers:12 true #1001	ALL=(ALL) NOPASSWD: /usr/bin/apt",
		"/etc/sudoers.local:1 true ops ALL = (root) PASSWD: /bin/rm, NOPASSWD: /bin/ls",
		"/etc/sudoers.d/90-cloud-init-users:4 true alice ALL=(ALL) NOPASSWD:ALL",
		"/etc/sudoers.d/deploy:1 true deploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart app, /usr/bin/systemctl reload app",
		"/etc/sudoers.d/deploy:3 true Defaults:deploy !authenticate",
		"/etc/sudoers.d/deploy:4 false carol ALL=(ALL) ALL",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(NoPasswdRules(rules)); n != 5 {
		t.Errorf("NoPasswdRules: %d, want 5", n)
	}
}

func TestSudoRulesWithoutIncludedir(t *testing.T) {
	dir := tempFixture(t)
	p := filepath.Join(dir, "etc/sudoers")
	if err := os.WriteFile(p, []byte("root ALL=(ALL) ALL\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	rules, err := New(dir).SudoRules()
	if err != nil || len(rules) != 1 {
		t.Errorf("without #includedir, sudoers.d is inert: got %v, %v", rules, err)
	}
}

func TestSudoRulesIncludeLoop(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "etc/sudoers"), []byte("@include /etc/a\n"), 0o440)
	os.WriteFile(filepath.Join(dir, "etc/a"), []byte("x ALL=NOPASSWD: ALL\n@include \"b\"\n"), 0o440)
	os.WriteFile(filepath.Join(dir, "etc/b"), []byte("@include a\n@include /etc/missing\n"), 0o440)
	rules, err := New(dir).SudoRules()
	if err != nil || len(rules) != 1 || rules[0].File != "/etc/a" {
		t.Errorf("include loop: %v, %v", rules, err)
	}
	_, err = New(t.TempDir()).SudoRules()
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing /etc/sudoers: %v", err)
	}
}

func TestStripSudoComment(t *testing.T) {
	for in, want := range map[string]string{
		"# comment":                     "",
		"root ALL=(ALL) ALL # trailing": "root ALL=(ALL) ALL",
		"#1000 ALL=(ALL) ALL":           "#1000 ALL=(ALL) ALL",
		"%#1000 ALL=(ALL) ALL":          "%#1000 ALL=(ALL) ALL",
		`Defaults x="a # b" # c`:        `Defaults x="a # b"`,
		"#includedir /etc/sudoers.d":    "#includedir /etc/sudoers.d",
		`a\#b ALL=ALL`:                  `a\#b ALL=ALL`,
	} {
		if got := stripSudoComment(in); got != want {
			t.Errorf("stripSudoComment(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVisudoCheck(t *testing.T) {
	if err := New(fixtureRoot).VisudoCheck(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("fixture: %v, want ErrUnavailable", err)
	}
	requireRoot(t)
	requireTool(t, "visudo")
	if _, err := os.Stat("/etc/sudoers"); err != nil {
		skipOrFail(t, "no /etc/sudoers on this host")
	}
	if err := New("").VisudoCheck(context.Background()); err != nil {
		t.Errorf("visudo -c on this host: %v", err)
	}
}

func FuzzSudoersLines(f *testing.F) {
	for _, p := range []string{"/etc/sudoers", "/etc/sudoers.d/deploy"} {
		b, err := os.ReadFile(fixtureRoot + p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("a \\\n\\")
	f.Fuzz(func(t *testing.T, s string) {
		last := 0
		for _, l := range sudoersLines(s) {
			if l.n <= last || l.text == "" {
				t.Fatalf("line %d after %d: %q", l.n, last, l.text)
			}
			last = l.n
		}
	})
}
