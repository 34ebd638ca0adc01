package sshd

import (
	"strings"
	"testing"
)

func TestContextSpec(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Context
		want string
		err  string
	}{
		{name: "zero", c: Context{}, want: ""},
		{name: "full", c: Context{User: "root", Host: "vps.example.org", Addr: "203.0.113.7", LAddr: "10.0.0.2", LPort: 22},
			want: "user=root,host=vps.example.org,addr=203.0.113.7,laddr=10.0.0.2,lport=22"},
		{name: "host defaults to addr", c: Context{User: "alice", Addr: "10.1.2.3"}, want: "user=alice,host=10.1.2.3,addr=10.1.2.3"},
		{name: "ipv6 canonical", c: Context{Addr: "2001:DB8:0::1"}, want: "host=2001:db8::1,addr=2001:db8::1"},
		{name: "v4-mapped unmapped", c: Context{Addr: "::ffff:192.0.2.1"}, want: "host=192.0.2.1,addr=192.0.2.1"},
		{name: "user only", c: Context{User: "deploy-bot_1.x"}, want: "user=deploy-bot_1.x"},
		{name: "comma in user", c: Context{User: "alice,addr=10.0.0.1"}, err: "user name"},
		{name: "space in user", c: Context{User: "a b"}, err: "user name"},
		{name: "newline in user", c: Context{User: "a\nb"}, err: "user name"},
		{name: "comma in host", c: Context{Host: "a,user=root"}, err: "host"},
		{name: "space in host", c: Context{Host: "a b"}, err: "host"},
		{name: "bad addr", c: Context{Addr: "10.0.0.1,user=root"}, err: "not an IP"},
		{name: "cidr addr", c: Context{Addr: "10.0.0.0/8"}, err: "not an IP"},
		{name: "zone", c: Context{Addr: "fe80::1%eth0"}, err: "zones"},
		{name: "bad laddr", c: Context{LAddr: "localhost"}, err: "laddr"},
		{name: "lport range", c: Context{LPort: 65536}, err: "lport"},
		{name: "lport negative", c: Context{LPort: -1}, err: "lport"},
		{name: "long user", c: Context{User: strings.Repeat("a", 257)}, err: "longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.c.Spec()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Spec() = %q, %v; want error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Spec() = %q, %v; want %q", got, err, tc.want)
			}
			// No field can add another: sshd splits on commas.
			if n := strings.Count(got, ","); got != "" && n != strings.Count(got, "=")-1 {
				t.Fatalf("spec %q has stray separators", got)
			}
		})
	}
}

func TestContextString(t *testing.T) {
	if s := (Context{}).String(); s != "<no context>" {
		t.Errorf("zero: %q", s)
	}
	if s := (Context{User: "a,b"}).String(); !strings.HasPrefix(s, "<sshd context") {
		t.Errorf("invalid: %q", s)
	}
}
