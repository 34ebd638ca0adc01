package ruleset

import (
	"encoding/json"
	"fmt"
	"strings"
)

// nftObject is one element of the "nftables" array: exactly one of these.
type nftObject struct {
	Table *nftTable `json:"table"`
	Chain *nftChain `json:"chain"`
	Rule  *nftRule  `json:"rule"`
	Set   *nftSet   `json:"set"`
	Map   *nftSet   `json:"map"`
}

type nftTable struct {
	Family string          `json:"family"`
	Name   string          `json:"name"`
	Handle uint64          `json:"handle"`
	Flags  json.RawMessage `json:"flags"`
}

type nftChain struct {
	Family string          `json:"family"`
	Table  string          `json:"table"`
	Name   string          `json:"name"`
	Handle uint64          `json:"handle"`
	Type   string          `json:"type"`
	Hook   string          `json:"hook"`
	Prio   json.RawMessage `json:"prio"`
	Policy string          `json:"policy"`
}

type nftRule struct {
	Family  string            `json:"family"`
	Table   string            `json:"table"`
	Chain   string            `json:"chain"`
	Handle  uint64            `json:"handle"`
	Comment string            `json:"comment"`
	Expr    []json.RawMessage `json:"expr"`
}

type nftSet struct {
	Family string            `json:"family"`
	Table  string            `json:"table"`
	Name   string            `json:"name"`
	Type   json.RawMessage   `json:"type"`
	Map    json.RawMessage   `json:"map"`
	Elem   []json.RawMessage `json:"elem"`
}

// ParseNFT reads the output of `nft -j list ruleset`.
func ParseNFT(data []byte) (*Ruleset, error) {
	var doc struct {
		Nftables []nftObject `json:"nftables"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse nft json: %w (expected the output of `nft -j list ruleset`)", err)
	}
	if doc.Nftables == nil {
		return nil, fmt.Errorf(`parse nft json: no "nftables" array (expected the output of ` + "`nft -j list ruleset`)")
	}
	p := nftParser{rs: &Ruleset{}, tables: map[string]*Table{}}
	// Tables, chains and sets first: rules may refer to any of them.
	for _, o := range doc.Nftables {
		switch {
		case o.Table != nil:
			t := p.table(o.Table.Family, o.Table.Name)
			t.Handle, t.Dormant = o.Table.Handle, dormant(o.Table.Flags)
		case o.Chain != nil:
			p.chain(o.Chain)
		case o.Set != nil:
			p.set(o.Set)
		case o.Map != nil:
			p.set(o.Map)
		}
	}
	for _, o := range doc.Nftables {
		if r := o.Rule; r != nil {
			t := p.table(r.Family, r.Table)
			c := t.addChain(&Chain{Name: r.Chain})
			rule, compat := parseRule(r)
			c.Rules = append(c.Rules, rule)
			t.compat = t.compat || compat
		}
	}
	return p.rs, nil
}

type nftParser struct {
	rs     *Ruleset
	tables map[string]*Table
}

func (p *nftParser) table(family, name string) *Table {
	k := family + "\x00" + name
	if t, ok := p.tables[k]; ok {
		return t
	}
	t := &Table{Family: Family(family), Name: name, Source: SourceNFT, chains: map[string]*Chain{}, sets: map[string]*set{}}
	p.tables[k] = t
	p.rs.tables = append(p.rs.tables, t)
	return t
}

func (p *nftParser) chain(j *nftChain) {
	c := p.table(j.Family, j.Table).addChain(&Chain{Name: j.Name})
	c.Handle, c.Type, c.Hook, c.Policy = j.Handle, j.Type, Hook(j.Hook), j.Policy
	if c.Hook != "" && c.Policy == "" {
		c.Policy = "accept"
	}
	c.Priority = priority(j.Prio)
}

// dormant reads table flags, which nft 1.0.6 prints as "d" (sic), later
// versions as "dormant" or a list.
func dormant(raw json.RawMessage) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == "dormant" || one == "d"
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, f := range many {
			if f == "dormant" {
				return true
			}
		}
	}
	return false
}

// priorities are the standard names nft accepts for ip/ip6/inet chains.
var priorities = map[string]int{
	"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100,
}

// priority reads "prio": a number, or a name with an optional offset
// ("filter + 10").
func priority(raw json.RawMessage) int {
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return 0
	}
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	base := priorities[f[0]]
	if len(f) == 3 {
		var off int
		if _, err := fmt.Sscan(f[2], &off); err == nil {
			if f[1] == "-" {
				off = -off
			}
			base += off
		}
	}
	return base
}

func (p *nftParser) set(j *nftSet) {
	t := p.table(j.Family, j.Table)
	s := &set{}
	var mapTo string
	_ = json.Unmarshal(j.Map, &mapTo) // absent for sets, a list for concatenated data
	for _, raw := range j.Elem {
		if mapTo == "verdict" {
			var pair []json.RawMessage
			if json.Unmarshal(raw, &pair) != nil || len(pair) != 2 {
				continue
			}
			s.verdict = append(s.verdict, vmapEntry{elem: parseElem(pair[0]), act: parseVerdict(pair[1])})
			continue
		}
		if len(j.Map) > 0 {
			// Data maps (dnat maps and the like) are not matched by rules.
			continue
		}
		s.elems = append(s.elems, parseElem(raw))
	}
	t.sets[j.Name] = s
}
