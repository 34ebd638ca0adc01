package host

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUsers(t *testing.T) {
	users, err := New(fixtureRoot).Users()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range users {
		var keys []string
		for _, kf := range u.AuthorizedKeys {
			keys = append(keys, fmt.Sprintf("%s:%d", filepath.Base(kf.Path), len(kf.Keys)))
		}
		got = append(got, fmt.Sprintf("%s %d/%d %s login=%v pw=%s/%s keys=%v",
			u.Name, u.UID, u.GID, u.Shell, u.LoginShell, u.Password.Kind, u.Password.Scheme, keys))
	}
	want := []string{
		"root 0/0 /bin/bash login=true pw=hash/yescrypt keys=[authorized_keys:1]",
		"daemon 1/1 /usr/sbin/nologin login=false pw=none/ keys=[]",
		"sync 4/65534 /bin/sync login=false pw=none/ keys=[]",
		"alice 1000/1000 /bin/bash login=true pw=hash/sha512 keys=[authorized_keys:2]",
		"bob 1001/1001 /bin/zsh login=false pw=locked/sha256 keys=[authorized_keys2:1]", // zsh neither listed nor installed
		"carol 1002/1002 /usr/local/bin/fish login=true pw=empty/ keys=[]",              // unlisted but installed
		"svc 999/999 /usr/sbin/nologin login=false pw=none/ keys=[]",
		"old 1003/1003  login=true pw=hash/md5 keys=[]", // hash in passwd, empty shell = /bin/sh
		"ghost 1004/1004 /bin/false login=false pw=none/ keys=[]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestUsersKeyFileModes(t *testing.T) {
	dir := tempFixture(t)
	p := filepath.Join(dir, "home/alice/.ssh/authorized_keys")
	if err := os.Chmod(p, 0o664); err != nil {
		t.Fatal(err)
	}
	users, err := New(dir).Users()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Name != "alice" {
			continue
		}
		kf := u.AuthorizedKeys[0]
		if kf.Path != "/home/alice/.ssh/authorized_keys" || kf.Mode.Perm() != 0o664 || kf.Owner != os.Geteuid() {
			t.Errorf("key file = %+v", kf)
		}
		return
	}
	t.Fatal("alice not found")
}

func TestUsersNoShells(t *testing.T) {
	dir := tempFixture(t)
	if err := os.Remove(filepath.Join(dir, "etc/shells")); err != nil {
		t.Fatal(err)
	}
	users, err := New(dir).Users()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		// /bin/bash does not exist in the fixture and no list vouches for it.
		if u.Name == "root" && u.LoginShell {
			t.Error("root: login shell without /etc/shells and without /bin/bash")
		}
		if u.Name == "carol" && !u.LoginShell {
			t.Error("carol: installed shell not counted")
		}
	}
}

func TestParsePassword(t *testing.T) {
	for in, want := range map[string]PasswordState{
		"":                              {Kind: PasswordEmpty},
		"*":                             {Kind: PasswordNone},
		"!":                             {Kind: PasswordNone},
		"!!":                            {Kind: PasswordNone},
		"!*":                            {Kind: PasswordNone},
		"*LK*":                          {Kind: PasswordNone},
		"x":                             {Kind: PasswordNone},
		"$y$j9T$salt$hash":              {Kind: PasswordHash, Scheme: "yescrypt"},
		"$gy$j9T$salt$hash":             {Kind: PasswordHash, Scheme: "gost-yescrypt"},
		"$6$salt$hash":                  {Kind: PasswordHash, Scheme: "sha512"},
		"$5$salt$hash":                  {Kind: PasswordHash, Scheme: "sha256"},
		"$1$salt$hash":                  {Kind: PasswordHash, Scheme: "md5"},
		"$2b$10$abcdefghijklmnopqrstuv": {Kind: PasswordHash, Scheme: "bcrypt"},
		"$9$what$ever":                  {Kind: PasswordHash, Scheme: "unknown"},
		"$nodollar":                     {Kind: PasswordNone},
		"abJnggxhB/yWI":                 {Kind: PasswordHash, Scheme: "des"},
		"_J9..CCCCXBrJUJV154M":          {Kind: PasswordHash, Scheme: "bsdi"},
		"!$6$salt$hash":                 {Kind: PasswordLocked, Scheme: "sha512"},
		"!!abJnggxhB/yWI":               {Kind: PasswordLocked, Scheme: "des"},
	} {
		if got := ParsePassword(in); got != want {
			t.Errorf("ParsePassword(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func TestGroups(t *testing.T) {
	gs, err := New(fixtureRoot).Groups()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(gs["sudo"]); got != "{sudo 27 [alice bob]}" {
		t.Errorf("sudo = %s (the first entry wins, members trimmed)", got)
	}
	if got := fmt.Sprint(gs["root"]); got != "{root 0 []}" {
		t.Errorf("root = %s", got)
	}
	if _, ok := gs["bad"]; ok {
		t.Error("group with a bad GID kept")
	}
	if len(gs) != 4 {
		t.Errorf("%d groups: %v", len(gs), gs)
	}
}
