package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/lab"
)

func runMain(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = Main(args, strings.NewReader(""), &o, &e)
	return o.String(), e.String(), code
}

// Every registered command is in the tree, and every command and
// subcommand answers -h, --help and `moat help PATH` with the same text,
// on stdout, exit 0.
func TestHelpEverywhere(t *testing.T) {
	tr := tree()
	for _, c := range commands() {
		if find(tr, []string{c.name}) == nil {
			t.Errorf("command %q missing from the tree", c.name)
		}
	}
	walk(tr, func(n *node) {
		want, errOut, code := runMain(append([]string{"help"}, n.Path...)...)
		if code != ExitOK || errOut != "" || !strings.HasPrefix(want, "Usage: moat ") {
			t.Errorf("moat help %s: code %d, stderr %q, stdout %q", n.Name(), code, errOut, want)
			return
		}
		if n.Path[0] == "help" {
			return
		}
		for _, h := range []string{"-h", "--help"} {
			got, errOut, code := runMain(append(append([]string{}, n.Path...), h)...)
			if code != ExitOK || errOut != "" || got != want {
				t.Errorf("moat %s %s: code %d, stderr %q, stdout differs from moat help:\n%s\nwant:\n%s", n.Name(), h, code, errOut, got, want)
			}
		}
	})
	// The stumble: `moat help bans` printed the general usage.
	gen, _, _ := runMain("help")
	bans, _, _ := runMain("help", "bans")
	if bans == gen || !strings.Contains(bans, "--json") {
		t.Errorf("moat help bans ignores its argument:\n%s", bans)
	}
	// -h as a flag's value is the command's business, not a help request.
	if p, ok := helpRequest(command{name: "ban"}, []string{"203.0.113.9", "--reason", "-h"}); ok {
		t.Errorf("--reason -h taken as help for %v", p)
	}
	if p, ok := helpRequest(command{name: "ban"}, []string{"203.0.113.9", "--force", "-h"}); !ok || strings.Join(p, " ") != "ban 203.0.113.9" {
		t.Errorf("ban ADDR --force -h: %v %v", p, ok)
	}
	if _, errOut, code := runMain("help", "nosuch"); code != ExitUsage || !strings.Contains(errOut, "unknown command") {
		t.Errorf("moat help nosuch: code %d, %q", code, errOut)
	}
}

// Help writes long flags with two dashes, as the docs do: no "-json"
// anywhere in any help text, synopses included.
func TestHelpSpellsLongFlagsWithTwoDashes(t *testing.T) {
	single := regexp.MustCompile(`(^|[\s\[(|,])-[a-z][a-z-]+\b`)
	check := func(what, text string) {
		if m := single.FindString(text); m != "" {
			t.Errorf("%s: long flag with one dash %q in:\n%s", what, strings.TrimSpace(m), text)
		}
	}
	u, _, _ := runMain("--help")
	check("moat --help", u)
	walk(tree(), func(n *node) {
		out, _, _ := runMain(append([]string{"help"}, n.Path...)...)
		check("moat help "+n.Name(), out)
	})
	// A flag error shows the same help on stderr, exit 2.
	_, errOut, code := runMain("bans", "--nosuch")
	if code != ExitUsage || !strings.Contains(errOut, "--json") {
		t.Errorf("moat bans --nosuch: code %d, stderr %q", code, errOut)
	}
	check("moat bans --nosuch", strings.ReplaceAll(errOut, "flag provided but not defined: -nosuch", ""))
}

func TestVersionFlags(t *testing.T) {
	plain, _, code := runMain("version")
	if code != ExitOK || !strings.HasPrefix(plain, "moat ") {
		t.Fatalf("moat version: %d %q", code, plain)
	}
	for _, a := range []string{"-v", "--version"} {
		if out, _, code := runMain(a); code != ExitOK || out != plain {
			t.Errorf("moat %s: %d %q, want %q", a, code, out, plain)
		}
	}
	out, _, code := runMain("version", "--json")
	var v versionInfo
	if code != ExitOK || json.Unmarshal([]byte(out), &v) != nil || v.Version == "" || v.Go == "" || v.Arch == "" {
		t.Fatalf("moat version --json: %d %q", code, out)
	}
	if strings.HasPrefix(v.Version, "v") || !strings.Contains(plain, v.Version) {
		t.Errorf("version %q (plain %q): no leading v, same in both", v.Version, plain)
	}
	// `moat audit -v` stays audit's verbose flag, not the version.
	if out, _, _ := runMain("help", "audit"); !strings.Contains(out, "  -v ") {
		t.Errorf("audit lost -v:\n%s", out)
	}
}

// The man page and the three completion scripts carry every command,
// subcommand and flag of the tree: generated from it, they cannot drift.
func TestManAndCompletionsCoverTree(t *testing.T) {
	man, _, code := runMain("man")
	if code != ExitOK {
		t.Fatalf("moat man: %d", code)
	}
	scripts := map[string]string{}
	for _, sh := range completionShells {
		out, errOut, code := runMain("completion", sh)
		if code != ExitOK || out == "" {
			t.Fatalf("moat completion %s: %d %q", sh, code, errOut)
		}
		scripts[sh] = out
	}
	walk(tree(), func(n *node) {
		if !strings.Contains(man, ".SS "+roff("moat "+n.Synopsis)+"\n") {
			t.Errorf("man page lacks %q", n.Name())
		}
		for sh, s := range scripts {
			if !strings.Contains(s, n.Path[len(n.Path)-1]) {
				t.Errorf("%s completion lacks %q", sh, n.Name())
			}
		}
		for _, d := range n.Flags {
			for _, name := range d.Spelled() {
				if !strings.Contains(man, `\fB`+roff(name)+`\fR`) {
					t.Errorf("man page lacks %s of %q", name, n.Name())
				}
				if !strings.Contains(scripts["bash"], " "+name) || !strings.Contains(scripts["zsh"], "'"+name+"'") {
					t.Errorf("bash/zsh completion lacks %s of %q", name, n.Name())
				}
				fish := " -l " + d.Names[len(d.Names)-1]
				if len(name) == 2 {
					fish = " -s " + name[1:]
				}
				if !strings.Contains(scripts["fish"], fish) {
					t.Errorf("fish completion lacks %s of %q", name, n.Name())
				}
			}
		}
	})
}

// bash itself completes every subcommand and flag from the generated
// script, the way a user's Tab would.
func TestBashCompletionRuns(t *testing.T) {
	lab.RequireTool(t, "bash")
	script, _, _ := runMain("completion", "bash")
	dir := t.TempDir()
	path := filepath.Join(dir, "moat.bash")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) []string {
		t.Helper()
		var b strings.Builder
		b.WriteString("source " + path + "\nCOMP_WORDS=(moat")
		for _, w := range words {
			b.WriteString(" '" + w + "'")
		}
		b.WriteString(")\nCOMP_CWORD=${#COMP_WORDS[@]}; COMP_CWORD=$((COMP_CWORD-1))\n_moat\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
		out, err := exec.Command("bash", "--norc", "--noprofile", "-c", b.String()).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		return strings.Fields(string(out))
	}
	has := func(got []string, w string) bool {
		for _, g := range got {
			if g == w {
				return true
			}
		}
		return false
	}
	walk(tree(), func(n *node) {
		if n.Path[0] == "help" {
			return
		}
		if len(n.Path) == 1 {
			if got := complete(n.Path[0][:1]); !has(got, n.Path[0]) {
				t.Errorf("moat %s<TAB> = %v, want %s", n.Path[0][:1], got, n.Path[0])
			}
		}
		for _, s := range n.Subs {
			w := s.Path[len(s.Path)-1]
			if got := complete(append(append([]string{}, n.Path...), "")...); !has(got, w) {
				t.Errorf("moat %s <TAB> = %v, want %s", n.Name(), got, w)
			}
		}
		got := complete(append(append([]string{}, n.Path...), "-")...)
		for _, d := range n.Flags {
			for _, name := range d.Spelled() {
				if !has(got, name) {
					t.Errorf("moat %s -<TAB> = %v, lacks %s", n.Name(), got, name)
				}
			}
		}
	})
	// A flag's value completes files, not subcommands.
	if got := complete("audit", "--root", ""); len(got) != 0 {
		t.Errorf("moat audit --root <TAB> offers %v, want files (empty reply)", got)
	}
}

// fish completes every subcommand and flag from its generated script, and
// only the flags of the command typed: `moat firewall status --` must not
// offer `moat status`'s --state.
func TestFishCompletionRuns(t *testing.T) {
	lab.RequireTool(t, "fish")
	script, _, _ := runMain("completion", "fish")
	path := filepath.Join(t.TempDir(), "moat.fish")
	os.WriteFile(path, []byte(script), 0o644)
	if out, err := exec.Command("fish", "--no-execute", path).CombinedOutput(); err != nil {
		t.Fatalf("fish --no-execute: %v\n%s", err, out)
	}
	// One fish run for every line typed: each query prints its answers
	// after a marker line.
	var queries []string
	walk(tree(), func(n *node) {
		if n.Path[0] != "help" {
			queries = append(queries, "moat "+n.Name()+" -")
			if len(n.Subs) > 0 {
				queries = append(queries, "moat "+n.Name()+" ")
			}
		}
	})
	queries = append(queries, "moat ")
	var b strings.Builder
	b.WriteString("source " + path + "\n")
	for _, q := range queries {
		fmt.Fprintf(&b, "echo '@@%s'\ncomplete -C'%s'\n", q, q)
	}
	out, err := exec.Command("fish", "--no-config", "-c", b.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("fish: %v\n%s", err, out)
	}
	got := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(string(out), "\n") {
		if q, ok := strings.CutPrefix(line, "@@"); ok {
			cur = q
			continue
		}
		if w, _, _ := strings.Cut(line, "\t"); w != "" {
			got[cur] = append(got[cur], w)
		}
	}
	has := func(ws []string, w string) bool { return slices.Contains(ws, w) }
	for _, n := range tree() {
		if !has(got["moat "], n.Path[0]) {
			t.Errorf("moat <TAB> lacks %s: %v", n.Path[0], got["moat "])
		}
	}
	walk(tree(), func(n *node) {
		if n.Path[0] == "help" {
			return
		}
		for _, s := range n.Subs {
			if !has(got["moat "+n.Name()+" "], s.Path[len(s.Path)-1]) {
				t.Errorf("moat %s <TAB> lacks %s", n.Name(), s.Name())
			}
		}
		offered := got["moat "+n.Name()+" -"]
		for _, d := range n.Flags {
			for _, name := range d.Spelled() {
				if !has(offered, name) {
					t.Errorf("moat %s -<TAB> = %v, lacks %s", n.Name(), offered, name)
				}
			}
		}
	})
	if has(got["moat firewall status -"], "--state") {
		t.Errorf("moat firewall status -<TAB> offers moat status's --state: %v", got["moat firewall status -"])
	}
}

// zsh reads its generated script without a syntax error.
func TestZshCompletionParses(t *testing.T) {
	lab.RequireTool(t, "zsh")
	script, _, _ := runMain("completion", "zsh")
	path := filepath.Join(t.TempDir(), "_moat")
	os.WriteFile(path, []byte(script), 0o644)
	if out, err := exec.Command("zsh", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
}

// zsh completes from its generated script for real: an interactive zsh
// on a pseudo-terminal with compinit loads _moat from fpath, and Tab
// after "moat " offers every command, after a command with subcommands
// its subcommands, after "-" the command's own flags, and files after a
// flag that takes a value (testdata/zsh-complete.zsh drives it).
func TestZshCompletionRuns(t *testing.T) {
	lab.RequireTool(t, "zsh")
	script, _, _ := runMain("completion", "zsh")
	dir := t.TempDir()
	fp := filepath.Join(dir, "functions")
	os.Mkdir(fp, 0o755)
	if err := os.WriteFile(filepath.Join(fp, "_moat"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	driver, err := filepath.Abs("testdata/zsh-complete.zsh")
	if err != nil {
		t.Fatal(err)
	}
	// The working directory holds one file, for the value of --root.
	cwd := filepath.Join(dir, "cwd")
	os.Mkdir(cwd, 0o755)
	os.WriteFile(filepath.Join(cwd, "somefile"), nil, 0o644)
	queries := []string{"moat ", "moat a", "moat audit --root ", "moat firewall status -", "moat help "}
	for _, n := range tree() {
		if len(n.Subs) > 0 && n.Path[0] != "help" {
			queries = append(queries, "moat "+n.Name()+" ")
		}
	}
	flagged := []string{"apply", "allow", "audit", "expose", "config check"}
	for _, c := range flagged {
		queries = append(queries, "moat "+c+" -")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "zsh", append([]string{"-f", driver, fp}, queries...)...)
	cmd.Dir = cwd
	cmd.Env = append(os.Environ(), "HOME="+dir, "TERM=dumb")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("zsh: %v\n%s", err, out)
	}
	got := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(string(out), "\n") {
		if q, ok := strings.CutPrefix(line, "@@Q "); ok {
			cur = q
			got[cur] = []string{}
		} else if w, ok := strings.CutPrefix(line, "@@C "); ok {
			got[cur] = append(got[cur], w)
		}
	}
	for _, q := range queries {
		if _, ok := got[q]; !ok {
			t.Fatalf("zsh never completed %q:\n%s", q, out)
		}
	}
	for _, n := range tree() {
		if !slices.Contains(got["moat "], n.Path[0]) {
			t.Errorf("moat <TAB> lacks %s: %v", n.Path[0], got["moat "])
		}
	}
	for _, w := range got["moat a"] {
		if !strings.HasPrefix(w, "a") {
			t.Errorf("moat a<TAB> offers %s", w)
		}
	}
	if !slices.Contains(got["moat a"], "apply") || !slices.Contains(got["moat a"], "audit") {
		t.Errorf("moat a<TAB> = %v", got["moat a"])
	}
	walk(tree(), func(n *node) {
		if n.Path[0] == "help" || len(n.Subs) == 0 || len(n.Path) > 1 {
			return
		}
		for _, s := range n.Subs {
			if !slices.Contains(got["moat "+n.Name()+" "], s.Path[len(s.Path)-1]) {
				t.Errorf("moat %s <TAB> = %v, lacks %s", n.Name(), got["moat "+n.Name()+" "], s.Name())
			}
		}
	})
	walk(tree(), func(n *node) {
		if !slices.Contains(flagged, n.Name()) {
			return
		}
		offered := got["moat "+n.Name()+" -"]
		if len(n.Flags) == 0 {
			t.Errorf("moat %s has no flags to check", n.Name())
		}
		for _, d := range n.Flags {
			for _, name := range d.Spelled() {
				if !slices.Contains(offered, name) {
					t.Errorf("moat %s -<TAB> = %v, lacks %s", n.Name(), offered, name)
				}
			}
		}
	})
	if slices.Contains(got["moat firewall status -"], "--state") {
		t.Errorf("moat firewall status -<TAB> offers moat status's --state: %v", got["moat firewall status -"])
	}
	for _, w := range []string{"apply", "allow", "firewall"} {
		if !slices.Contains(got["moat help "], w) {
			t.Errorf("moat help <TAB> = %v, lacks %s", got["moat help "], w)
		}
	}
	if r := got["moat audit --root "]; !slices.Contains(r, "somefile") || slices.Contains(r, "apply") {
		t.Errorf("moat audit --root <TAB> = %v, want the files here", r)
	}
}
