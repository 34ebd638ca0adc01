package harden

import (
	"context"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/sshd"
)

// TestMatchLocalPort: a Match LocalPort block anywhere made every sshd -T
// -C without lport fail, so plan and apply gave up on the whole sshd
// layer. Plan must now go through, say what sshd -T could not evaluate,
// and after apply passwords must be off on both ports.
func TestMatchLocalPort(t *testing.T) {
	lab.RequireTool(t, "sshd")
	root := fixtureRoot(t, "matchlport")
	before := treeHash(t, root)
	in := input()
	in.Host.Swap.Disabled = true
	in.Host.Updates.Unattended = new(bool)
	p := plan(t, root, in, Options{Session: "198.51.100.9 50000 203.0.113.10 22"})
	warned := false
	for _, s := range p.Steps {
		for _, w := range s.Warnings {
			warned = warned || (s.Layer == "sshd" && strings.Contains(w, "Match LocalPort"))
		}
	}
	if !warned {
		t.Errorf("plan does not say Match LocalPort was evaluated for another port")
	}
	m := apply(t, root, p)
	var cs []sshd.Context
	for _, u := range []string{"root", "deploy", "nobody-at-all"} {
		for _, port := range []int{22, 2222} {
			cs = append(cs, sshd.Context{User: u, Addr: "198.51.100.9", LPort: port})
		}
	}
	effs, err := sshd.Runner{Root: root}.EffectiveMany(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range effs {
		if got := e.Get("passwordauthentication"); got != "no" {
			t.Errorf("%v: passwordauthentication %q after apply", cs[i], got)
		}
	}
	if _, err := change.NewStore(root).Rollback(context.Background(), m.ID, "test", change.RollbackOptions{Handlers: Handlers(nil)}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, before, treeHash(t, root))
}
