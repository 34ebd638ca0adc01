package logwatch

import (
	"os"
	"testing"
)

// cleanups run after all tests and benchmarks.
var cleanups []func()

func TestMain(m *testing.M) {
	if os.Getenv(fakeJournalctlEnv) != "" {
		os.Exit(fakeJournalctl(os.Args[1:]))
	}
	if ns := os.Getenv(journaldHelperEnv); ns != "" {
		os.Exit(journaldHelper(ns))
	}
	if sock := os.Getenv(forgeHelperEnv); sock != "" {
		os.Exit(forgeHelper(sock, os.Args[1:]))
	}
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	os.Exit(code)
}
