package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The docs cannot drift: every command in a fenced block opened with
// "```sh runnable" in README.md, docs/*.md or a package README runs here,
// against the built binary, from the repository root, and must exit 0 (or
// the code its comment names: "# exit 3"). Only read-only commands may be
// marked runnable; the test refuses the others, so marking `moat apply`
// fails here rather than changing the host. Commands run without a shell:
// the line is split into arguments, quotes respected, nothing expanded.

// readOnly are the commands (first one or two words after moat) that
// change nothing on the host.
var readOnly = []string{"version", "help", "config check", "init", "audit", "filter test", "jail replay", "gateway check", "completion", "-h", "--help", "-v", "--version"}

type docCommand struct {
	file string
	line int
	args []string
	exit int
}

func TestDocs(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	more, _ := filepath.Glob(filepath.Join(root, "internal", "*", "README.md"))
	files = append(append([]string{filepath.Join(root, "README.md")}, files...), more...)
	var cmds []docCommand
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := runnable(string(data))
		if err != nil {
			t.Errorf("%s: %v", rel(root, f), err)
		}
		for i := range cs {
			cs[i].file = rel(root, f)
		}
		cmds = append(cmds, cs...)
	}
	if len(cmds) < 5 {
		t.Fatalf("only %d runnable commands in the docs: the marker is ```sh runnable", len(cmds))
	}
	bin := filepath.Join(t.TempDir(), "moat")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, c := range cmds {
		name := fmt.Sprintf("%s:%d %s", c.file, c.line, strings.Join(c.args, " "))
		if !isReadOnly(c.args[1:]) {
			t.Errorf("%s: not a read-only command; only those may be marked runnable", name)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, bin, c.args[1:]...)
		cmd.Dir = root
		// Not the host's config: the docs name the files they use.
		cmd.Env = append(withoutEnv(os.Environ(), "MOAT_CONFIG", "NO_COLOR"), "NO_COLOR=1", "HOME="+t.TempDir())
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		cancel()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if code != c.exit {
			t.Errorf("%s: exit %d, the docs say %d\nstdout:\n%s\nstderr:\n%s", name, code, c.exit, out.String(), errb.String())
		}
		if out.Len()+errb.Len() == 0 {
			t.Errorf("%s: printed nothing", name)
		}
	}
}

// runnable extracts the commands of ```sh runnable blocks.
func runnable(doc string) ([]docCommand, error) {
	var cmds []docCommand
	in := false
	for i, l := range strings.Split(doc, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case !in && strings.HasPrefix(t, "```"):
			// Other fences (```sh, ```yaml) and closing fences leave in
			// false: their lines are skipped.
			in = slices.Equal(strings.Fields(strings.TrimPrefix(t, "```")), []string{"sh", "runnable"})
			continue
		case in && t == "```":
			in = false
			continue
		case !in || t == "" || strings.HasPrefix(t, "#"):
			continue
		}
		args, comment, err := splitArgs(t)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		if len(args) < 2 || args[0] != "moat" {
			return nil, fmt.Errorf("line %d: a runnable line starts with moat: %q", i+1, t)
		}
		c := docCommand{line: i + 1, args: args}
		if rest, ok := strings.CutPrefix(strings.TrimSpace(comment), "exit "); ok {
			f := strings.Fields(rest)
			if n, err := strconv.Atoi(strings.TrimRight(f[0], ":;,")); err == nil {
				c.exit = n
			}
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// splitArgs splits a command line into arguments with sh's quoting
// ('…', "…", \x); a # after a space starts the comment. $, `, |, ;, &,
// <, > and globs are refused: they would need a shell.
func splitArgs(s string) (args []string, comment string, err error) {
	var cur strings.Builder
	has := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if has {
				args, cur, has = append(args, cur.String()), strings.Builder{}, false
			}
		case c == '#' && !has:
			return args, s[i+1:], nil
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, "", fmt.Errorf("unclosed '")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i, has = i+1+j, true
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, "", fmt.Errorf("unclosed \"")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i, has = i+1+j, true
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			i, has = i+1, true
		case strings.IndexByte("$`|;&<>*?", c) >= 0:
			return nil, "", fmt.Errorf("%q needs a shell; runnable lines are plain commands", c)
		default:
			cur.WriteByte(c)
			has = true
		}
	}
	if has {
		args = append(args, cur.String())
	}
	return args, "", nil
}

func isReadOnly(args []string) bool {
	for _, r := range readOnly {
		w := strings.Fields(r)
		if len(args) >= len(w) && slices.Equal(args[:len(w)], w) {
			if w[0] == "init" && (slices.Contains(args, "-o") || slices.Contains(args, "--force")) {
				return false
			}
			return true
		}
	}
	return false
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		if !slices.Contains(names, k) {
			out = append(out, e)
		}
	}
	return out
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

// TestDocsParser: the extraction itself, on the shapes the docs use.
func TestDocsParser(t *testing.T) {
	doc := "text\n```sh\nmoat apply\n```\n```sh runnable\n# a comment\nmoat version   # exit 0\nmoat audit --root 'a b' \"c\" # exit 3: findings\n\nmoat config check x.yaml\n```\n```yaml\nmoat: x\n```\n"
	cmds, err := runnable(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 3 {
		t.Fatalf("%d commands: %+v", len(cmds), cmds)
	}
	if !slices.Equal(cmds[1].args, []string{"moat", "audit", "--root", "a b", "c"}) || cmds[1].exit != 3 || cmds[1].line != 8 {
		t.Errorf("%+v", cmds[1])
	}
	for _, bad := range []string{"moat version | head", "moat audit > x", "moat init $HOME", "rm -rf /"} {
		if _, err := runnable("```sh runnable\n" + bad + "\n```\n"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for args, want := range map[string]bool{"apply": false, "init -o /etc/moat/moat.yaml": false, "init --root x": true, "config check f": true, "ban 1.2.3.4": false, "gateway serve": false} {
		if got := isReadOnly(strings.Fields(args)); got != want {
			t.Errorf("%s: read-only %v", args, got)
		}
	}
}
