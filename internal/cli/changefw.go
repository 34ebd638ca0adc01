package cli

import (
	"context"
	"errors"
	"os"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/harden"
	"github.com/moat-sh/moat/internal/host"
)

// firewallStep resolves the firewall's spec from moat.yaml and the host,
// and has the firewall plan its step of the change (firewall.MakeStep).
func firewallStep(ctx context.Context, e *env, c *config.Config, live *host.Host, root string, sp harden.SSHPlan) (*change.Step, []string, error) {
	if !c.Firewall.IsEnabled() {
		return nil, nil, nil
	}
	spec, _, ok := firewallSpec(e, c, live)
	if !ok {
		return nil, nil, errors.New("the firewall section cannot be rendered (see above)")
	}
	spec.SSH.Port = sp.Port
	in := firewall.StepInput{Spec: spec, Reach: operatorReach(live, os.Getenv), Root: root}
	if sp.Moved() {
		in.OldPorts = sp.OldPorts
	}
	return firewall.MakeStep(ctx, in)
}

func firewallHandlers() change.Handlers { return firewall.Handlers() }
