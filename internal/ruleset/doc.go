// Package ruleset reads netfilter rulesets as data and answers one question
// about them: would the kernel accept this packet?
//
// Two sources feed one model: `nft -j list ruleset` (ParseNFT) and the text
// of iptables-legacy-save / ip6tables-legacy-save (ParseIptablesSave). Live
// reads both from the running host, and re-reads tables that iptables-nft
// manages through iptables-nft-save, since nft's JSON drops the options of
// their xt matches. ParseNFT also reads nft's JSON input format, so a
// candidate table can be judged before it is loaded:
//
//	live.Without(ruleset.FamilyInet, "moat").Merge(candidate).Evaluate(ssh, ruleset.Pessimistic)
//
// A Ruleset is read-only once parsed and safe for concurrent use.
//
// # Semantics
//
// Evaluate follows netfilter: a packet to a local socket traverses the
// prerouting base chains and then the input base chains; a routed (for
// example DNATed) packet traverses prerouting and then forward. Within a hook
// every base chain of every table that sees the packet's family runs, in
// priority order (inet tables see both families, ip only IPv4, ip6 only
// IPv6). Rules run in order; accept ends only the current base chain (the
// packet moves on to the next one), drop and reject are final; jump and goto
// enter regular chains, return leaves them; a chain's policy applies when no
// rule gave a verdict. With no base chain on the path the packet is accepted.
// Tables of the arp, bridge and netdev families, the inet ingress hook, and
// dormant tables are ignored. nat chains see only the first packet of a
// connection; a dnat, redirect, snat or masquerade statement ends its chain
// like accept (the rewrite itself is not modelled, Verdict.Rewrite names it).
//
// The packet is the first packet of a new connection unless Packet.State says
// otherwise: ct state is new, a TCP packet carries only SYN, ct status holds
// dnat exactly when Packet.DNAT is set (and only after the dstnat priority),
// fib daddr type is local on the input path and unicast on the forward path,
// reverse-path (rpfilter) checks pass, and meta pkttype is host.
//
// Rate and count limits are judged for one fresh connection from a quiet
// source: limit, hashlimit-upto and "ct count N" match, while their "over"
// forms (limit rate over, ct count over, hashlimit-above, recent --hitcount,
// connlimit-above) do not. quota compares its used counter with its limit.
// Set elements are taken as listed, timeouts notwithstanding; statements that
// add to sets, count, log or set marks have no effect on the verdict
// (notrack included: later ct state matches still see new).
//
// # Uncertainty
//
// Some matches cannot be decided from the ruleset and the packet: iptables
// extensions that nft shows only as "xt match NAME", marks, sockets, ipsets,
// or packet fields the caller left unset (a zero
// Saddr or IIf means "any"). Such a match is unknown, and the evaluator
// explores both outcomes. Mode picks the answer: Optimistic asks "could the
// packet be accepted?" (the audit's exposure question), Pessimistic asks "is
// it surely accepted?" (the lockout check). Verdict.Certain reports whether
// both questions have the same answer, and Verdict.Unsure names the rules
// that made the difference.
package ruleset
