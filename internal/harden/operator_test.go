package harden

import (
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/lab"
)

// TestOperatorIdentityWarning: plan says, before anything changes, when
// the user the operator is logged in as would no longer be let in, and
// says nothing when it stays allowed.
func TestOperatorIdentityWarning(t *testing.T) {
	lab.RequireTool(t, "sshd")
	warnings := func(in Input, user string) string {
		root := fixtureRoot(t, "")
		p := plan(t, root, in, Options{Session: "198.51.100.9 50000 203.0.113.10 22", Operator: user})
		var all []string
		for _, st := range p.Steps {
			if st.Layer == "sshd" {
				all = append(all, st.Warnings...)
			}
		}
		return strings.Join(all, "\n")
	}
	in := input()
	in.SSH.AllowUsers = []string{"ops"}
	if w := warnings(in, "root"); !strings.Contains(w, "logged in as root") || !strings.Contains(w, "PermitRootLogin no") {
		t.Errorf("root, PermitRootLogin no: %q", w)
	}
	if w := warnings(in, "alice"); !strings.Contains(w, "logged in as alice") || !strings.Contains(w, "not in AllowUsers") || !strings.Contains(w, "deploy") {
		t.Errorf("alice left out of AllowUsers: %q", w)
	}
	if w := warnings(in, "ops"); strings.Contains(w, "logged in as") {
		t.Errorf("ops stays allowed, yet: %q", w)
	}
	in = input()
	in.SSH.AllowGroups = []string{"admins"}
	if w := warnings(in, "ops"); !strings.Contains(w, "AllowGroups") {
		t.Errorf("ops in no allowed group: %q", w)
	}
	// The key the operator logged in with, from sshd's log: not the
	// admin's, so the warning says there may be no way back in.
	root := fixtureRoot(t, "")
	in = input()
	in.SSH.AllowUsers = []string{"ops"}
	p := plan(t, root, in, Options{Session: "198.51.100.9 50000 203.0.113.10 22", Operator: "alice", OperatorKey: "SHA256:notdeploys"})
	if w := strings.Join(p.Steps[len(p.Steps)-1].Warnings, "\n"); !strings.Contains(w, "NOT one of deploy's keys") {
		t.Errorf("foreign key: %q", w)
	}
	p = plan(t, root, in, Options{Session: "198.51.100.9 50000 203.0.113.10 22", Operator: "alice", OperatorKey: keyID(deployKey)})
	if w := strings.Join(p.Steps[len(p.Steps)-1].Warnings, "\n"); !strings.Contains(w, "is one of deploy's") {
		t.Errorf("the admin's key: %q", w)
	}
	if w := warnings(input(), ""); strings.Contains(w, "logged in as") {
		t.Errorf("unknown operator, yet: %q", w)
	}
}
