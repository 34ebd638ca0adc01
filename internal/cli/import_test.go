package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/lab"
)

// importThenCheck runs moat import, writes its output and runs moat
// config check on it, as a user would.
func importThenCheck(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := Main(args, strings.NewReader(stdin), &out, &errb); code != ExitOK {
		t.Fatalf("moat %v: exit %d\n%s", args, code, errb.String())
	}
	path := filepath.Join(t.TempDir(), "moat.yaml")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var cout, cerr bytes.Buffer
	if code := Main([]string{"config", "check", "-c", path}, nil, &cout, &cerr); code != ExitOK {
		t.Fatalf("moat config check of moat %v's output: exit %d\n%s\n%s", args, code, cerr.String(), out.String())
	}
	return out.String()
}

func TestImportFail2banOutputPassesConfigCheck(t *testing.T) {
	_, err := os.Stat("/etc/fail2ban/jail.conf")
	lab.Require(t, err == nil, "needs fail2ban's /etc/fail2ban (Debian's fail2ban package, in scripts/deps.sh)")
	y := importThenCheck(t, "", "import", "fail2ban")
	if !strings.Contains(y, "guard:") {
		t.Errorf("no guard section:\n%s", y)
	}
	y = importThenCheck(t, "", "import", "fail2ban", "../f2bimport/testdata/shapes/custom", "--root", t.TempDir())
	if !strings.Contains(y, "myapp") {
		t.Errorf("the fixture's jail is missing:\n%s", y)
	}
}

func TestImportUFWOutputPassesConfigCheck(t *testing.T) {
	y := importThenCheck(t, "", "import", "ufw", "--root", "../ufwimport/testdata/root")
	if !strings.Contains(y, "8080/tcp") {
		t.Errorf("import ufw from the rules files:\n%s", y)
	}
	status, err := os.ReadFile("../ufwimport/testdata/status-verbose.txt")
	if err != nil {
		t.Fatal(err)
	}
	y = importThenCheck(t, string(status), "import", "ufw", "-", "--root", "../ufwimport/testdata/root")
	if !strings.Contains(y, "8080/tcp") {
		t.Errorf("import ufw from stdin:\n%s", y)
	}
}

func TestImportBadInputSaysWhere(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jail.local"), []byte("[sshd]\nenabled = true\nenabled = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"import", "fail2ban", dir}, nil, &out, &errb); code != ExitUsage || !strings.Contains(errb.String(), "jail.local:3") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := Main([]string{"import", "fail2ban", filepath.Join(dir, "none")}, nil, &out, &errb); code != ExitUsage || !strings.Contains(errb.String(), "hint") {
		t.Errorf("missing dir: exit %d: %s", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := Main([]string{"import", "ufw", "-"}, strings.NewReader("### tuple ### allow tcp 22\n"), &out, &errb); code != ExitUsage || !strings.Contains(errb.String(), "line 1") {
		t.Errorf("bad rules: exit %d: %s", code, errb.String())
	}
}
