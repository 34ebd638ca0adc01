package firewall

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/schema"
)

// The firewall layer's actions in a change.
const (
	ActionRestore = "firewall-restore" // undo: the table as it was
	ActionReplace = "firewall-replace" // confirm: the table after a port move
	ActionPersist = "firewall-persist" // confirm: write the boot files
)

type stepData struct {
	// Existed: a table inet moat was loaded before the change.
	Existed bool   `json:"existed"`
	Table   string `json:"table,omitempty"`
	V6      int    `json:"v6_prefix,omitempty"`
}

// StepInput is what the firewall's part of a change depends on besides
// the spec.
type StepInput struct {
	// Spec is the resolved table; its SSH port is sshd's port after
	// confirm.
	Spec Spec
	// OldPorts are sshd's ports before the change. When the port moves,
	// they stay open beside the new one until confirm.
	OldPorts []uint16
	// Reach is how the operator reaches sshd now, for the lockout check.
	Reach Reach
	// Root prefixes the boot files.
	Root string
}

func (in StepInput) moved() bool {
	return len(in.OldPorts) > 0 && !slices.Equal(in.OldPorts, []uint16{in.Spec.SSH.Port})
}

// MakeStep plans table inet moat as one step of a change: the table is
// loaded live during the window and persisted for boot only on confirm,
// so a reboot inside the window comes back with the old one. During a
// port move both of sshd's ports are open; the table after confirm keeps
// only the new one. The lockout check runs on both tables; what it finds
// is returned as refusals.
func MakeStep(ctx context.Context, in StepInput) (*change.Step, []string, error) {
	spec := in.Spec
	final := spec
	window := spec
	moved := in.moved()
	if moved {
		window.Public = append([]schema.PortSpec(nil), spec.Public...)
		window.VPNPorts = append([]schema.PortSpec(nil), spec.VPNPorts...)
		for _, p := range in.OldPorts {
			if p == spec.SSH.Port {
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
	plan, err := MakePlan(ctx, &window)
	if err != nil {
		return nil, nil, err
	}
	var refusals []string
	lockout := func(s *Spec, table, when string, r Reach) {
		paths, err := OperatorPaths(s, r)
		if err != nil {
			refusals = append(refusals, "firewall"+when+": "+err.Error())
			return
		}
		if _, err := CheckLockout(ctx, table, paths); err != nil {
			refusals = append(refusals, "firewall"+when+": "+err.Error())
		}
	}
	lockout(&window, plan.Table, "", in.Reach)
	finalTable := plan.Table
	if moved {
		finalTable = Render(&final)
		r := in.Reach
		r.SSHDPorts = []uint16{spec.SSH.Port}
		lockout(&final, finalTable, " after confirm", r)
	}
	persisted, err := PersistedTable(in.Root)
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
	if moved {
		st.Summary = append(st.Summary, fmt.Sprintf("open sshd's new port %d besides %s until confirm, then only %d", spec.SSH.Port, joinPorts(in.OldPorts), spec.SSH.Port))
	}
	persist := persisted != finalTable
	if !plan.Changes() && !moved && !persist {
		st.Summary = append(st.Summary, "table inet moat is loaded and persisted as moat.yaml says: nothing to do")
		return st, refusals, nil
	}
	st.Touch = []string{BootPath, UnitPath, WantsLink}
	if persist {
		st.Summary = append(st.Summary, "on confirm: persist it for boot ("+BootPath+", moat-firewall.service)")
	}
	if plan.Changes() {
		// Restore what was there: the persisted table when the live one
		// came from it (the ban sets keep their elements either way),
		// else the live listing.
		undo := stepData{Existed: plan.Live != "", V6: spec.BanIPv6Prefix}
		if undo.Existed {
			undo.Table = persisted
			if persisted == "" {
				undo.Table = plan.Live
			}
		}
		st.Undo = append(st.Undo, change.NewAction(ActionRestore, undo))
		table, v6 := plan.Table, spec.BanIPv6Prefix
		st.Apply = func(ctx context.Context, w *change.Writer) error {
			_, err := Replace(ctx, table, v6)
			return err
		}
	}
	if moved {
		st.Confirm = append(st.Confirm, change.NewAction(ActionReplace, stepData{Table: finalTable, V6: spec.BanIPv6Prefix}))
	}
	if persist || moved {
		st.Confirm = append(st.Confirm, change.NewAction(ActionPersist, stepData{Table: finalTable}))
	}
	return st, refusals, nil
}

func joinPorts(ps []uint16) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}

// Handlers run the firewall's undo and confirm actions, in whichever
// process rolls back or confirms.
func Handlers() change.Handlers {
	decode := func(data json.RawMessage) (stepData, error) {
		var d stepData
		err := json.Unmarshal(data, &d)
		return d, err
	}
	return change.Handlers{
		ActionRestore: func(ctx context.Context, env change.Env, data json.RawMessage) error {
			d, err := decode(data)
			if err != nil {
				return err
			}
			if d.Existed && d.Table != "" {
				_, err := Replace(ctx, d.Table, d.V6)
				return err
			}
			return deleteTable(ctx)
		},
		ActionReplace: func(ctx context.Context, env change.Env, data json.RawMessage) error {
			d, err := decode(data)
			if err != nil {
				return err
			}
			_, err = Replace(ctx, d.Table, d.V6)
			return err
		},
		ActionPersist: func(ctx context.Context, env change.Env, data json.RawMessage) error {
			d, err := decode(data)
			if err != nil {
				return err
			}
			_, err = Persist(env.Root, d.Table)
			return err
		},
	}
}

// deleteTable removes table inet moat; declaring it first makes the
// delete a no-op when there is none.
func deleteTable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := runNFT(ctx, []byte("table inet moat\ndelete table inet moat\n"), "-f", "-"); err != nil {
		return fmt.Errorf("delete table inet moat: %w", err)
	}
	return nil
}
