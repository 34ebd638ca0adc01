package audit

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/lab"
)

// expectation is a fixture's <name>.expect.json: results that must and must
// not appear when auditing the tree.
type expectation struct {
	About       string    `json:"about"`
	Admin       string    `json:"admin"`
	MaxSeverity string    `json:"max_severity"` // no finding above this
	Must        []matcher `json:"must"`
	MustNot     []matcher `json:"must_not"`
	// Modes are file modes (octal strings) to give paths of the tree
	// before the audit: git keeps none but the executable bit.
	Modes map[string]string `json:"modes"`
	// Base names the fixture host this one starts from: the tree audited
	// is the base's with this directory's files laid over it and the
	// Remove paths taken out, so a host that differs in three files
	// holds only those three.
	Base   string   `json:"base"`
	Remove []string `json:"remove"`
}

// matcher matches a Result on the fields it sets; Evidence is a substring
// of any evidence line.
type matcher struct {
	ID       string `json:"id"`
	Status   Status `json:"status"`
	Severity string `json:"severity"`
	Subject  string `json:"subject"`
	Evidence string `json:"evidence"`
}

func (m matcher) matches(r Result) bool {
	if m.ID != r.ID || (m.Status != "" && m.Status != r.Status) || (m.Severity != "" && m.Severity != r.Severity.String()) || (m.Subject != "" && m.Subject != r.Subject) {
		return false
	}
	if m.Evidence == "" {
		return true
	}
	for _, e := range r.Evidence {
		if strings.Contains(e, m.Evidence) {
			return true
		}
	}
	return false
}

func TestFixtureHosts(t *testing.T) {
	lab.RequireTool(t, "sshd")
	files, _ := filepath.Glob("testdata/hosts/*.expect.json")
	if len(files) < 12 {
		t.Fatalf("want at least 12 fixture hosts, found %d", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".expect.json")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var want expectation
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			// git keeps no file modes but the executable bit, and a
			// checkout follows the umask: give the tree the modes its host
			// would have (0755 directories, 0644 files, the swap file 0600)
			// plus those the expectation names.
			root := filepath.Join("testdata/hosts", name)
			if want.Base != "" {
				root = composeFixture(t, want.Base, name, want.Remove)
			}
			normaliseModes(t, root)
			if sw := filepath.Join(root, "swapfile"); fileExists(sw) {
				if err := os.Chmod(sw, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for p, m := range want.Modes {
				mode, err := strconv.ParseUint(m, 8, 32)
				if err != nil {
					t.Fatalf("%s: mode %q: %v", file, m, err)
				}
				if err := os.Chmod(filepath.Join(root, p), os.FileMode(mode)); err != nil {
					t.Fatal(err)
				}
			}
			admin := want.Admin
			if admin == "" {
				admin = "deploy"
			}
			rep, err := Run(context.Background(), Options{
				Root: root, NoProbe: true, AdminUser: admin,
				PublicPorts: []PortRange{{"tcp", 80, 80}, {"tcp", 443, 443}},
			})
			if err != nil {
				t.Fatal(err)
			}
			dump := func() string {
				var sb strings.Builder
				for _, r := range rep.Results {
					sb.WriteString("  " + r.String() + "\n")
				}
				return sb.String()
			}
			for _, m := range want.Must {
				found := false
				for _, r := range rep.Results {
					found = found || m.matches(r)
				}
				if !found {
					t.Errorf("missing %+v\nresults:\n%s", m, dump())
				}
			}
			for _, m := range want.MustNot {
				for _, r := range rep.Results {
					if m.matches(r) {
						t.Errorf("must not report %+v, got %s", m, r)
					}
				}
			}
			if want.MaxSeverity != "" {
				max, err := ParseSeverity(want.MaxSeverity)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rep.Findings() {
					if r.Severity > max {
						t.Errorf("finding above %s: %s", max, r)
					}
				}
			}
			for _, r := range rep.Results {
				if r.Status == Unknown {
					t.Errorf("a fixture must be fully readable, got unknown: %s", r)
				}
			}
		})
	}
}

// composeFixture copies the base host, lays the named host's own files
// over it and removes what it lacks, in a temporary directory.
func composeFixture(t *testing.T, base, name string, remove []string) string {
	t.Helper()
	root := t.TempDir()
	for _, src := range []string{base, name} {
		if err := overlay(root, filepath.Join("testdata/hosts", src)); err != nil {
			t.Fatalf("compose fixture %s from %s: %v", name, src, err)
		}
	}
	for _, p := range remove {
		if !filepath.IsLocal(p) {
			t.Fatalf("%s: remove %q is not a path inside the tree", name, p)
		}
		if err := os.RemoveAll(filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// overlay copies the tree src onto dst, replacing files that exist.
// Symbolic links (a fixture's /proc/PID/fd entries) are copied as links.
func overlay(dst, src string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Remove(out); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return os.Symlink(target, out)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.Remove(out); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return os.WriteFile(out, b, fi.Mode().Perm())
	})
}

func normaliseModes(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644) | fi.Mode().Perm()&0o111
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
