package sshd

import (
	"path"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestSplitKeyword(t *testing.T) {
	for _, tc := range []struct {
		line, kw, args string
		ok             bool
	}{
		{"Include /a/*.conf", "Include", "/a/*.conf", true},
		{"  include   x y  \t", "include", "x y", true},
		{"Include=/a", "Include", "/a", true},
		{"Include = /a", "Include", "/a", true},
		{"Include ==/a", "Include", "=/a", true}, // only one '=' is skipped
		{`"Include" /a`, "Include", "/a", true},
		{`"Include /a`, "", "", false}, // no closing quote
		{"# Include /a", "", "", false},
		{"Include", "", "", false},
		{"Include   ", "", "", false},
		{"", "", "", false},
		{"\f", "", "", false},
	} {
		kw, args, ok := splitKeyword(tc.line)
		if kw != tc.kw || args != tc.args || ok != tc.ok {
			t.Errorf("splitKeyword(%q) = %q, %q, %v; want %q, %q, %v", tc.line, kw, args, ok, tc.kw, tc.args, tc.ok)
		}
	}
}

func TestArgvSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"a b\tc", []string{"a", "b", "c"}, false},
		{`"a b" 'c d'`, []string{"a b", "c d"}, false},
		{`a\ b`, []string{"a b"}, false},
		{`"a\ b"`, []string{`a\ b`}, false}, // inside quotes "\ " is not an escape
		{`"a\"b" 'x\'y' \\`, []string{`a"b`, `x'y`, `\`}, false},
		{`a\*b`, []string{`a\*b`}, false}, // unknown escapes stay for glob(3)
		{`a # comment`, []string{"a"}, false},
		{`a#b`, []string{"a#b"}, false},
		{`ab"cd ef"gh`, []string{"abcd efgh"}, false},
		{`"open`, nil, true},
		{``, nil, false},
	} {
		got, err := argvSplit(tc.in)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("argvSplit(%q) = %q, %v; want %q, err %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil {
			for _, a := range got {
				back, err := argvSplit(quoteArg(a))
				if err != nil || len(back) != 1 || back[0] != a {
					t.Errorf("quoteArg(%q) reads back as %q, %v", a, back, err)
				}
			}
		}
	}
}

func TestRewriteIncludes(t *testing.T) {
	in := "# comment Include /x\n" +
		"Include /etc/ssh/sshd_config.d/*.conf\n" +
		"PasswordAuthentication no\n" +
		"\tinclude=conf.d/a.conf \"b c.conf\" # trailing\n" +
		"Include ~/x.conf\n" +
		"Include /etc/ssh/../other/./y.conf\n" +
		"Include \"unbalanced\n" +
		"Include \"\"\n" +
		"Match User alice\n" +
		"  Include /m/*.conf\r\n" +
		"Port 22"
	want := "# comment Include /x\n" +
		`Include "/T/etc/ssh/sshd_config.d/*.conf"` + "\n" +
		"PasswordAuthentication no\n" +
		"\t" + `Include "/T/etc/ssh/conf.d/a.conf" "/T/etc/ssh/b c.conf"` + "\n" +
		`Include "~/x.conf"` + "\n" +
		`Include "/T/etc/other/y.conf"` + "\n" +
		"Include \"unbalanced\n" +
		"Include \"\"\n" +
		"Match User alice\n" +
		`  Include "/T/m/*.conf"` + "\n" +
		"Port 22"
	out, pats := rewriteIncludes([]byte(in), "/T")
	if string(out) != want {
		t.Errorf("rewritten:\n%s\nwant:\n%s", out, want)
	}
	wantPats := []string{"/etc/ssh/sshd_config.d/*.conf", "/etc/ssh/conf.d/a.conf", "/etc/ssh/b c.conf", "/etc/other/y.conf", "/m/*.conf"}
	if !reflect.DeepEqual(pats, wantPats) {
		t.Errorf("patterns = %q, want %q", pats, wantPats)
	}
}

func TestGlobRoot(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/ssh/d/10-a.conf": {},
		"etc/ssh/d/20-b.conf": {},
		"etc/ssh/d/x.txt":     {},
		"etc/ssh/d/a]":        {},
	}
	for _, tc := range []struct {
		pat  string
		want []string
	}{
		{"/etc/ssh/d/*.conf", []string{"etc/ssh/d/10-a.conf", "etc/ssh/d/20-b.conf"}},
		{"/etc/ssh/d/[!1]*.conf", []string{"etc/ssh/d/20-b.conf"}},
		{"/etc/ssh/d/[]a]]", []string{"etc/ssh/d/a]"}},
		{"/etc/ssh/d/x.txt", []string{"etc/ssh/d/x.txt"}},
		{"/etc/ssh/missing/*", nil},
		{"/etc/ssh/d/[", nil},
		{"/", nil},
	} {
		if got := globRoot(fsys, tc.pat); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("globRoot(%q) = %q, want %q", tc.pat, got, tc.want)
		}
	}
}

func TestEscapeGlob(t *testing.T) {
	if got := escapeGlob(`/tmp/a*b?[c]\d`); got != `/tmp/a\*b\?\[c\]\\d` {
		t.Errorf("escapeGlob = %q", got)
	}
}

func TestPosixToGoGlob(t *testing.T) {
	for in, want := range map[string]string{
		"*.conf":     "*.conf",
		"[!a]*":      "[^a]*",
		"[^a]*":      "[^a]*",
		"[]a]":       `[\]a]`,
		"[!]a]":      `[^\]a]`,
		"[-a]":       `[\-a]`,
		"[a-]":       `[a\-]`,
		"[a-z]":      "[a-z]",
		"a[":         `a\[`,
		"[!]":        `\[!]`,
		`\[x]`:       `\[x]`,
		`[\]]`:       `[\]]`,
		"x[ab]y[cd]": "x[ab]y[cd]",
	} {
		if got := posixToGoGlob(in); got != want {
			t.Errorf("posixToGoGlob(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzRewriteIncludes(f *testing.F) {
	f.Add([]byte("Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n"))
	f.Add([]byte("  include = \"conf dir/*.conf\" 'x' # c\r\nInclude \"open\n"))
	f.Add([]byte("Include ~/a \\\"b\\ c\n\"Include\" x"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, pats := rewriteIncludes(in, "/T")
		inLines := strings.Split(string(in), "\n")
		outLines := strings.Split(string(out), "\n")
		if len(inLines) != len(outLines) {
			t.Fatalf("%d lines became %d", len(inLines), len(outLines))
		}
		for i := range inLines {
			if inLines[i] == outLines[i] {
				continue
			}
			kw, args, ok := splitKeyword(outLines[i])
			if !ok || kw != "Include" {
				t.Fatalf("line %q became %q", inLines[i], outLines[i])
			}
			argv, err := argvSplit(args)
			if err != nil || len(argv) == 0 {
				t.Fatalf("rewritten line %q does not split: %v", outLines[i], err)
			}
		}
		for _, p := range pats {
			if !strings.HasPrefix(p, "/") || path.Clean(p) != p {
				t.Fatalf("pattern %q not absolute and clean", p)
			}
		}
	})
}

func TestSplitLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		kw   string
		args []string
		ok   bool
	}{
		{"PasswordAuthentication yes", "PasswordAuthentication", []string{"yes"}, true},
		{"  PasswordAuthentication=yes", "PasswordAuthentication", []string{"yes"}, true},
		{"PasswordAuthentication \"yes\" # on", "PasswordAuthentication", []string{"yes"}, true},
		{"\tpasswordauthentication = yes", "passwordauthentication", []string{"yes"}, true},
		{"# PasswordAuthentication yes", "", nil, false},
		{"", "", nil, false},
	} {
		kw, args, ok := SplitLine(tc.line)
		if kw != tc.kw || ok != tc.ok || strings.Join(args, "|") != strings.Join(tc.args, "|") {
			t.Errorf("SplitLine(%q) = %q, %q, %v", tc.line, kw, args, ok)
		}
	}
}
