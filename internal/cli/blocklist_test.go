package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBlocklistCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "drop.txt")
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(good, []byte("; Spamhaus DROP\n1.10.16.0/20 ; SBL1\n1.10.16.0/24\n2001:db8::/32\n"), 0o644)
	os.WriteFile(bad, []byte("1.2.3.0/24\n\n<html>\n"), 0o644)
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"blocklist", "check", good}, nil, &stdout, &stderr); code != ExitOK || !strings.Contains(stdout.String(), "ok, 3 networks (2 IPv4, 1 IPv6), 2 ranges merged") {
		t.Fatalf("good list: %d %q %q", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := Main([]string{"blocklist", "check", good, bad}, nil, &stdout, &stderr); code != ExitUsage || !strings.Contains(stdout.String(), "REFUSED, nothing of it would be applied: line 3") {
		t.Fatalf("bad list: %d %q", code, stdout.String())
	}
	// The configured lists, when no file is named.
	cfg := filepath.Join(dir, "moat.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("guard:\n  blocklists:\n    - name: local\n      file: %s\n", good)), 0o600)
	stdout.Reset()
	if code := Main([]string{"blocklist", "check", "-c", cfg}, nil, &stdout, &stderr); code != ExitOK || !strings.HasPrefix(stdout.String(), "local ("+good+"): ok, 3 networks") {
		t.Fatalf("configured: %d %q %q", code, stdout.String(), stderr.String())
	}
	if code := Main([]string{"blocklist"}, nil, &stdout, &stderr); code != ExitUsage {
		t.Errorf("no subcommand: %d", code)
	}
}
