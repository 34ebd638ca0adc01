package statuspage_test

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"testing"
)

// wrapEnv asks the test binary to act as a wrapper for moat run: inside
// a private mount namespace (unshare --mount --propagation private), bind
// the fixture's change store over /var/lib/moat/changes, then exec moat.
// moat run reads pending changes there only; the host's own store is
// never seen or touched.
const wrapEnv = "MOAT_STATUSPAGE_TEST_WRAP"

type wrap struct {
	Changes string   `json:"changes"`
	Bin     string   `json:"bin"`
	Args    []string `json:"args"`
}

func TestMain(m *testing.M) {
	if v := os.Getenv(wrapEnv); v != "" {
		os.Exit(runWrapped(v))
	}
	os.Exit(m.Run())
}

func runWrapped(v string) int {
	var w wrap
	if err := json.Unmarshal([]byte(v), &w); err != nil {
		fmt.Fprintln(os.Stderr, "wrap:", err)
		return 2
	}
	if err := syscall.Mount(w.Changes, "/var/lib/moat/changes", "", syscall.MS_BIND, ""); err != nil {
		fmt.Fprintln(os.Stderr, "wrap: bind the change store:", err)
		return 2
	}
	os.Unsetenv(wrapEnv)
	err := syscall.Exec(w.Bin, append([]string{w.Bin}, w.Args...), os.Environ())
	fmt.Fprintln(os.Stderr, "wrap: exec:", err)
	return 2
}
