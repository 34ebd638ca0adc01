package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/config"
)

const quickConfig = `# my server: every comment, blank line and quote below must survive
ssh:
  port: 22            # sshd
  exposure: public    # stage 1

vpn:
  interfaces: [wg0]

firewall:
  public:
    - 80/tcp            # web
    - "443/tcp"
    - 60000-61000/udp   # mosh
  allow:
    - ports: [8443/tcp]   # admin
      sources: [198.51.100.0/24]

guard:
  ignore: [192.0.2.0/24]   # the office
`

// quick runs a quick edit on a copy of src (mode 0640) without the plan
// and apply that follow in real use, and returns the exit code, the file
// after, and the output.
func quick(t *testing.T, src string, args ...string) (int, string, string) {
	t.Helper()
	quickEditPlans = false
	t.Cleanup(func() { quickEditPlans = true })
	path := filepath.Join(t.TempDir(), "moat.yaml")
	if err := os.WriteFile(path, []byte(src), 0o640); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Main(append(args, "-c", path), nil, &out, &errb)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v after the edit, want 0640 kept", st.Mode().Perm())
	}
	if strings.Contains(string(data), "\t") {
		t.Error("tab in the edited file")
	}
	return code, string(data), out.String() + errb.String()
}

func TestQuickEditsChangeOnlyTheirLines(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		from, to string
	}{
		{[]string{"allow", "8080/tcp"}, "    - 60000-61000/udp   # mosh\n", "    - 60000-61000/udp   # mosh\n    - 8080/tcp\n"},
		{[]string{"allow", "9100", "--from", "vpn"}, "      sources: [198.51.100.0/24]\n", "      sources: [198.51.100.0/24]\n  vpn:\n    - 9100/tcp\n"},
		{[]string{"allow", "8444/tcp", "--from", "198.51.100.0/24"}, "    - ports: [8443/tcp]   # admin", "    - ports: [8443/tcp, 8444/tcp]   # admin"},
		{[]string{"allow", "5432/tcp", "--from", "2001:db8::/32"}, "      sources: [198.51.100.0/24]\n", "      sources: [198.51.100.0/24]\n    - ports: [5432/tcp]\n      sources: ['2001:db8::/32']\n"},
		{[]string{"deny", "80/tcp"}, "    - 80/tcp            # web\n", ""},
		{[]string{"deny", "8443/tcp"}, "    - ports: [8443/tcp]   # admin\n      sources: [198.51.100.0/24]\n", ""},
		{[]string{"expose", "ssh", "vpn+public"}, "  exposure: public    # stage 1", "  exposure: vpn+public    # stage 1"},
	} {
		code, got, out := quick(t, quickConfig, tc.args...)
		if code != ExitOK {
			t.Errorf("%v: exit %d\n%s", tc.args, code, out)
			continue
		}
		// The allow rule's removal leaves "allow: []": nothing else.
		want := strings.Replace(quickConfig, tc.from, tc.to, 1)
		if tc.args[0] == "deny" && tc.args[1] == "8443/tcp" {
			want = strings.Replace(want, "  allow:\n", "  allow: []\n", 1)
		}
		if got != want {
			t.Errorf("%v: file\n%s\nwant\n%s", tc.args, got, want)
		}
		if _, err := config.Parse("x.yaml", []byte(got)); err != nil {
			t.Errorf("%v: the result does not pass config check: %v", tc.args, err)
		}
	}
}

func TestQuickEditsAreIdempotent(t *testing.T) {
	for _, args := range [][]string{
		{"allow", "443/tcp"},
		{"allow", "60100/udp"}, // inside the mosh range
		{"allow", "443/tcp", "--from", "203.0.113.9"},
		{"allow", "8443/tcp", "--from", "198.51.100.7"},
		{"deny", "3306/tcp"},
		{"expose", "ssh", "public"},
	} {
		code, got, out := quick(t, quickConfig, args...)
		if code != ExitOK || got != quickConfig || !strings.Contains(out, "nothing to change") {
			t.Errorf("%v: exit %d, changed %v\n%s", args, code, got != quickConfig, out)
		}
	}
}

// TestQuickEditsRefuseAndLeaveTheFile attacks the promise: whatever is
// refused leaves moat.yaml byte for byte as it was.
func TestQuickEditsRefuseAndLeaveTheFile(t *testing.T) {
	sshPublic := strings.Replace(quickConfig, "    - 80/tcp            # web\n", "    - 80/tcp            # web\n    - 22/tcp\n", 1)
	for _, tc := range []struct {
		src  string
		args []string
		want string
	}{
		{quickConfig, []string{"deny", "22/tcp"}, "port 22/tcp is sshd's"},
		{quickConfig, []string{"deny", "22"}, "closing it would cut the way you log in"},
		{quickConfig, []string{"allow", "22/tcp"}, "moat expose ssh"},
		{quickConfig, []string{"deny", "60100/udp"}, "lies in 60000-61000/udp"},
		{sshPublic, []string{"expose", "ssh", "vpn"}, "remove it from public"},
		{quickConfig + "bogus: 1\n", []string{"allow", "8080/tcp"}, "fix it first"},
		{quickConfig, []string{"allow", "8080/tcp", "--from", "10.0.0.1/8"}, "host bits"},
		{quickConfig, []string{"allow", "70000/tcp"}, "expected a port"},
		{quickConfig, []string{"expose", "ssh", "everyone"}, "expected public"},
		{"firewall:\n  public: [80/tcp,\n    443/tcp]\n", []string{"allow", "8080/tcp"}, "by hand"},
	} {
		code, got, out := quick(t, tc.src, tc.args...)
		if code == ExitOK || got != tc.src || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, file changed %v, output lacks %q:\n%s", tc.args, code, got != tc.src, tc.want, out)
		}
	}
}

// TestQuickEditOfDefaults: with no firewall.public in the file, the
// default (80 and 443) is what is open; editing it writes the list out.
func TestQuickEditOfDefaults(t *testing.T) {
	src := "# minimal\nssh:\n  port: 22\n"
	code, got, out := quick(t, src, "deny", "80/tcp")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	c, err := config.Parse("x.yaml", []byte(got))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Firewall.Public) != 1 || c.Firewall.Public[0].String() != "443/tcp" {
		t.Errorf("public %v, want 443/tcp alone\n%s", c.Firewall.Public, got)
	}
	if !strings.HasPrefix(got, src) {
		t.Errorf("the file's start changed:\n%s", got)
	}
	code, got, out = quick(t, src, "allow", "8080/tcp")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if c, err = config.Parse("x.yaml", []byte(got)); err != nil || len(c.Firewall.Public) != 3 {
		t.Errorf("allow over the default: %v %v\n%s", err, c, got)
	}
}

func TestQuickEditMissingFile(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main([]string{"allow", "8080/tcp", "-c", filepath.Join(t.TempDir(), "none.yaml")}, nil, &out, &errb)
	if code != ExitUsage || !strings.Contains(errb.String(), "not found") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}

// TestQuickEditFollowsALink: a moat.yaml that links elsewhere is edited
// where it points and stays a link.
func TestQuickEditFollowsALink(t *testing.T) {
	quickEditPlans = false
	t.Cleanup(func() { quickEditPlans = true })
	dir := t.TempDir()
	real := filepath.Join(dir, "real.yaml")
	if err := os.WriteFile(real, []byte(quickConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "moat.yaml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"allow", "8080/tcp", "-c", link}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("moat.yaml is no longer a link: %v", err)
	}
	if data, _ := os.ReadFile(real); !strings.Contains(string(data), "8080/tcp") {
		t.Errorf("the link's target was not edited:\n%s", data)
	}
}
