package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/harden"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/schema"
)

// The firewall layer's actions in a change.
const (
	actionFirewallRestore = "firewall-restore" // undo: the table as it was
	actionFirewallReplace = "firewall-replace" // confirm: the table after a port move
	actionFirewallPersist = "firewall-persist" // confirm: write the boot files
)

type firewallData struct {
	// Existed: a table inet moat was loaded before the change.
	Existed bool   `json:"existed"`
	Table   string `json:"table,omitempty"`
	V6      int    `json:"v6_prefix,omitempty"`
}

// firewallStep plans table inet moat as part of a change: the table is
// loaded live during the window and persisted for boot only on confirm,
// so a reboot inside the window comes back with the old one. During a
// port move both of sshd's ports are open; the table after confirm keeps
// only the new one. The lockout check runs on both tables.
func firewallStep(ctx context.Context, e *env, c *config.Config, live *host.Host, root string, sp harden.SSHPlan) (*change.Step, []string, error) {
	if !c.Firewall.IsEnabled() {
		return nil, nil, nil
	}
	spec, _, ok := firewallSpec(e, c, live)
	if !ok {
		return nil, nil, errors.New("the firewall section cannot be rendered (see above)")
	}
	spec.SSH.Port = sp.Port
	final := spec
	window := spec
	if sp.Moved() {
		window.Public = append([]schema.PortSpec(nil), spec.Public...)
		window.VPNPorts = append([]schema.PortSpec(nil), spec.VPNPorts...)
		for _, p := range sp.OldPorts {
			if p == sp.Port {
				continue
			}
			ps := schema.PortSpec{Proto: "tcp", From: p, To: p}
			if spec.SSH.Exposure.Public() {
				window.Public = append(window.Public, ps)
			} else {
				window.VPNPorts = append(window.VPNPorts, ps)
			}
		}
	}
	plan, err := firewall.MakePlan(ctx, &window)
	if err != nil {
		return nil, nil, err
	}
	var refusals []string
	reach := operatorReach(live, os.Getenv)
	lockout := func(s *firewall.Spec, table, when string, r firewall.Reach) {
		paths, err := firewall.OperatorPaths(s, r)
		if err != nil {
			refusals = append(refusals, "firewall"+when+": "+err.Error())
			return
		}
		if _, err := firewall.CheckLockout(ctx, table, paths); err != nil {
			refusals = append(refusals, "firewall"+when+": "+err.Error())
		}
	}
	lockout(&window, plan.Table, "", reach)
	finalTable := plan.Table
	if sp.Moved() {
		finalTable = firewall.Render(&final)
		r := reach
		r.SSHDPorts = []uint16{sp.Port}
		lockout(&final, finalTable, " after confirm", r)
	}
	persisted, err := firewall.PersistedTable(root)
	if err != nil {
		return nil, nil, err
	}
	st := &change.Step{Layer: "firewall"}
	if plan.Changes() {
		if plan.Live == "" {
			st.Summary = append(st.Summary, "load table inet moat (none is loaded)")
		} else {
			st.Summary = append(st.Summary, "replace table inet moat in one transaction (bans kept)")
		}
		st.Diff = plan.Diff
		if plan.GeoAdd > 0 || plan.GeoDel > 0 {
			st.Summary = append(st.Summary, fmt.Sprintf("geo sets: +%d -%d prefixes", plan.GeoAdd, plan.GeoDel))
		}
	}
	if sp.Moved() {
		st.Summary = append(st.Summary, fmt.Sprintf("open sshd's new port %d besides %s until confirm, then only %d", sp.Port, portsText(sp.OldPorts), sp.Port))
	}
	persist := persisted != finalTable
	if !plan.Changes() && !sp.Moved() && !persist {
		st.Summary = append(st.Summary, "table inet moat is loaded and persisted as moat.yaml says: nothing to do")
		return st, refusals, nil
	}
	st.Touch = []string{firewall.BootPath, firewall.UnitPath, firewall.WantsLink}
	if persist {
		st.Summary = append(st.Summary, "on confirm: persist it for boot ("+firewall.BootPath+", moat-firewall.service)")
	}
	if plan.Changes() {
		// Restore what was there: the persisted table when the live one
		// came from it (the ban sets keep their elements either way),
		// else the live listing.
		undo := firewallData{Existed: plan.Live != "", V6: spec.BanIPv6Prefix}
		if undo.Existed {
			undo.Table = persisted
			if persisted == "" {
				undo.Table = plan.Live
			}
		}
		st.Undo = append(st.Undo, change.NewAction(actionFirewallRestore, undo))
		table, v6 := plan.Table, spec.BanIPv6Prefix
		st.Apply = func(ctx context.Context, w *change.Writer) error {
			_, err := firewall.Replace(ctx, table, v6)
			return err
		}
	}
	if sp.Moved() {
		st.Confirm = append(st.Confirm, change.NewAction(actionFirewallReplace, firewallData{Table: finalTable, V6: spec.BanIPv6Prefix}))
	}
	if persist || sp.Moved() {
		st.Confirm = append(st.Confirm, change.NewAction(actionFirewallPersist, firewallData{Table: finalTable}))
	}
	return st, refusals, nil
}

func portsText(ps []uint16) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}

func firewallHandlers() change.Handlers {
	decode := func(data json.RawMessage) (firewallData, error) {
		var d firewallData
		err := json.Unmarshal(data, &d)
		return d, err
	}
	return change.Handlers{
		actionFirewallRestore: func(ctx context.Context, env change.Env, data json.RawMessage) error {
			d, err := decode(data)
			if err != nil {
				return err
			}
			if d.Existed && d.Table != "" {
				_, err := firewall.Replace(ctx, d.Table, d.V6)
				return err
			}
			return deleteMoatTable(ctx)
		},
		actionFirewallReplace: func(ctx context.Context, env change.Env, data json.RawMessage) error {
			d, err := decode(data)
			if err != nil {
				return err
			}
			_, err = firewall.Replace(ctx, d.Table, d.V6)
			return err
		},
		actionFirewallPersist: func(ctx context.Context, env change.Env, data json.RawMessage) error {
			d, err := decode(data)
			if err != nil {
				return err
			}
			_, err = firewall.Persist(env.Root, d.Table)
			return err
		},
	}
}

// deleteMoatTable removes table inet moat; declaring it first makes the
// delete a no-op when there is none.
func deleteMoatTable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader("table inet moat\ndelete table inet moat\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft delete table inet moat: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
