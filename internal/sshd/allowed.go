package sshd

import (
	"net/netip"
	"strings"
)

// UserAllowed applies sshd's account rules (auth.c allowed_user) from the
// effective configuration of one connection: DenyUsers, AllowUsers,
// DenyGroups, AllowGroups, in that order. groups are the user's group
// names (primary and supplementary; nil for a user in no group) and addr
// the client's address, which USER@HOST patterns test (UseDNS no: the host
// name is the address). why names the rule that refuses.
func (e Effective) UserAllowed(user string, groups []string, addr string) (ok bool, why string) {
	for _, p := range e.words("denyusers") {
		if matchUser(user, addr, p) != 0 {
			return false, "DenyUsers " + p + " matches " + user
		}
	}
	if allow := e.words("allowusers"); len(allow) > 0 {
		found := false
		for _, p := range allow {
			if matchUser(user, addr, p) == 1 {
				found = true
				break
			}
		}
		if !found {
			return false, "AllowUsers " + strings.Join(allow, " ") + " does not include " + user
		}
	}
	deny, allow := e.words("denygroups"), e.words("allowgroups")
	if len(deny)+len(allow) > 0 {
		if len(groups) == 0 {
			return false, user + " is in no group, and DenyGroups/AllowGroups are set"
		}
		if g := groupMatch(groups, deny); g != "" {
			return false, "DenyGroups matches " + user + "'s group " + g
		}
		if len(allow) > 0 && groupMatch(groups, allow) == "" {
			return false, "AllowGroups " + strings.Join(allow, " ") + " does not include a group of " + user
		}
	}
	return true, ""
}

// words splits every value of key on blanks: sshd -T prints one pattern a
// line, a config may hold several.
func (e Effective) words(key string) []string {
	var out []string
	for _, v := range e.All(key) {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

// groupMatch is sshd's ga_match: the first of groups that one of the
// patterns (single patterns, no lists or negation) matches.
func groupMatch(groups, patterns []string) string {
	for _, g := range groups {
		for _, p := range patterns {
			if MatchPattern(g, p) {
				return g
			}
		}
	}
	return ""
}

// matchUser is OpenSSH's match_user for a connection from addr (host name
// = addr): "USER" or "USER@HOST", the host part a list of addresses,
// CIDR blocks and wildcards, '!' negating.
func matchUser(user, addr, pattern string) int {
	i := strings.LastIndexByte(pattern, '@')
	if i < 0 {
		if MatchPattern(user, pattern) {
			return 1
		}
		return 0
	}
	if !MatchPattern(user, pattern[:i]) {
		return 0
	}
	hosts := pattern[i+1:]
	mip := addrMatchList(addr, hosts)
	switch {
	case mip == -2:
		return -1
	case mip == -1:
		return 0
	}
	mhost := MatchPatternList(strings.ToLower(addr), strings.ToLower(hosts))
	if mhost == -1 || (mhost == 0 && mip == 0) {
		return 0
	}
	return 1
}

// addrMatchList is OpenSSH's addr_match_list: 1 if addr matches an entry
// (an address pattern with wildcards, or a CIDR block), -1 if it matches a
// negated one, 0 if none, -2 for a malformed CIDR entry.
func addrMatchList(addr, list string) int {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return 0
	}
	a = a.Unmap()
	ret := 0
	for entry := range strings.SplitSeq(list, ",") {
		neg := strings.HasPrefix(entry, "!")
		if neg {
			entry = entry[1:]
		}
		if entry == "" {
			return -2
		}
		var m bool
		if strings.Contains(entry, "/") {
			p, err := netip.ParsePrefix(entry)
			if err != nil || p.Masked() != p {
				return -2 // sshd rejects a CIDR with host bits set too
			}
			m = p.Contains(a)
		} else {
			m = MatchPattern(a.String(), entry)
		}
		if m {
			if neg {
				return -1
			}
			ret = 1
		}
	}
	return ret
}
