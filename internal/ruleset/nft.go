package ruleset

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// nftObject is a table, chain, rule, set, map or set elements: one key of
// an element of the "nftables" array, or of a command's argument.
type nftObject struct {
	Table   *nftTable       `json:"table"`
	Chain   *nftChain       `json:"chain"`
	Rule    *nftRule        `json:"rule"`
	Set     *nftSet         `json:"set"`
	Map     *nftSet         `json:"map"`
	Element *nftSet         `json:"element"`
	Ruleset json.RawMessage `json:"ruleset"` // flush ruleset
}

// nftCommand is an element of the "nftables" array: a listed object, or a
// command of the JSON input format (libnftables-json(5)).
type nftCommand struct {
	nftObject
	Add     *nftObject      `json:"add"`
	Create  *nftObject      `json:"create"`
	Insert  *nftObject      `json:"insert"`
	Flush   *nftObject      `json:"flush"`
	Delete  *nftObject      `json:"delete"`
	Replace json.RawMessage `json:"replace"`
	Rename  json.RawMessage `json:"rename"`
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
	Dev    json.RawMessage `json:"dev"`
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

// ParseNFT reads the output of `nft -j list ruleset`, or a document of
// nft's JSON input format (add, create, insert, flush and delete table
// commands), such as a candidate table before `nft -j -f` loads it.
func ParseNFT(data []byte) (*Ruleset, error) {
	var doc struct {
		Nftables []nftCommand `json:"nftables"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse nft json: %w (expected the output of `nft -j list ruleset`)", err)
	}
	if doc.Nftables == nil {
		return nil, fmt.Errorf(`parse nft json: no "nftables" array (expected the output of ` + "`nft -j list ruleset`)")
	}
	p := nftParser{rs: &Ruleset{}, tables: map[string]*Table{}}
	// One pass in order: anything named before it is defined is created on
	// demand, and set references resolve at evaluation.
	for i, c := range doc.Nftables {
		var err error
		switch {
		case c.Add != nil:
			p.object(c.Add, true, false)
		case c.Create != nil:
			p.object(c.Create, true, false)
		case c.Insert != nil:
			p.object(c.Insert, true, true)
		case c.Flush != nil:
			err = p.flush(c.Flush)
		case c.Delete != nil:
			err = p.delete(c.Delete)
		case c.Replace != nil || c.Rename != nil:
			err = fmt.Errorf("replace and rename commands are not supported")
		default:
			p.object(&c.nftObject, false, false)
		}
		if err != nil {
			return nil, fmt.Errorf("parse nft json: element %d: %w", i, err)
		}
	}
	return p.rs, nil
}

// object applies a listed object, or the argument of add/create (command)
// or insert: commands give rule handles as positions, not identities.
func (p *nftParser) object(o *nftObject, command, insert bool) {
	switch {
	case o.Table != nil:
		t := p.table(o.Table.Family, o.Table.Name)
		t.Handle = o.Table.Handle
		t.Dormant, t.dormantUnsure = dormant(o.Table.Flags)
	case o.Chain != nil:
		p.chain(o.Chain)
	case o.Set != nil:
		p.set(o.Set)
	case o.Map != nil:
		p.set(o.Map)
	case o.Element != nil:
		p.set(o.Element)
	case o.Rule != nil:
		r := o.Rule
		t := p.table(r.Family, r.Table)
		c := t.addChain(&Chain{Name: r.Chain})
		rule, compat := parseRule(r)
		t.compat = t.compat || compat
		if !command {
			c.Rules = append(c.Rules, rule)
			return
		}
		rule.Handle = 0 // the kernel assigns it on load
		c.Rules = insertRule(c.Rules, rule, r.Handle, insert)
	}
}

// insertRule places r as `add rule ... handle H` (after H, else last) or
// `insert rule ... handle H` (before H, else first) would.
func insertRule(rules []*Rule, r *Rule, at uint64, before bool) []*Rule {
	i := len(rules)
	if before {
		i = 0
	}
	if at != 0 {
		for j, x := range rules {
			if x.Handle == at {
				i = j
				if !before {
					i++
				}
				break
			}
		}
	}
	return slices.Insert(rules, i, r)
}

func (p *nftParser) flush(o *nftObject) error {
	switch {
	case o.Ruleset != nil:
		p.rs.tables, p.tables = nil, map[string]*Table{}
	case o.Table != nil:
		t := p.table(o.Table.Family, o.Table.Name)
		for _, c := range t.Chains {
			c.Rules = nil
		}
		for _, s := range t.sets {
			s.elems, s.verdict = nil, nil
		}
	case o.Chain != nil:
		if c := p.table(o.Chain.Family, o.Chain.Table).chains[o.Chain.Name]; c != nil {
			c.Rules = nil
		}
	case o.Set != nil || o.Map != nil:
		j := o.Set
		if j == nil {
			j = o.Map
		}
		if s := p.table(j.Family, j.Table).sets[j.Name]; s != nil {
			s.elems, s.verdict = nil, nil
		}
	default:
		return fmt.Errorf("unsupported flush")
	}
	return nil
}

func (p *nftParser) delete(o *nftObject) error {
	if o.Table == nil {
		return fmt.Errorf("only delete table is supported")
	}
	k := o.Table.Family + "\x00" + o.Table.Name
	if t, ok := p.tables[k]; ok {
		delete(p.tables, k)
		p.rs.tables = slices.DeleteFunc(p.rs.tables, func(x *Table) bool { return x == t })
	}
	return nil
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
	c.Devices = stringList(j.Dev)
	c.devUnknown = c.Hook == HookIngress && len(c.Devices) == 0 // nft 1.0.6 omits them
}

// dormant reads table flags: "dormant" or a list holding it. nft 1.0.6
// prints garbage there (a dangling pointer: the table's name, "filter",
// anything), so flags it cannot read leave the table possibly dormant:
// unsure, not silently awake. Kernel reads the flag itself.
func dormant(raw json.RawMessage) (yes, unsure bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return false, false
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "dormant" {
			return true, false
		}
		return false, !knownTableFlags[one]
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, f := range many {
			if f == "dormant" {
				return true, false
			}
			if !knownTableFlags[f] {
				unsure = true
			}
		}
		return false, unsure
	}
	return false, true
}

// knownTableFlags are the table flags other than dormant.
var knownTableFlags = map[string]bool{"owner": true, "persist": true}

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
	s := t.sets[j.Name]
	if s == nil {
		s = &set{}
		t.sets[j.Name] = s
	}
	var mapTo string
	if len(j.Map) > 0 {
		// "verdict", or a data type (dnat maps and the like): not matched
		// by rules, so their elements are not kept.
		s.isMap = true
		_ = json.Unmarshal(j.Map, &mapTo)
		s.verdictMap = mapTo == "verdict"
	}
	for _, raw := range j.Elem {
		switch {
		case s.verdictMap:
			var pair []json.RawMessage
			if json.Unmarshal(raw, &pair) != nil || len(pair) != 2 {
				continue
			}
			s.verdict = append(s.verdict, vmapEntry{elem: parseElem(pair[0]), act: parseVerdict(pair[1])})
		case !s.isMap:
			s.elems = append(s.elems, parseElem(raw))
		}
	}
}
