package cli

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestE2EQuickAllowAppliesThroughTheTransaction: moat allow edits
// moat.yaml, prints the plan and applies it through moat apply's
// transaction — waiting for confirm from a new session — and the port
// is open in the kernel after; an unconfirmed one is rolled back and
// moat.yaml is put back as it was.
func TestE2EQuickAllowAppliesThroughTheTransaction(t *testing.T) {
	x := newE2E(t)
	x.config(`ssh:
  permit_root_login: prohibit-password
firewall:
  public_interface: eth0
  public: [80/tcp]   # web
`, "198.51.100.2")
	pub := vpsPublic + ":22"
	op := x.mustClient(pub, "root", x.rootKey)
	defer op.Close()

	// SSH's own port is refused, with the reason.
	if o, c := x.run(op, "deny", "22/tcp", "-c", x.cfg); c != ExitUsage || !strings.Contains(o, "sshd's") {
		t.Errorf("moat deny 22/tcp: exit %d\n%s", c, o)
	}

	before, err := os.ReadFile(x.cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var out string
	var code int
	go func() {
		defer close(done)
		out, code = x.run(op, "allow", "8080/tcp", "-c", x.cfg, "--confirm", "30s")
	}()
	m := x.waiting(done, &out)
	second := x.mustClient(vpsVPN+":22", "root", x.rootKey)
	defer second.Close()
	if o, c := x.run(second, "confirm", m.ID, "-c", x.cfg); c != 0 {
		t.Fatalf("confirm from a new session: %d %s", c, o)
	}
	<-done
	if code != 0 || !strings.Contains(out, "+  public: [80/tcp, 8080/tcp]   # web") || !strings.Contains(out, "8080") {
		t.Errorf("moat allow: exit %d\n%s", code, out)
	}
	after, _ := os.ReadFile(x.cfg)
	if want := strings.Replace(string(before), "[80/tcp]", "[80/tcp, 8080/tcp]", 1); string(after) != want {
		t.Errorf("moat.yaml after:\n%s\nwant\n%s", after, want)
	}
	rules := string(x.vps.MustRun(t, "nft", "list", "table", "inet", "moat"))
	if !strings.Contains(rules, "8080") {
		t.Errorf("port 8080 is not in table inet moat:\n%s", rules)
	}
	if o, c := x.run(op, "allow", "8080/tcp", "-c", x.cfg); c != 0 || !strings.Contains(o, "already allowed") {
		t.Errorf("allowing it again: exit %d\n%s", c, o)
	}

	// Unconfirmed: rolled back, and moat.yaml says so again.
	before = after
	out, code = x.run(op, "allow", "9090/tcp", "-c", x.cfg, "--confirm", "3s")
	if code != ExitRollback {
		t.Errorf("unconfirmed moat allow: exit %d\n%s", code, out)
	}
	if after, _ := os.ReadFile(x.cfg); string(after) != string(before) {
		t.Errorf("moat.yaml after the rollback:\n%s\nwant it as it was:\n%s", after, before)
	}
	time.Sleep(100 * time.Millisecond)
	if rules := string(x.vps.MustRun(t, "nft", "list", "table", "inet", "moat")); strings.Contains(rules, "9090") {
		t.Errorf("port 9090 stayed open after the rollback:\n%s", rules)
	}
}
