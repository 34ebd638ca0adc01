package f2bimport

import (
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/filter"
)

// FuzzINI feeds the INI reader and the interpolation outside input: no
// panic, no runaway, and an option read back is what the file holds.
func FuzzINI(f *testing.F) {
	f.Add([]byte("[DEFAULT]\nbantime = 1h\n[sshd]\nenabled = true\nlogpath = %(sshd_log)s\n  /var/log/x ; c\nsshd_log = /var/log/auth.log\n"))
	f.Add([]byte("[a]\nx = %(x)s\n[b]\ny = %(a/x)s %(known/y)s %(default/z)s %%\n"))
	f.Add([]byte("[INCLUDES]\nbefore = common.conf\n[Definition]\nfailregex = ^<lt_<logtype>/x> <HOST>$\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseINI("fuzz.conf", data)
		if err != nil {
			return
		}
		c := newConfig()
		c.merge(file)
		c.merge(file) // a second file overriding every option: KNOWN/
		for _, s := range c.Sections() {
			for k, v := range c.Own(s) {
				if strings.ContainsAny(k, "\n") {
					t.Fatalf("option name %q spans lines", k)
				}
				got, err := c.Get(s, k, nil)
				if err == nil && !strings.Contains(v, "%") && got != v {
					t.Fatalf("[%s] %s = %q read back as %q", s, k, v, got)
				}
				x := &tagExpander{c: c, vars: map[string]string{}}
				_, _ = x.expand(v)
			}
			_ = readJail(c, s)
		}
	})
}

// FuzzTranslate feeds the regex translation any text: what it returns
// compiles as moat compiles user filters.
func FuzzTranslate(f *testing.F) {
	f.Add(`^%(__prefix_line)sLogin failed for <F-USER>\S+</F-USER> from <HOST>$`, "")
	f.Add(`^user (?!`+"`"+`)<F-USER>x</F-USER> from <ADDR>`, `^<F-MLFID>x</F-MLFID><F-CONTENT>.+</F-CONTENT>$`)
	f.Add(`relay=\[(?:IPv6:<IP6>|<IP4>)\]\Z{,3}`, "")
	f.Fuzz(func(t *testing.T, re, pref string) {
		fl := &Filter{FailRegex: []string{re}, IgnoreRegex: []string{re}, PrefRegex: pref, DatePattern: pref}
		for _, tr := range TranslateFail(fl) {
			if tr.Skip == "" {
				if _, err := filter.Compile("fuzz", filter.Custom{Regex: []string{tr.Regex}}, filter.Options{}); err != nil {
					t.Fatalf("translated %q to %q, which does not compile: %v", re, tr.Regex, err)
				}
			} else if tr.Regex != "" {
				t.Fatalf("skipped with a regex")
			}
		}
		_ = TranslateIgnore(fl)
		_, _, _ = ExtractOptions(re)
		_ = SplitWithOptions(re)
		_, _ = ParseTime(re)
	})
}
