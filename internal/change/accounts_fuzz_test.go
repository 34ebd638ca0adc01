package change

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// acctGen builds the three versions of a small account database from fuzz
// bytes: before, moat's edit of it (adds, changes, removes), and everyone
// else's edit of moat's version.
type acctGen struct {
	data []byte
	i    int
}

func (g *acctGen) next(n int) int {
	if g.i >= len(g.data) {
		return 0
	}
	v := int(g.data[g.i]) % n
	g.i++
	return v
}

var fieldVals = []string{"x", "y", "z", "", "1000", "a,b", "b,c"}

func (g *acctGen) line(name string) []string {
	f := []string{name}
	for range 3 {
		f = append(f, fieldVals[g.next(len(fieldVals))])
	}
	return f
}

// edit changes some entries of m (adds, modifies a field, removes).
func (g *acctGen) edit(m map[string][]string, order *[]string, names []string) {
	for _, n := range names {
		switch g.next(5) {
		case 0: // leave
		case 1: // add or replace whole
			if _, ok := m[n]; !ok {
				*order = append(*order, n)
			}
			m[n] = g.line(n)
		case 2: // change one field
			if f, ok := m[n]; ok {
				c := slices.Clone(f)
				c[1+g.next(3)] = fieldVals[g.next(len(fieldVals))]
				m[n] = c
			}
		case 3: // remove
			if _, ok := m[n]; ok {
				delete(m, n)
				*order = slices.DeleteFunc(*order, func(x string) bool { return x == n })
			}
		}
	}
}

func render(m map[string][]string, order []string) []byte {
	var b strings.Builder
	for _, n := range order {
		if f, ok := m[n]; ok {
			b.WriteString(strings.Join(f, ":") + "\n")
		}
	}
	return []byte(b.String())
}

func clone(m map[string][]string) map[string][]string {
	c := map[string][]string{}
	for k, v := range m {
		c[k] = slices.Clone(v)
	}
	return c
}

func parseModel(data []byte) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if l == "" {
			continue
		}
		name, _, _ := strings.Cut(l, ":")
		m[name] = l
	}
	return m
}

// FuzzMergeAccounts checks the account-database merge against a model:
// entries moat did not touch come out byte for byte as they are now;
// moat's additions are gone; moat's changes revert, field by field where
// someone changed the entry again, with a conflict reported exactly when
// both changed the same field (group's member list merges as a set:
// now, minus moat's additions, plus moat's removals); moat's removals
// come back. passwd, shadow, subuid and group lines.
func FuzzMergeAccounts(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, "passwd")
	f.Add([]byte{0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 1, 2, 3, 1, 2, 3, 0, 0, 2, 1, 1, 2, 2}, "shadow")
	f.Add([]byte("moat rolls back its own edits only, and keeps yours"), "passwd")
	f.Add([]byte{1, 5, 6, 5, 5, 1, 6, 5, 6, 2, 2, 3, 5, 2, 2, 3, 6, 2, 2, 3, 5, 1, 1, 5, 6}, "group")
	f.Fuzz(func(t *testing.T, data []byte, db string) {
		if db != "passwd" && db != "shadow" && db != "subuid" && db != "group" {
			db = "passwd"
		}
		g := &acctGen{data: data}
		names := []string{"root", "bob", "ops", "svc", "eve", "amy"}
		before := map[string][]string{}
		var order []string
		for _, n := range names {
			if g.next(2) == 0 {
				before[n] = g.line(n)
				order = append(order, n)
			}
		}
		after, aorder := clone(before), slices.Clone(order)
		g.edit(after, &aorder, names)
		now, norder := clone(after), slices.Clone(aorder)
		g.edit(now, &norder, names)
		B, A, N := render(before, order), render(after, aorder), render(now, norder)
		got, notes := mergeAccounts(db, B, A, N)
		res := parseModel(got)
		b, a, n := parseModel(B), parseModel(A), parseModel(N)
		conflicted := map[string]bool{}
		for _, nt := range notes {
			if nt.Kind == "conflict" {
				conflicted[strings.TrimSuffix(strings.Fields(nt.Text)[1], ":")] = true
			}
		}
		for _, k := range names {
			bl, inB := b[k]
			al, inA := a[k]
			nl, inN := n[k]
			rl, inR := res[k]
			var want string
			wantIn, wantConflict := false, false
			switch {
			case inA == inB && al == bl: // not moat's
				want, wantIn = nl, inN
			case !inB: // moat added
			case !inA: // moat removed
				want, wantIn = bl, true
				if inN {
					want, wantConflict = nl, true
				}
			case !inN:
			case nl == al || nl == bl:
				want, wantIn = bl, true
			default:
				bf, af, nf := strings.Split(bl, ":"), strings.Split(al, ":"), strings.Split(nl, ":")
				out := slices.Clone(nf)
				for i := range nf {
					switch {
					case af[i] == bf[i] || nf[i] == bf[i]:
					case nf[i] == af[i]:
						out[i] = bf[i]
					case db == "group" && i == 3:
						// Members as sets: now, minus moat's additions,
						// plus moat's removals (compared as sets below).
						out[i] = setExpr(nf[i], af[i], bf[i])
					default:
						wantConflict = true
					}
				}
				want, wantIn = strings.Join(out, ":"), true
			}
			if db == "group" && inR && wantIn {
				rl, want = canonMembers(rl), canonMembers(want)
			}
			if inR != wantIn || rl != want {
				t.Fatalf("%s: got %q (present %v), want %q (present %v)\nbefore:\n%s\nmoat's:\n%s\nnow:\n%s\nresult:\n%s", k, rl, inR, want, wantIn, B, A, N, got)
			}
			if conflicted[k] != wantConflict {
				t.Fatalf("%s: conflict reported %v, want %v (notes %v)\nbefore:\n%s\nmoat's:\n%s\nnow:\n%s", k, conflicted[k], wantConflict, notes, B, A, N)
			}
		}
		// Entries present now keep their order.
		var gotOrder []string
		for _, l := range strings.Split(strings.TrimSuffix(string(got), "\n"), "\n") {
			if name, _, ok := strings.Cut(l, ":"); ok {
				gotOrder = append(gotOrder, name)
			}
		}
		kept := slices.DeleteFunc(slices.Clone(norder), func(x string) bool { return !slices.Contains(gotOrder, x) })
		sub := slices.DeleteFunc(slices.Clone(gotOrder), func(x string) bool { return !slices.Contains(kept, x) })
		if !slices.Equal(kept, sub) {
			t.Fatalf("order changed: now %v, result %v", norder, gotOrder)
		}
		// A retry of the rollback changes nothing more.
		again, _ := mergeAccounts(db, B, A, got)
		if string(again) != string(got) {
			t.Fatalf("not idempotent:\n%s\nthen\n%s", got, again)
		}
	})
}

// FuzzMergeAccountsRaw feeds arbitrary text as the three versions, in
// every database's format: no panic, moat's untouched lines stay, and a
// second merge changes nothing.
func FuzzMergeAccountsRaw(f *testing.F) {
	f.Add("root:x:0:\nsudo:x:27:alice\n", "root:x:0:\nsudo:x:27:alice,ops\nops:x:1001:\n", "root:x:0:\nsudo:x:27:alice,ops,carol\nops:x:1001:\nsvc:x:999:\n", uint8(2))
	f.Add("a\n\n#c\nb:1", "a\nb:2\n", "#c\nb:2\nb:3\n", uint8(0))
	f.Fuzz(func(t *testing.T, b, a, n string, which uint8) {
		dbs := []string{"passwd", "shadow", "group", "gshadow", "subuid", "subgid"}
		db := dbs[int(which)%len(dbs)]
		got, _ := mergeAccounts(db, []byte(b), []byte(a), []byte(n))
		again, _ := mergeAccounts(db, []byte(b), []byte(a), got)
		// A name given twice (a broken database) is matched by occurrence,
		// which a merge that removes one renumbers: idempotence holds for
		// databases without repeats.
		if !repeats(b) && !repeats(a) && !repeats(n) && string(again) != string(got) {
			t.Fatalf("not idempotent:\n%q\nthen\n%q", got, again)
		}
		if a == b && string(got) != n && !(n != "" && !strings.HasSuffix(n, "\n") && string(got) == n+"\n") {
			t.Fatalf("moat changed nothing, yet the file changed: %q -> %q", n, got)
		}
	})
}

func TestFuzzSeedsRun(t *testing.T) {
	// The model's own sanity: a change moat did not make is never undone.
	got, _ := mergeAccounts("passwd", []byte("a:1\n"), []byte("a:1\n"), []byte("a:2\nb:3\n"))
	if string(got) != "a:2\nb:3\n" {
		t.Fatalf("%q", got)
	}
}

func repeats(data string) bool {
	l, _ := parseAccounts([]byte(data))
	for _, x := range l {
		if !strings.HasSuffix(x.key, "\x000") {
			return true
		}
	}
	return false
}

func members(s string) map[string]bool {
	m := map[string]bool{}
	for _, x := range strings.Split(s, ",") {
		if x != "" {
			m[x] = true
		}
	}
	return m
}

// setExpr is now - (moat - before) + (before - moat), as a sorted list.
func setExpr(now, moat, before string) string {
	n, a, b := members(now), members(moat), members(before)
	for x := range a {
		if !b[x] {
			delete(n, x)
		}
	}
	for x := range b {
		if !a[x] {
			n[x] = true
		}
	}
	out := slices.Sorted(maps.Keys(n))
	return strings.Join(out, ",")
}

// canonMembers sorts a group line's member list, for comparing as sets.
func canonMembers(line string) string {
	f := strings.Split(line, ":")
	if len(f) > 3 {
		f[3] = strings.Join(slices.Sorted(maps.Keys(members(f[3]))), ",")
	}
	return strings.Join(f, ":")
}
