package sshd

import (
	"strings"
	"testing"
)

func TestUserAllowed(t *testing.T) {
	eff := func(lines ...string) Effective {
		e, err := ParseT(strings.NewReader(strings.Join(lines, "\n")))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	for _, tc := range []struct {
		e      Effective
		user   string
		groups []string
		addr   string
		want   bool
	}{
		{eff("port 22"), "alice", nil, "10.0.0.1", true},
		{eff("allowusers bob"), "alice", []string{"alice"}, "10.0.0.1", false},
		{eff("allowusers bob", "allowusers a*"), "alice", nil, "10.0.0.1", true},
		{eff("allowusers alice@10.0.0.0/8"), "alice", nil, "10.0.0.1", true},
		{eff("allowusers alice@10.0.0.0/8"), "alice", nil, "192.0.2.1", false},
		{eff("allowusers alice@!10.0.0.2,10.0.0.0/8"), "alice", nil, "10.0.0.2", false},
		{eff("allowusers alice@10.0.0.*"), "alice", nil, "10.0.0.9", true},
		{eff("allowusers alice@10.0.0.1/8"), "alice", nil, "10.0.0.1", false}, // host bits set: sshd treats it as an error
		{eff("denyusers alice"), "alice", nil, "10.0.0.1", false},
		{eff("denyusers *@10.0.0.0/24"), "alice", nil, "10.0.0.1", false},
		{eff("denyusers *@10.0.0.0/24"), "alice", nil, "10.0.1.1", true},
		{eff("allowgroups ops"), "alice", []string{"alice", "ops"}, "10.0.0.1", true},
		{eff("allowgroups ops"), "bob", []string{"bob"}, "10.0.0.1", false},
		{eff("allowgroups o*"), "alice", []string{"ops"}, "10.0.0.1", true},
		{eff("denygroups interns", "allowgroups ops"), "carol", []string{"ops", "interns"}, "10.0.0.1", false},
		{eff("denygroups nosuch"), "mallory", nil, "10.0.0.1", false}, // in no group
	} {
		if got, why := tc.e.UserAllowed(tc.user, tc.groups, tc.addr); got != tc.want {
			t.Errorf("%v UserAllowed(%s, %v, %s) = %v (%s), want %v", tc.e.vals, tc.user, tc.groups, tc.addr, got, why, tc.want)
		}
	}
}
