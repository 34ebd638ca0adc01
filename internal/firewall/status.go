package firewall

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Status summarises the live table inet moat.
type Status struct {
	Loaded    bool      `json:"loaded"`
	Persisted bool      `json:"persisted"` // the boot script exists
	Chains    int       `json:"chains"`
	Rules     int       `json:"rules"`
	Open      []Opening `json:"open"`
	Sets      []SetSize `json:"sets"`
	Drops     []Drop    `json:"drops"`
}

// Opening is a group of ports one rule opens, by exposure: the rule's
// comment (public, vpn, allow[N], ssh: public, ssh: vpn, ssh: admin).
type Opening struct {
	Exposure string `json:"exposure"`
	Proto    string `json:"proto"`
	Ports    string `json:"ports"`          // "80, 443, 60000-61000"
	DNAT     bool   `json:"dnat,omitempty"` // published (forwarded) rather than local
}

// SetSize is the number of elements (ranges) of a set.
type SetSize struct {
	Name     string `json:"name"`
	Elements int    `json:"elements"`
}

// Drop is a drop reason's counter.
type Drop struct {
	Reason  string `json:"reason"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// ReadStatus reads table inet moat in the caller's network namespace, and
// whether its boot script exists under root.
func ReadStatus(ctx context.Context, root string) (*Status, error) {
	st := &Status{}
	if _, err := os.Stat(filepath.Join(root, BootPath)); err == nil {
		st.Persisted = true
	}
	live, err := readLive(ctx)
	if err != nil {
		return nil, err
	}
	if !live.exists {
		return st, nil
	}
	out, err := runNFT(ctx, nil, "-t", "-j", "list", "ruleset") // see readLive
	if err != nil {
		return nil, err
	}
	if err := st.parse(out); err != nil {
		return nil, err
	}
	sets, err := NewSets(64)
	if err != nil {
		return nil, err
	}
	defer sets.Close()
	for i := range st.Sets {
		if st.Sets[i].Elements, err = sets.count(st.Sets[i].Name); err != nil {
			return nil, fmt.Errorf("count elements of set %s: %w", st.Sets[i].Name, err)
		}
	}
	return st, nil
}

// parse fills st from `nft -t -j list ruleset`: table inet moat's part.
func (st *Status) parse(data []byte) error {
	objs, err := moatObjects(data)
	if err != nil {
		return err
	}
	for _, o := range objs {
		var v struct {
			Name    string            `json:"name"`
			Chain   string            `json:"chain"`
			Comment string            `json:"comment"`
			Packets uint64            `json:"packets"`
			Bytes   uint64            `json:"bytes"`
			Expr    []json.RawMessage `json:"expr"`
		}
		if err := json.Unmarshal(o.raw, &v); err != nil {
			return fmt.Errorf("parse nft json: %s: %w", o.kind, err)
		}
		switch o.kind {
		case "table":
			st.Loaded = true
		case "chain":
			st.Chains++
		case "set":
			st.Sets = append(st.Sets, SetSize{Name: v.Name})
		case "counter":
			if reason, ok := strings.CutPrefix(v.Name, "drop_"); ok {
				st.Drops = append(st.Drops, Drop{Reason: reason, Packets: v.Packets, Bytes: v.Bytes})
			}
		case "rule":
			st.Rules++
			if op, ok := opening(v.Expr); ok && isExposure(v.Comment) {
				op.Exposure, op.DNAT = v.Comment, v.Chain != "input"
				st.Open = append(st.Open, op)
			}
		}
	}
	st.Open = mergeOpenings(st.Open)
	return nil
}

// isExposure reports whether a rule comment names an exposure moat
// renders: public, vpn, allow[N] or ssh: ….
func isExposure(comment string) bool {
	return comment == "public" || comment == "vpn" || strings.HasPrefix(comment, "allow[") || strings.HasPrefix(comment, "ssh: ")
}

// mergeOpenings folds the rules of one exposure and protocol into one
// line: a VPN port has a rule per interface set and per range family.
func mergeOpenings(in []Opening) []Opening {
	type key struct {
		exposure, proto string
		dnat            bool
	}
	var out []Opening
	idx := map[key]int{}
	seen := map[key]map[string]bool{}
	for _, o := range in {
		k := key{o.Exposure, o.Proto, o.DNAT}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k], seen[k] = i, map[string]bool{}
			out = append(out, Opening{Exposure: o.Exposure, Proto: o.Proto, DNAT: o.DNAT})
		}
		for _, p := range strings.Split(o.Ports, ", ") {
			if !seen[k][p] {
				seen[k][p] = true
				if out[i].Ports != "" {
					out[i].Ports += ", "
				}
				out[i].Ports += p
			}
		}
	}
	return out
}

// opening reads the protocol and ports an accepting rule opens: a match
// on tcp/udp dport, or on ct original proto-dst after meta l4proto.
func opening(exprs []json.RawMessage) (Opening, bool) {
	var op Opening
	accept := false
	for _, raw := range exprs {
		var e map[string]json.RawMessage
		if json.Unmarshal(raw, &e) != nil {
			continue
		}
		if _, ok := e["accept"]; ok {
			accept = true
			continue
		}
		var m struct {
			Left  json.RawMessage `json:"left"`
			Right json.RawMessage `json:"right"`
		}
		if e["match"] == nil || json.Unmarshal(e["match"], &m) != nil {
			continue
		}
		var left struct {
			Payload *struct{ Protocol, Field string } `json:"payload"`
			Meta    *struct{ Key string }             `json:"meta"`
			Ct      *struct{ Key, Dir string }        `json:"ct"`
		}
		if json.Unmarshal(m.Left, &left) != nil {
			continue
		}
		switch {
		case left.Payload != nil && left.Payload.Field == "dport" && (left.Payload.Protocol == "tcp" || left.Payload.Protocol == "udp"):
			op.Proto, op.Ports = left.Payload.Protocol, portsText(m.Right)
		case left.Meta != nil && left.Meta.Key == "l4proto":
			var p string
			if json.Unmarshal(m.Right, &p) == nil {
				op.Proto = p
			}
		case left.Ct != nil && left.Ct.Key == "proto-dst" && left.Ct.Dir == "original":
			op.Ports = portsText(m.Right)
		}
	}
	return op, accept && op.Proto != "" && op.Ports != ""
}

// portsText renders a port match's right side: 80, {"range": [a, b]} or
// {"set": [...]}.
func portsText(raw json.RawMessage) string {
	var n uint64
	if json.Unmarshal(raw, &n) == nil {
		return strconv.FormatUint(n, 10)
	}
	var r struct {
		Range []uint64          `json:"range"`
		Set   []json.RawMessage `json:"set"`
	}
	if json.Unmarshal(raw, &r) != nil {
		return ""
	}
	if len(r.Range) == 2 {
		return fmt.Sprintf("%d-%d", r.Range[0], r.Range[1])
	}
	var parts []string
	for _, x := range r.Set {
		if t := portsText(x); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, ", ")
}

// WriteText prints st for people.
func (st *Status) WriteText(w io.Writer) {
	if !st.Loaded {
		fmt.Fprintln(w, "table inet moat: not loaded (run moat apply firewall --yes)")
		if st.Persisted {
			fmt.Fprintf(w, "boot script %s exists: the table will load at boot\n", BootPath)
		}
		return
	}
	boot := "persisted for boot"
	if !st.Persisted {
		boot = "NOT persisted for boot (" + BootPath + " missing)"
	}
	fmt.Fprintf(w, "table inet moat: loaded, %d chains, %d rules, %s\n", st.Chains, st.Rules, boot)
	fmt.Fprintln(w, "\nopen ports:")
	if len(st.Open) == 0 {
		fmt.Fprintln(w, "  none")
	}
	open := slices.Clone(st.Open)
	slices.SortStableFunc(open, func(a, b Opening) int {
		if a.DNAT != b.DNAT {
			if a.DNAT {
				return 1
			}
			return -1
		}
		return 0
	})
	for _, o := range open {
		where := "host"
		if o.DNAT {
			where = "published"
		}
		fmt.Fprintf(w, "  %-10s %-12s %s %s\n", where, o.Exposure, o.Proto, o.Ports)
	}
	fmt.Fprintln(w, "\nsets:")
	for _, s := range st.Sets {
		fmt.Fprintf(w, "  %-6s %d\n", s.Name, s.Elements)
	}
	fmt.Fprintln(w, "\ndrops:")
	for _, d := range st.Drops {
		fmt.Fprintf(w, "  %-9s %d packets, %d bytes\n", d.Reason, d.Packets, d.Bytes)
	}
}
