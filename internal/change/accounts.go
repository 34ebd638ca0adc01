package change

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The account databases are shared with everyone who runs useradd,
// passwd or groupadd while a change waits for confirm, so a rollback
// never restores them whole: it reverts, entry by entry, what moat's own
// step changed (the difference between the file before and after the
// step), against the file as it is now. See "Rollback merge" in
// docs/design.md.

// accountDBs are merged by entry.
var accountDBs = map[string]bool{
	"passwd": true, "shadow": true, "group": true, "gshadow": true, "subuid": true, "subgid": true,
}

// accountDB returns the database p is ("passwd", "group"...), or "".
func accountDB(p string) string {
	if path.Dir(p) != "/etc" || !accountDBs[path.Base(p)] {
		return ""
	}
	return path.Base(p)
}

// accountBackup reports whether p is the backup the shadow tools keep of
// an account database (/etc/passwd-): rewritten by every useradd or
// passwd, so once someone ran one it is theirs, not moat's.
func accountBackup(p string) bool {
	return path.Dir(p) == "/etc" && strings.HasSuffix(p, "-") && accountDBs[strings.TrimSuffix(path.Base(p), "-")]
}

// listFields are the comma-separated member lists of a database's lines,
// merged as sets: group's members, gshadow's administrators and members.
func listFields(db string) []int {
	switch db {
	case "group":
		return []int{3}
	case "gshadow":
		return []int{2, 3}
	}
	return nil
}

// Note is one thing a merge kept, dropped or could not reconcile, for the
// rollback's report.
type Note struct {
	// Kind is "reverted" (moat's edit, undone), "kept" (someone else's
	// edit, left in place), "dropped"
	// (someone else's edit to an entry moat added, gone with it) or
	// "conflict" (both changed the same field: theirs kept).
	Kind string `json:"kind"`
	Text string `json:"text"`
}

type acctLine struct {
	key  string
	line string
}

// parseAccounts splits a database into lines keyed by entry name (the
// first field), with an occurrence count for repeated names; other lines
// (comments, blanks, junk) are keyed by their text.
func parseAccounts(data []byte) ([]acctLine, bool) {
	s := string(data)
	nl := strings.HasSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\n")
	if s == "" && !nl {
		return nil, false
	}
	seen := map[string]int{}
	var out []acctLine
	for _, l := range strings.Split(s, "\n") {
		base := "\x01" + l
		if i := strings.IndexByte(l, ':'); i > 0 {
			base = l[:i]
		}
		k := fmt.Sprintf("%s\x00%d", base, seen[base])
		seen[base]++
		out = append(out, acctLine{key: k, line: l})
	}
	return out, nl
}

func keyName(k string) string {
	name, _, _ := strings.Cut(k, "\x00")
	return strings.TrimPrefix(name, "\x01")
}

// mergeAccounts reverts moat's edits (before → after) in now, the
// database db as it is now. Per entry:
//   - one moat did not change stays as it is now, byte for byte;
//   - one moat added goes (should someone have changed it since, that
//     change goes with it and is reported "dropped");
//   - one moat changed goes back to before if it still holds moat's
//     version; if changed again, field by field: fields moat changed and
//     nobody else did revert, others' stay, member lists merge as sets,
//     and a field both changed keeps theirs and is a "conflict";
//   - one moat removed comes back, unless someone added it again.
//
// Lines keep the order they have now; entries put back go after the
// entry that preceded them before.
func mergeAccounts(db string, before, after, now []byte) ([]byte, []Note) {
	bl, _ := parseAccounts(before)
	al, _ := parseAccounts(after)
	nl, nlEnd := parseAccounts(now)
	bm, am, nm := lineMap(bl), lineMap(al), lineMap(nl)
	var notes []Note
	note := func(kind, format string, args ...any) {
		notes = append(notes, Note{Kind: kind, Text: fmt.Sprintf(format, args...)})
	}
	what := "entry"
	switch db {
	case "passwd", "shadow", "subuid", "subgid":
		what = "user"
	case "group", "gshadow":
		what = "group"
	}
	var out []acctLine
	for _, l := range nl {
		b, inB := bm[l.key]
		a, inA := am[l.key]
		name := keyName(l.key)
		switch {
		case inA == inB && a == b:
			// Not moat's: stays as it is.
			if !inB {
				note("kept", "%s %s added since", what, name)
			} else if l.line != b {
				if (db == "shadow" || db == "gshadow") && field(l.line, 1) != field(b, 1) {
					note("kept", "%s %s: password set since, kept", what, name)
				} else {
					note("kept", "%s %s changed since", what, name)
				}
			}
			out = append(out, l)
		case !inB:
			// moat added it.
			note("reverted", "%s %s: added by moat, removed", what, name)
			if !inA || l.line != a {
				if db == "shadow" || db == "gshadow" {
					note("dropped", "%s %s: the password set during the window goes with the %s moat added", what, name, what)
				} else {
					note("dropped", "%s %s: changed during the window, but moat added it: removed", what, name)
				}
			}
		case !inA:
			// moat removed it; someone added it again.
			note("conflict", "%s %s: moat removed it and someone added it again: theirs kept", what, name)
			out = append(out, l)
		case l.line == a:
			note("reverted", "%s %s: moat's change undone", what, name)
			out = append(out, acctLine{key: l.key, line: b})
		case l.line == b:
			out = append(out, l)
		default:
			merged, conflicts := mergeFields(db, b, a, l.line)
			for _, f := range conflicts {
				note("conflict", "%s %s: field %d changed by moat and since: theirs kept", what, name, f+1)
			}
			if len(conflicts) == 0 {
				note("kept", "%s %s changed since: their change kept, moat's reverted", what, name)
			}
			out = append(out, acctLine{key: l.key, line: merged})
		}
	}
	// Entries moat changed or removed that are gone now.
	present := lineMap(out)
	for i, l := range bl {
		if _, ok := present[l.key]; ok {
			continue
		}
		a, inA := am[l.key]
		name := keyName(l.key)
		_, inN := nm[l.key]
		switch {
		case inN:
			continue // dropped above on purpose
		case inA && a == l.line:
			note("kept", "%s %s removed since", what, name)
			continue
		case inA:
			note("kept", "%s %s: changed by moat, then removed since: left removed", what, name)
			continue
		}
		// moat removed it: put it back after its predecessor.
		note("reverted", "%s %s: removed by moat, put back", what, name)
		at := 0
		for j := i - 1; j >= 0; j-- {
			if k := slices.IndexFunc(out, func(x acctLine) bool { return x.key == bl[j].key }); k >= 0 {
				at = k + 1
				break
			}
		}
		out = slices.Insert(out, at, l)
		present[l.key] = l.line
	}
	var buf bytes.Buffer
	for _, l := range out {
		buf.WriteString(l.line)
		buf.WriteByte('\n')
	}
	res := buf.Bytes()
	if len(nl) > 0 && !nlEnd && len(res) > 0 && len(out) > 0 && out[len(out)-1].key == nl[len(nl)-1].key {
		// Keep a missing final newline as it was.
		res = res[:len(res)-1]
	}
	return res, notes
}

// field returns the i-th colon-separated field of line, or "".
func field(line string, i int) string {
	f := strings.Split(line, ":")
	if i < len(f) {
		return f[i]
	}
	return ""
}

func lineMap(ls []acctLine) map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.key] = l.line
	}
	return m
}

// mergeFields merges one entry's fields three ways (before, moat's
// after, now), returning the conflicting field indexes. Lines of a
// different field count cannot be lined up: theirs is kept, as a
// conflict on field 0.
func mergeFields(db, b, a, n string) (string, []int) {
	bf, af, nf := strings.Split(b, ":"), strings.Split(a, ":"), strings.Split(n, ":")
	if len(bf) != len(af) || len(af) != len(nf) {
		return n, []int{0}
	}
	lists := listFields(db)
	var conflicts []int
	out := make([]string, len(nf))
	for i := range nf {
		switch {
		case af[i] == bf[i] || nf[i] == bf[i]:
			out[i] = nf[i]
		case nf[i] == af[i]:
			out[i] = bf[i]
		case slices.Contains(lists, i):
			out[i] = mergeList(bf[i], af[i], nf[i])
		default:
			out[i] = nf[i]
			conflicts = append(conflicts, i)
		}
	}
	return strings.Join(out, ":"), conflicts
}

// mergeList merges a comma-separated member list as a set: members moat
// added go, members moat removed come back, everyone else's stay, in the
// order they have now.
func mergeList(b, a, n string) string {
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	bs, as, ns := split(b), split(a), split(n)
	var out []string
	for _, m := range ns {
		if slices.Contains(as, m) && !slices.Contains(bs, m) {
			continue // moat added it
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	for _, m := range bs {
		if !slices.Contains(as, m) && !slices.Contains(out, m) {
			out = append(out, m) // moat removed it
		}
	}
	return strings.Join(out, ",")
}

// pwdLock is the lock file lckpwdf(3) takes: useradd, usermod, passwd and
// groupadd hold it while they rewrite the account databases.
const pwdLock = "/etc/.pwd.lock"

// lockAccounts takes lckpwdf's lock (an fcntl write lock on
// /etc/.pwd.lock, waiting up to 15 s as lckpwdf does), so that no
// useradd or passwd rewrites an account database between the merge's
// read and its rename. Best effort: a read-only /etc, where nothing can
// be written anyway, runs without it.
func lockAccounts(root string) (unlock func(), err error) {
	d, base, err := openParent(root, pwdLock, false)
	if err != nil {
		return func() {}, err
	}
	// A lock file that was not there is removed again: the rollback
	// leaves no trace of its own.
	created := false
	fd, err := unix.Openat(d.fd, base, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		fd, err = unix.Openat(d.fd, base, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		created = err == nil
	}
	if err != nil {
		d.Close()
		return func() {}, err
	}
	release := func() {
		if created {
			unix.Unlinkat(d.fd, base, 0)
		}
		unix.Close(fd)
		d.Close()
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err = unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk)
		if err == nil {
			return release, nil
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) || time.Now().After(deadline) {
			release()
			return func() {}, fmt.Errorf("lock %s: %w", pwdLock, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
