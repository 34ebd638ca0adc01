package change

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestMergeAccountsKeepsOthersEntries(t *testing.T) {
	before := "root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/bash\n"
	after := before + "ops:x:1001:1001::/home/ops:/bin/bash\n"
	now := "root:x:0:0:root:/root:/bin/zsh\nbob:x:1000:1000::/home/bob:/bin/bash\nops:x:1001:1001::/home/ops:/bin/bash\nsvcapp:x:999:999::/nonexistent:/usr/sbin/nologin\n"
	got, notes := mergeAccounts("passwd", []byte(before), []byte(after), []byte(now))
	want := "root:x:0:0:root:/root:/bin/zsh\nbob:x:1000:1000::/home/bob:/bin/bash\nsvcapp:x:999:999::/nonexistent:/usr/sbin/nologin\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	text := fmt.Sprint(notes)
	for _, w := range []string{"svcapp added since", "root changed since"} {
		if !strings.Contains(text, w) {
			t.Errorf("notes %v lack %q", notes, w)
		}
	}
}

func TestMergeAccountsGroupMembers(t *testing.T) {
	before := "root:x:0:\nsudo:x:27:alice\n"
	after := "root:x:0:\nsudo:x:27:alice,ops\nops:x:1001:\n"
	// Someone added carol to sudo during the window.
	now := "root:x:0:\nsudo:x:27:alice,ops,carol\nops:x:1001:\n"
	got, notes := mergeAccounts("group", []byte(before), []byte(after), []byte(now))
	if want := "root:x:0:\nsudo:x:27:alice,carol\n"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, n := range notes {
		if n.Kind == "conflict" {
			t.Errorf("member lists merge as sets, yet: %v", n)
		}
	}
}

func TestMergeAccountsPasswordOfAddedUserReported(t *testing.T) {
	before := "root:*:19000:0:99999:7:::\nbob:*:19000:0:99999:7:::\n"
	after := before + "ops:!:19000:0:99999:7:::\n"
	now := "root:*:19000:0:99999:7:::\nbob:$6$new:19001:0:99999:7:::\nops:$6$set:19001:0:99999:7:::\n"
	got, notes := mergeAccounts("shadow", []byte(before), []byte(after), []byte(now))
	if want := "root:*:19000:0:99999:7:::\nbob:$6$new:19001:0:99999:7:::\n"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if !slices.ContainsFunc(notes, func(n Note) bool { return n.Kind == "dropped" && strings.Contains(n.Text, "ops") }) {
		t.Errorf("the password set for the user moat added is not reported: %v", notes)
	}
	if !slices.ContainsFunc(notes, func(n Note) bool { return n.Kind == "kept" && strings.Contains(n.Text, "bob") }) {
		t.Errorf("bob's new password is not listed as kept: %v", notes)
	}
}

func TestMergeAccountsConflict(t *testing.T) {
	before := "bob:x:1000:1000::/home/bob:/bin/bash\n"
	after := "bob:x:1000:1000::/home/bob:/bin/sh\n"
	now := "bob:x:1000:1000:Bob:/home/bob:/bin/zsh\n"
	got, notes := mergeAccounts("passwd", []byte(before), []byte(after), []byte(now))
	if want := "bob:x:1000:1000:Bob:/home/bob:/bin/zsh\n"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if !slices.ContainsFunc(notes, func(n Note) bool { return n.Kind == "conflict" && strings.Contains(n.Text, "field 7") }) {
		t.Errorf("no conflict on the shell: %v", notes)
	}
	// A field only moat changed reverts while theirs stays.
	now = "bob:x:1000:1000:Bob:/home/bob:/bin/sh\n"
	got, _ = mergeAccounts("passwd", []byte(before), []byte(after), []byte(now))
	if want := "bob:x:1000:1000:Bob:/home/bob:/bin/bash\n"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestMergeText(t *testing.T) {
	before := "a=1\nb=2\nc=3\nd=4\ne=5\n"
	moat := "a=1\nb=moat\nc=3\nd=4\ne=5\n"
	for _, c := range []struct {
		now, want string
		ok        bool
	}{
		{moat, before, true},
		{"a=1\nb=moat\nc=3\nd=4\ne=mine\n", "a=1\nb=2\nc=3\nd=4\ne=mine\n", true},
		{"a=1\nb=moat\nc=3\nd=4\ne=5\nf=6\n", "a=1\nb=2\nc=3\nd=4\ne=5\nf=6\n", true},
		{"a=1\nb=theirs\nc=3\nd=4\ne=5\n", "", false},
		{"a=1\nc=3\nd=4\ne=5\n", "", false},
		{"a=1\nb=moat\nc=3\nd=4\n", "a=1\nb=2\nc=3\nd=4\n", true},
		// Right after moat's line, or right before it.
		{"a=1\nb=moat\nmine\nc=3\nd=4\ne=5\n", "a=1\nb=2\nmine\nc=3\nd=4\ne=5\n", true},
		{"a=1\nmine\nb=moat\nc=3\nd=4\ne=5\n", "a=1\nmine\nb=2\nc=3\nd=4\ne=5\n", true},
	} {
		got, ok := mergeText([]byte(moat), []byte(before), []byte(c.now))
		if ok != c.ok || (ok && string(got) != c.want) {
			t.Errorf("now %q: got %q %v, want %q %v", c.now, got, ok, c.want, c.ok)
		}
	}
}

// FuzzMergeText: reverting an edit nobody touched since gives the file
// before, an edit moat never made leaves the file as it is now, and no
// input panics.
func FuzzMergeText(f *testing.F) {
	f.Add("a\nb\nc\n", "a\nB\nc\n", "a\nB\nc\nd\n")
	f.Add("", "x", "y")
	f.Fuzz(func(t *testing.T, before, moat, now string) {
		if got, ok := mergeText([]byte(moat), []byte(before), []byte(moat)); !ok || string(got) != before {
			t.Fatalf("unchanged since: got %q %v, want %q", got, ok, before)
		}
		if got, ok := mergeText([]byte(before), []byte(before), []byte(now)); !ok || string(got) != now {
			t.Fatalf("moat changed nothing: got %q %v, want %q", got, ok, now)
		}
		mergeText([]byte(moat), []byte(before), []byte(now))
	})
}

// TestMergeTextAppends: moat appended a line (the swap line in fstab),
// someone appended another after it; the revert removes moat's only.
func TestMergeTextAppends(t *testing.T) {
	got, ok := mergeText([]byte("root\nswap\n"), []byte("root\n"), []byte("root\nswap\ndata\n"))
	if !ok || string(got) != "root\ndata\n" {
		t.Fatalf("%q %v", got, ok)
	}
}

func TestOthersLines(t *testing.T) {
	got, ok := othersLines([]byte("# moat\nPort 2222\nPasswordAuthentication no\n"), []byte("# moat\nPort 2222\nPasswordAuthentication yes\nX11Forwarding no\n"))
	if !ok || string(got) != "PasswordAuthentication yes\nX11Forwarding no\n" {
		t.Fatalf("%q %v", got, ok)
	}
}

// BenchmarkMergeAccounts: a 10,000-user passwd, moat's one user added,
// one other user added since.
func BenchmarkMergeAccounts(b *testing.B) {
	var before strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&before, "user%d:x:%d:%d::/home/user%d:/bin/bash\n", i, 1000+i, 1000+i, i)
	}
	after := before.String() + "ops:x:99999:99999::/home/ops:/bin/bash\n"
	now := after + "svcapp:x:999:999::/nonexistent:/usr/sbin/nologin\n"
	b.ReportAllocs()
	for b.Loop() {
		mergeAccounts("passwd", []byte(before.String()), []byte(after), []byte(now))
	}
}

// BenchmarkMergeText: a 2,000-line file, a line changed by moat and one
// by someone else.
func BenchmarkMergeText(b *testing.B) {
	var lines []string
	for i := range 2000 {
		lines = append(lines, fmt.Sprintf("option%d = %d", i, i))
	}
	before := strings.Join(lines, "\n") + "\n"
	lines[100] = "option100 = moat"
	moat := strings.Join(lines, "\n") + "\n"
	lines[1900] = "option1900 = theirs"
	now := strings.Join(lines, "\n") + "\n"
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := mergeText([]byte(moat), []byte(before), []byte(now)); !ok {
			b.Fatal("conflict")
		}
	}
}
