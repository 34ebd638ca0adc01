package firewall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// liveTable is what replacing table inet moat needs to know of the loaded
// one: its named objects, and whether its ban sets can be kept as they are.
type liveTable struct {
	exists  bool
	objects []object
	// bansKept: ban4 and ban6 exist with the definition moat renders, so
	// re-declaring them is a no-op and they keep their elements.
	bansKept bool
	// blocksKept: block4 and block6 exist as moat renders them; a table
	// that declares them again keeps their elements.
	blocksKept bool
	// other: objects of kinds moat does not render (quotas, flowtables,
	// …); only replacing the whole table removes them reliably.
	other bool
}

type object struct{ kind, name string }

// readLive lists table inet moat without set elements, in the caller's
// network namespace. It lists the whole ruleset tersely (nft -t): nft
// 1.0.6 reads every set element for `list table` and even `list tables`,
// seconds with 100,000 bans, but not for a terse `list ruleset`.
func readLive(ctx context.Context) (*liveTable, error) {
	out, err := runNFT(ctx, nil, "-t", "-j", "list", "ruleset")
	if err != nil {
		return nil, fmt.Errorf("list the ruleset: %w", err)
	}
	return parseLive(out)
}

func parseLive(data []byte) (*liveTable, error) {
	objs, err := moatObjects(data)
	if err != nil {
		return nil, err
	}
	lt := &liveTable{}
	banOK := map[string]bool{}
	for _, o := range objs {
		switch o.kind {
		case "metainfo", "rule", "element":
			continue
		case "table":
			lt.exists = true
			continue
		case "chain", "set", "map", "counter":
		default:
			lt.other = true
		}
		var v struct {
			Name  string          `json:"name"`
			Type  json.RawMessage `json:"type"`
			Flags []string        `json:"flags"`
		}
		if err := json.Unmarshal(o.raw, &v); err != nil {
			return nil, fmt.Errorf("parse nft json: %s: %w", o.kind, err)
		}
		lt.objects = append(lt.objects, object{o.kind, v.Name})
		if o.kind == "set" && (v.Name == SetBlock4 || v.Name == SetBlock6) {
			want := `"ipv4_addr"`
			if v.Name == SetBlock6 {
				want = `"ipv6_addr"`
			}
			banOK[v.Name] = string(v.Type) == want && slices.Equal(v.Flags, []string{"interval"})
		}
		if o.kind == "set" && (v.Name == SetBan4 || v.Name == SetBan6) {
			want := `"ipv4_addr"`
			if v.Name == SetBan6 {
				want = `"ipv6_addr"`
			}
			flags := slices.Clone(v.Flags)
			slices.Sort(flags)
			banOK[v.Name] = string(v.Type) == want && slices.Equal(flags, []string{"interval", "timeout"})
		}
	}
	lt.bansKept = banOK[SetBan4] && banOK[SetBan6]
	lt.blocksKept = banOK[SetBlock4] && banOK[SetBlock6]
	return lt, nil
}

// rawObject is one element of nft's JSON "nftables" array.
type rawObject struct {
	kind string
	raw  json.RawMessage
}

// moatObjects returns the objects of table inet moat (the table itself
// included) from a listing of the ruleset.
func moatObjects(data []byte) ([]rawObject, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse nft json: %w", err)
	}
	var out []rawObject
	for _, o := range doc.Nftables {
		for kind, raw := range o {
			var where struct{ Family, Table, Name string }
			if json.Unmarshal(raw, &where) != nil || where.Family != Family {
				continue
			}
			if where.Table == Table || kind == "table" && where.Name == Table {
				out = append(out, rawObject{kind, raw})
			}
		}
	}
	return out, nil
}

// incremental reports whether the table can be replaced object by object,
// keeping the ban sets.
func (lt *liveTable) incremental() bool { return lt != nil && lt.exists && lt.bansKept && !lt.other }

// ApplyScript returns the nft script that replaces table inet moat with
// table in one transaction. With the live table known and its ban sets as
// moat renders them, it deletes every object but the ban sets and the
// counters table declares again, then declares the table: the ban sets
// keep their elements and timeouts, the counters their counts. Otherwise
// it deletes the whole table first (`table inet moat` before the delete
// makes the delete safe when there is none), and the caller re-adds the
// bans.
func ApplyScript(table string, live *liveTable) string {
	var b strings.Builder
	b.WriteString("# moat: replace table inet moat in one transaction\n")
	b.WriteString("table inet moat\n")
	if !live.incremental() {
		b.WriteString("delete table inet moat\n")
		b.WriteString(table)
		return b.String()
	}
	keep := map[object]bool{{"set", SetBan4}: true, {"set", SetBan6}: true}
	if live.blocksKept && strings.Contains(table, "\tset "+SetBlock4+" {") {
		keep[object{"set", SetBlock4}] = true
		keep[object{"set", SetBlock6}] = true
	}
	for _, c := range declaredCounters(table) {
		keep[object{"counter", c}] = true
	}
	// Rules hold the references to chains, sets and counters: flush every
	// chain before deleting any object.
	for _, o := range live.objects {
		if o.kind == "chain" {
			fmt.Fprintf(&b, "flush chain inet moat %s\n", o.name)
		}
	}
	for _, kind := range []string{"chain", "set", "map", "counter"} {
		for _, o := range live.objects {
			if o.kind == kind && !keep[o] {
				fmt.Fprintf(&b, "delete %s inet moat %s\n", o.kind, o.name)
			}
		}
	}
	b.WriteString(table)
	return b.String()
}

// BootScript is what /etc/moat/moat.nft holds: the table, replacing any
// loaded one, for nft -f at boot.
func BootScript(table string) string { return ApplyScript(table, nil) }

// declaredCounters lists the named counters a rendered table declares.
func declaredCounters(table string) []string {
	var out []string
	for _, l := range strings.Split(table, "\n") {
		if name, ok := strings.CutPrefix(l, "\tcounter "); ok {
			out = append(out, strings.TrimSuffix(name, " {"))
		}
	}
	return out
}

// Replaced reports what Replace did.
type Replaced struct {
	// Incremental: the ban sets were kept in place; otherwise the whole
	// table was replaced and RestoredBans elements re-added.
	Incremental  bool
	RestoredBans int
	// Took is the time of the nft transaction alone.
	Took time.Duration
}

// Replace loads table (rendered by Render) as table inet moat in one
// transaction, in the caller's network namespace, keeping the ban sets'
// elements. It does not check for lockouts: Apply does, and so must any
// other caller.
func Replace(ctx context.Context, table string, v6Prefix int) (*Replaced, error) {
	live, err := readLive(ctx)
	if err != nil {
		return nil, err
	}
	res := &Replaced{Incremental: live.incremental()}
	var bans, blocks []Element
	var sets *Sets
	if live.exists && !res.Incremental {
		// The ban sets go with the table: read them first.
		if sets, err = NewSets(v6Prefix); err != nil {
			return nil, err
		}
		defer sets.Close()
		if bans, err = sets.Bans(ctx); err != nil {
			return nil, fmt.Errorf("save bans before replacing the table: %w", err)
		}
		if live.blocksKept && strings.Contains(table, "\tset "+SetBlock4+" {") {
			if blocks, err = sets.Blocklisted(ctx); err != nil {
				return nil, fmt.Errorf("save the blocklists before replacing the table: %w", err)
			}
		}
	}
	script := ApplyScript(table, live)
	start := time.Now()
	if _, err := runNFT(ctx, []byte(script), "-f", "-"); err != nil {
		return nil, fmt.Errorf("load table inet moat: %w (nothing was changed: the transaction is atomic)", err)
	}
	res.Took = time.Since(start)
	if len(bans) > 0 {
		keep := bans[:0]
		for _, b := range bans {
			// Re-add with the time each had left; 0 stays permanent.
			if b.Timeout > 0 && b.Expires <= 0 {
				continue // expired meanwhile
			}
			b.Timeout = b.Expires
			keep = append(keep, b)
		}
		bans = keep
		if err := sets.Add(ctx, KindBan, bans); err != nil {
			return res, fmt.Errorf("restore %d bans after replacing the table: %w", len(bans), err)
		}
		res.RestoredBans = len(bans)
	}
	if len(blocks) > 0 {
		if err := sets.ReplaceBlocklist(ctx, prefixesOf(blocks)); err != nil {
			return res, fmt.Errorf("restore the blocklists after replacing the table: %w", err)
		}
	}
	return res, nil
}

// ApplyOptions are the inputs of Apply besides the Spec.
type ApplyOptions struct {
	// Paths are the operator's ways into sshd (OperatorPaths); Apply
	// refuses with a *LockoutError when none stays open.
	Paths []Path
	// Root prefixes the persisted files ("" for /); NoPersist skips them.
	Root      string
	NoPersist bool
}

// Applied reports what Apply did.
type Applied struct {
	Table     string // the rendered table
	Paths     []PathResult
	Replaced  *Replaced
	Persisted *Persisted
	// previous is the table persisted before, for Undo; "" when none.
	previous string
	v6Prefix int
}

// Apply renders s and checks it twice before loading it: nft -c against
// the live kernel, then the lockout check for opt.Paths. Then it replaces
// table inet moat in one transaction, in the caller's network namespace,
// and persists the table for boot. It changes nothing when a check fails.
func Apply(ctx context.Context, s *Spec, opt ApplyOptions) (*Applied, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("firewall spec: %w", err)
	}
	table := Render(s)
	live, err := readLive(ctx)
	if err != nil {
		return nil, err
	}
	if err := Check(ctx, ApplyScript(table, live)); err != nil {
		return nil, err
	}
	a := &Applied{Table: table, v6Prefix: s.BanIPv6Prefix}
	if a.Paths, err = CheckLockout(ctx, table, opt.Paths); err != nil {
		return a, err
	}
	if !opt.NoPersist {
		if a.previous, err = PersistedTable(opt.Root); err != nil {
			return a, err
		}
	}
	if a.Replaced, err = Replace(ctx, table, s.BanIPv6Prefix); err != nil {
		return a, err
	}
	if opt.NoPersist {
		return a, nil
	}
	if a.Persisted, err = Persist(opt.Root, table); err != nil {
		return a, fmt.Errorf("the table is loaded but not persisted for boot: %w", err)
	}
	return a, nil
}

// Undo puts back the table and the files that were there before Apply:
// the previously persisted table (ban sets kept), or no table inet moat at
// all when there was none.
func (a *Applied) Undo(ctx context.Context) error {
	var errs []error
	if a.Replaced != nil {
		if a.previous != "" {
			if _, err := Replace(ctx, a.previous, a.v6Prefix); err != nil {
				errs = append(errs, err)
			}
		} else if _, err := runNFT(ctx, []byte("table inet moat\ndelete table inet moat\n"), "-f", "-"); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, a.Persisted.Undo())
	return errors.Join(errs...)
}
