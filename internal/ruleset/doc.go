// Package ruleset reads netfilter rulesets as data and answers one question
// about them: would the kernel accept this packet?
//
// The model comes from the kernel itself: Kernel reads tables (with their
// dormant flag), chains (hooks, devices, priorities, policies), rules and sets
// over nf_tables netlink, and each rule is evaluated the way the kernel runs
// it, as expressions over registers, on a synthetic packet whose unknown bits
// stay unknown; iptables-nft's xt matches are judged from the info structs
// the kernel holds. nft's JSON (ParseNFT) is the fallback when netlink cannot
// be read, and the way to judge a candidate table before it is loaded; the
// text of iptables-legacy-save / ip6tables-legacy-save (ParseIptablesSave)
// adds x_tables rules. Live reads all of them from the running host:
//
//	live.Without(ruleset.FamilyInet, "moat").Merge(candidate).Evaluate(ssh, ruleset.Pessimistic)
//
// A Ruleset is read-only once parsed and safe for concurrent use.
//
// # Semantics
//
// Evaluate follows netfilter: a packet to a local socket traverses the
// ingress chains of its interface (netdev tables, and inet tables' ingress
// hook), the prerouting base chains and then the input base chains; a routed
// (for example DNATed) packet traverses ingress, prerouting and then forward.
// Within a hook every base chain of every table that sees the packet's family
// runs, in priority order (inet tables see both families, ip only IPv4, ip6
// only IPv6). Rules run in order; accept ends only the current base chain (the
// packet moves on to the next one), drop and reject are final; jump and goto
// enter regular chains, return leaves them; a chain's policy applies when no
// rule gave a verdict. With no base chain on the path the packet is accepted.
// Dormant tables and tables of the arp and bridge families are ignored. nat
// chains see only the first packet of a connection; a dnat, redirect, snat or
// masquerade statement ends its chain like accept (the rewrite itself is not
// modelled, Verdict.Rewrite names it). Marks (meta mark set, ct mark set) and
// notrack (which untracks only a packet conntrack has not seen yet) change
// the packet for the rules and chains after them, as they do in the kernel; once the evaluation has split over an undecided match, a
// mark set on one path is unknown on the others.
//
// The packet is the first packet of a new connection unless Packet.State says
// otherwise: ct state is new (but invalid, with no other ct key matching,
// before conntrack has seen it: at ingress, and in prerouting below priority
// -200), a TCP packet carries only SYN, ct status holds dnat exactly when Packet.DNAT is set (and only after the dstnat priority),
// fib daddr type is local on the input path and unicast on the forward path,
// reverse-path (rpfilter) checks pass, and meta pkttype is host.
//
// Rate and count limits are judged for one fresh connection from a quiet
// source: limit, hashlimit-upto and "ct count N" match, while their "over"
// forms (limit rate over, ct count over, hashlimit-above, recent --hitcount,
// connlimit-above) do not. quota compares its used counter with its limit.
// Set elements are taken as listed, timeouts notwithstanding; statements that
// add to sets, count or log have no effect on the verdict.
//
// # Uncertainty
//
// Some matches cannot be decided from the ruleset and the packet: sockets,
// ipsets, xt extensions not modelled, packet fields no synthetic packet
// carries (TTL, lengths, options), marks once paths split, or fields the
// caller left unset (a zero Saddr or IIf means "any"). From nft's JSON also
// xt matches (shown only as "xt match NAME"), unreadable table flags and
// ingress chains whose device nft 1.0.6 omits. Such a match is unknown, and the evaluator
// explores both outcomes. Mode picks the answer: Optimistic asks "could the
// packet be accepted?" (the audit's exposure question), Pessimistic asks "is
// it surely accepted?" (the lockout check). Verdict.Certain reports whether
// both questions have the same answer, and Verdict.Unsure names the rules
// that made the difference.
package ruleset
