package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/lab"
)

// The version comes from git tags, as scripts/version.sh reads them and
// -ldflags stamps them: a clone without tags, the tagged commit, a commit
// after it, a dirty tree.
func TestVersionFromGitTags(t *testing.T) {
	lab.RequireTool(t, "git", "bash")
	repo := t.TempDir()
	script, err := os.ReadFile("../../scripts/version.sh")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(repo, "scripts"), 0o755)
	os.WriteFile(filepath.Join(repo, "scripts/version.sh"), script, 0o755)
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	version := func() string {
		t.Helper()
		out, err := exec.Command(filepath.Join(repo, "scripts/version.sh")).Output()
		if err != nil {
			t.Fatalf("version.sh: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-qm", "one")
	head := git("rev-parse", "--short=12", "HEAD")
	if got, want := version(), "0.0.0-dev+"+head; got != want {
		t.Errorf("no tags: %q, want %q", got, want)
	}
	git("tag", "-a", "v0.11.0", "-m", "moat 0.11.0")
	if got := version(); got != "0.11.0" {
		t.Errorf("on v0.11.0: %q", got)
	}
	os.WriteFile(filepath.Join(repo, "f"), []byte("x"), 0o644)
	git("add", "f")
	git("commit", "-qm", "two")
	if got := version(); !regexp.MustCompile(`^0\.11\.0\+1\.g[0-9a-f]{7,}$`).MatchString(got) {
		t.Errorf("one commit after v0.11.0: %q", got)
	}
	os.WriteFile(filepath.Join(repo, "f"), []byte("y"), 0o644)
	if got := version(); !strings.HasSuffix(got, ".dirty") {
		t.Errorf("dirty tree: %q", got)
	}

	// -ldflags stamps what version.sh printed; moat prints it without a v.
	lab.RequireTool(t, "go")
	bin := filepath.Join(t.TempDir(), "moat")
	build := exec.Command("go", "build", "-o", bin, "-ldflags",
		"-X github.com/moat-sh/moat/internal/cli.version=v0.11.0 -X github.com/moat-sh/moat/internal/cli.commit=0123456789ab", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	var v struct{ Version, Commit string }
	if err != nil || json.Unmarshal(out, &v) != nil || v.Version != "0.11.0" || v.Commit != "0123456789ab" {
		t.Errorf("moat version --json: %v %s", err, out)
	}
	if out, _ := exec.Command(bin, "-v").Output(); !strings.HasPrefix(string(out), "moat 0.11.0 ") {
		t.Errorf("moat -v: %q", out)
	}
}
