package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Strict reports whether MOAT_TEST_STRICT=1. Under it an unmet requirement
// fails the test instead of skipping it, so CI never passes by skipping.
func Strict() bool { return os.Getenv("MOAT_TEST_STRICT") == "1" }

// Require skips the test with reason when ok is false, or fails it in
// strict mode.
func Require(t testing.TB, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if Strict() {
		t.Fatalf("%s (MOAT_TEST_STRICT=1: not skipping)", reason)
	}
	t.Skip(reason)
}

// RequireRoot skips (or, in strict mode, fails) the test unless it runs as
// root.
func RequireRoot(t testing.TB) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "needs root: run the tests as root")
}

// RequireTool skips (or, in strict mode, fails) the test unless every named
// program is found on PATH or in the sbin directories.
func RequireTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		_, err := lookTool(n)
		Require(t, err == nil, fmt.Sprintf("needs %s: %v (install its Debian package)", n, err))
	}
}

// sbinDirs are searched after PATH: root's tools live there and a test's PATH
// often lacks them.
var sbinDirs = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

func lookTool(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil || strings.ContainsRune(name, '/') {
		return p, err
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, name)
		if fi, statErr := os.Stat(p); statErr == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", err
}
