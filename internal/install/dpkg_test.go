package install

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestStatusPackaged(t *testing.T) {
	for s, want := range map[string]bool{
		"install ok installed":             true,
		"install ok unpacked":              true,
		"install reinstreq half-installed": true,
		"hold ok installed":                true,
		"deinstall ok config-files":        false,
		"purge ok not-installed":           false,
		"unknown ok not-installed":         false,
		"":                                 false,
		"garbage":                          false,
	} {
		if got := statusPackaged(s); got != want {
			t.Errorf("statusPackaged(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestPackagedAsksDpkgQuery runs the real dpkg-query against a database
// under a root: moat installed, removed with its conffiles, unknown, and
// no dpkg-query at all.
func TestPackagedAsksDpkgQuery(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		if os.Getenv("MOAT_TEST_STRICT") == "1" {
			t.Fatal("dpkg-query not found (MOAT_TEST_STRICT=1)")
		}
		t.Skip("dpkg-query not found")
	}
	db := func(status string) string {
		root := t.TempDir()
		dir := filepath.Join(root, "var", "lib", "dpkg")
		os.MkdirAll(filepath.Join(dir, "updates"), 0o755)
		body := "Package: other\nStatus: install ok installed\nVersion: 1\nMaintainer: x\nDescription: x\n\n"
		if status != "" {
			body += "Package: moat\nStatus: " + status + "\nVersion: 0.11.0\nArchitecture: amd64\nMaintainer: x\nDescription: x\n\n"
		}
		if err := os.WriteFile(filepath.Join(dir, "status"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return root
	}
	ctx := context.Background()
	if !Packaged(ctx, db("install ok installed")) {
		t.Error("installed moat not seen")
	}
	if Packaged(ctx, db("deinstall ok config-files")) {
		t.Error("a removed moat (conffiles left) counted as installed")
	}
	if Packaged(ctx, db("")) {
		t.Error("moat unknown to dpkg counted as installed")
	}
	if Packaged(ctx, t.TempDir()) {
		t.Error("a root without a dpkg database counted as installed")
	}
	if packaged(ctx, "dpkg-query-that-is-not-there", db("install ok installed")) {
		t.Error("no dpkg-query counted as installed")
	}
}
