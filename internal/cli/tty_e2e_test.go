package cli

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestE2EApplyOnATerminal runs a whole moat allow → moat apply as an
// operator does, in an SSH session with a pseudo-terminal that sshd
// allocates: on the terminal the plan's diff and the apply's progress
// are in colour and the confirm window counts down on one line rewritten
// in place; NO_COLOR on the same terminal keeps the countdown but drops
// every escape; without a terminal (a pipe, as automation runs it) the
// output is plain lines, no escape and no carriage return.
func TestE2EApplyOnATerminal(t *testing.T) {
	x := newE2E(t)
	x.config(`ssh:
  permit_root_login: prohibit-password
firewall:
  public_interface: eth0
  public: [80/tcp]   # web
`, "198.51.100.2")
	op := x.mustClient(vpsPublic+":22", "root", x.rootKey)
	defer op.Close()
	// Each run is left unconfirmed: the window runs out and the change,
	// moat.yaml with it, is rolled back, so the next run starts alike.
	apply := func(pty bool, env string) string {
		t.Helper()
		s, err := op.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if pty {
			if err := s.RequestPty("xterm-256color", 50, 200, ssh.TerminalModes{}); err != nil {
				t.Fatal(err)
			}
		}
		out, err := s.CombinedOutput(env + x.cmdline("allow", "8080/tcp", "-c", x.cfg, "--confirm", "5s"))
		if c := exitStatus(t, err); c != ExitRollback {
			t.Fatalf("pty %v %q: exit %d, want %d (rolled back)\n%q", pty, env, c, ExitRollback, out)
		}
		// The watchdog ends just after the state is final.
		time.Sleep(200 * time.Millisecond)
		return string(out)
	}
	const esc = "\x1b["

	tty := apply(true, "")
	for _, want := range []string{
		"\x1b[1m== firewall: changes",                   // layer header, bold
		"\x1b[32m+  public: [80/tcp, 8080/tcp]   # web", // moat.yaml's diff, green
		"\x1b[31m-  public: [80/tcp]   # web",           // red
		"\x1b[33mchange ",                               // waiting for confirm, yellow
		"\x1b[1m    sudo moat confirm ",                 // what to type, bold
		"\rwaiting for confirm… ",                       // the countdown, rewritten in place
		"s  rollback in ",                               // with the time left
		"\rwaiting for confirm: rolled back in ",        // its end, on the same line
		"\nOtherwise everything is rolled back at ",     // an instruction, not a failure: no red
	} {
		if !strings.Contains(tty, want) {
			t.Errorf("on a terminal, the output lacks %q:\n%q", want, tty)
		}
	}

	noColour := apply(true, "NO_COLOR=1 ")
	if strings.Contains(noColour, esc) {
		t.Errorf("NO_COLOR: escapes in the output:\n%q", noColour)
	}
	for _, want := range []string{"\rwaiting for confirm… ", "waiting for confirm: rolled back in ", "== firewall: changes"} {
		if !strings.Contains(noColour, want) {
			t.Errorf("NO_COLOR on a terminal: the output lacks %q:\n%q", want, noColour)
		}
	}

	piped := apply(false, "")
	if strings.Contains(piped, esc) || strings.Contains(piped, "\r") {
		t.Errorf("without a terminal: escapes or carriage returns in the output:\n%q", piped)
	}
	for _, want := range []string{"\nwaiting for confirm…\n", "\nwaiting for confirm: rolled back in ", "\n== firewall: changes\n", "+  public: [80/tcp, 8080/tcp]   # web\n"} {
		if !strings.Contains(piped, want) {
			t.Errorf("without a terminal: the output lacks %q:\n%s", want, piped)
		}
	}
	// The words are the same whichever way they are shown.
	strip := func(s string) string {
		var b strings.Builder
		for _, l := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
			if i := strings.LastIndexByte(l, '\r'); i >= 0 {
				l = l[i+1:]
			}
			for {
				i := strings.Index(l, esc)
				if i < 0 {
					break
				}
				j := strings.IndexByte(l[i:], 'm')
				l = l[:i] + l[i+j+1:]
			}
			b.WriteString(strings.TrimRight(l, " ") + "\n")
		}
		return b.String()
	}
	if a, b := lineSet(strip(tty)), lineSet(strip(noColour)); a != b {
		t.Errorf("colour changed the words:\n%s", diffLines(b, a))
	}
}

// lineSet keeps the lines that do not vary from run to run (IDs, times).
func lineSet(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "change 2") || strings.Contains(l, "moat confirm 2") || strings.Contains(l, "rolled back at") ||
			strings.Contains(l, " in ") || strings.Contains(l, "(") || strings.Contains(l, "watchdog") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}
