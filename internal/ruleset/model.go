package ruleset

import (
	"cmp"
	"maps"
	"slices"
)

// Family is a netfilter table family.
type Family string

// The table families nftables knows.
const (
	FamilyIP     Family = "ip"
	FamilyIP6    Family = "ip6"
	FamilyInet   Family = "inet"
	FamilyARP    Family = "arp"
	FamilyBridge Family = "bridge"
	FamilyNetdev Family = "netdev"
)

// sees reports whether tables of family f see IPv4 (v6 false) or IPv6 packets
// on the IP hooks.
func (f Family) sees(v6 bool) bool {
	switch f {
	case FamilyInet:
		return true
	case FamilyIP:
		return !v6
	case FamilyIP6:
		return v6
	}
	return false
}

// Hook is a netfilter hook; regular chains have none.
type Hook string

// The hooks a base chain can attach to.
const (
	HookPrerouting  Hook = "prerouting"
	HookInput       Hook = "input"
	HookForward     Hook = "forward"
	HookOutput      Hook = "output"
	HookPostrouting Hook = "postrouting"
	HookIngress     Hook = "ingress"
	HookEgress      Hook = "egress"
)

// Source says where a table was read from.
type Source string

// Table sources.
const (
	SourceNFT            Source = "nft"             // nft -j list ruleset
	SourceIptablesNFT    Source = "iptables-nft"    // iptables-nft-save, in place of nft's lossy view of xt rules
	SourceIptablesLegacy Source = "iptables-legacy" // iptables-legacy-save
)

// Ruleset is every table of one host (or one network namespace).
type Ruleset struct {
	tables []*Table
	// ifindex maps interface names to indexes in the namespace the ruleset
	// was read from: rules written `iif eth0` hold the index.
	ifindex map[string]int
	// ctmarkSet: some kernel rule may set a conntrack mark; without one,
	// every connection's ct mark is zero.
	ctmarkSet bool
}

// Table is one netfilter table.
type Table struct {
	Family  Family
	Name    string
	Source  Source
	Handle  uint64
	Dormant bool // a dormant table's chains are not attached to their hooks
	Chains  []*Chain

	chains map[string]*Chain
	sets   map[string]*set
	nlsets map[string]*nlSet // sets read over netlink, for kernel rules
	compat bool              // holds iptables-nft "xt" expressions
	// dormantUnsure: the flags were unreadable (nft 1.0.6's JSON), so the
	// table may be dormant.
	dormantUnsure bool
	kernel        bool // read over netlink (Kernel)
}

// Kernel reports whether t was read from the kernel over netlink rather
// than from a printer's text.
func (t *Table) Kernel() bool { return t.kernel }

// Chain is a base chain (Hook set) or a regular chain.
type Chain struct {
	Table    *Table
	Name     string
	Handle   uint64
	Type     string // filter, nat or route; empty for regular chains
	Hook     Hook
	Priority int
	Policy   string   // accept or drop, for base chains
	Devices  []string // the interfaces an ingress chain is attached to
	Rules    []*Rule

	devUnknown bool // an ingress chain whose devices nft's JSON did not show
}

// Rule is one rule of a chain.
type Rule struct {
	Handle  uint64 // 0 for iptables-save rules and rules of command documents
	Text    string // `tcp dport 22 accept`, or the iptables-save line
	Comment string

	conds []cond
	act   action
	prog  *prog // the kernel's expressions, when read over netlink (conds and act unused)

	notrack bool // a notrack statement (nft's JSON)
}

// Base reports whether c is attached to a hook.
func (c *Chain) Base() bool { return c.Hook != "" }

// Empty reports whether the ruleset has no tables at all.
func (r *Ruleset) Empty() bool { return r == nil || len(r.tables) == 0 }

// Tables returns the tables in the order they were read.
func (r *Ruleset) Tables() []*Table {
	if r == nil {
		return nil
	}
	return slices.Clone(r.tables)
}

// Table returns the table family/name, preferring nft's own tables over
// iptables-legacy ones of the same name; nil if there is none.
func (r *Ruleset) Table(family Family, name string) *Table {
	var found *Table
	for _, t := range r.Tables() {
		if t.Family == family && t.Name == name && (found == nil || found.Source == SourceIptablesLegacy) {
			found = t
		}
	}
	return found
}

// Chain returns the chain called name, or nil.
func (t *Table) Chain(name string) *Chain { return t.chains[name] }

// Merge returns a ruleset holding the tables of r and then those of o. Both
// inputs stay usable; tables are shared, not copied.
func (r *Ruleset) Merge(o *Ruleset) *Ruleset {
	idx := map[string]int{}
	for _, x := range []*Ruleset{r, o} {
		if x != nil {
			maps.Copy(idx, x.ifindex)
		}
	}
	return &Ruleset{tables: append(r.Tables(), o.Tables()...), ifindex: idx, ctmarkSet: r != nil && r.ctmarkSet || o != nil && o.ctmarkSet}
}

// BaseChains returns the active base chains attached to hook in tables that
// see IPv4 (v6 false) or IPv6 packets, in the order the kernel runs them.
func (r *Ruleset) BaseChains(hook Hook, v6 bool) []*Chain {
	if hook == "" {
		return nil // regular chains have no hook
	}
	var out []*Chain
	for _, t := range r.Tables() {
		if t.Dormant || !t.Family.sees(v6) {
			continue
		}
		for _, c := range t.Chains {
			if c.Hook == hook {
				out = append(out, c)
			}
		}
	}
	// Stable: at equal priority the kernel runs hooks in registration order,
	// which the listing order approximates.
	slices.SortStableFunc(out, func(a, b *Chain) int { return cmp.Compare(a.Priority, b.Priority) })
	return out
}

// ingressChains returns the active ingress base chains (netdev tables, and
// inet tables' ingress hook) that see a packet arriving on iif, in priority
// order; with iif unknown, every one of them.
func (r *Ruleset) ingressChains(iif string) []*Chain {
	var out []*Chain
	for _, t := range r.Tables() {
		if t.Dormant || t.Family != FamilyNetdev && t.Family != FamilyInet {
			continue
		}
		for _, c := range t.Chains {
			if c.Hook != HookIngress {
				continue
			}
			if iif == "" || len(c.Devices) == 0 || slices.Contains(c.Devices, iif) {
				out = append(out, c)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b *Chain) int { return cmp.Compare(a.Priority, b.Priority) })
	return out
}

// addChain registers c in t, replacing nothing: a duplicate name keeps the
// first chain (the kernel forbids duplicates; this only guards bad input).
func (t *Table) addChain(c *Chain) *Chain {
	if t.chains == nil {
		t.chains = map[string]*Chain{}
	}
	if old, ok := t.chains[c.Name]; ok {
		return old
	}
	c.Table = t
	t.chains[c.Name] = c
	t.Chains = append(t.Chains, c)
	return c
}

// Without returns a ruleset without nft's table family/name (tables of
// iptables-legacy are kept): the host as it would be once that table is
// replaced, ready to Merge with a candidate.
func (r *Ruleset) Without(family Family, name string) *Ruleset {
	return &Ruleset{ifindex: r.ifindex, ctmarkSet: r.ctmarkSet, tables: slices.DeleteFunc(r.Tables(), func(t *Table) bool {
		return t.Family == family && t.Name == name && t.Source != SourceIptablesLegacy
	})}
}
