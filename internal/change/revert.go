package change

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// PathOutcome is what a rollback did to one path.
type PathOutcome struct {
	Path string `json:"path"`
	// Result is one of:
	//   restored   as it was before the change, byte for byte
	//   untouched  moat's step left it as it was: nothing to undo
	//   merged     moat's edits reverted, others' kept (see Notes)
	//   kept       left as it is now (see Notes; Aside holds the before)
	//   failed     not restored (see Error); the rollback is retried
	Result string `json:"result"`
	Notes  []Note `json:"notes,omitempty"`
	// Aside is where the version before the change was put when it could
	// not go back in place.
	Aside string `json:"aside,omitempty"`
	Error string `json:"error,omitempty"`
}

// Outcome results.
const (
	Restored  = "restored"
	Untouched = "untouched"
	Merged    = "merged"
	Kept      = "kept"
	Failed    = "failed"
)

// recordAfter records, for every path step st declared (and the parents
// its writes created), how the step left it: the "after" a rollback
// reverts. The caller holds the change's lock and saves m.
func (s *Store) recordAfter(m *Manifest, st *Step) error {
	want := map[string]bool{}
	for _, d := range st.paths() {
		for p := d.path; p != "/" && p != "."; p = path.Dir(p) {
			want[p] = true
		}
	}
	var errs []error
	for i := range m.Entries {
		e := &m.Entries[i]
		if !want[e.Path] {
			continue
		}
		sh, err := shoot(s.Root, *e, filepath.Join(s.changeDir(m.ID), afterSnap(i)))
		if err != nil {
			errs = append(errs, fmt.Errorf("record %s as applied: %w", e.Path, err))
			continue
		}
		if sh.Kind == "file" {
			sh.Snap = afterSnap(i)
		}
		e.After = sh
	}
	return errors.Join(errs...)
}

func afterSnap(i int) string { return filepath.Join("after", fmt.Sprintf("%04d", i+1)) }

// state is a path's kind, bytes and attributes, for comparisons.
type state struct {
	Kind     string
	Data     []byte
	Big      bool
	Link     string
	Mode     uint32
	UID, GID int
	// AnyOwner: the owner and mode moat gave it are unknown (a Final file
	// written on confirm): whatever they are now counts as moat's.
	AnyOwner bool
	Tree     []TreeItem
	MTime    time.Time // of the version before, put back with it
}

func (a state) sameContent(b state) bool {
	if a.Kind != b.Kind || a.Big || b.Big {
		return false
	}
	switch a.Kind {
	case "file":
		return bytes.Equal(a.Data, b.Data)
	case "symlink":
		return a.Link == b.Link
	}
	return true
}

func (a state) sameAttrs(b state) bool {
	if a.Kind == "absent" || a.AnyOwner || b.AnyOwner {
		return true
	}
	return a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID
}

func (a state) same(b state) bool { return a.sameContent(b) && a.sameAttrs(b) }

func fromNode(n node) state {
	return state{Kind: n.Kind, Data: n.Data, Big: n.Big, Link: n.Link, Mode: n.Mode, UID: n.UID, GID: n.GID}
}

// before and after read an entry's two recorded states.
func (s *Store) before(m *Manifest, e Entry) (state, error) {
	st := state{Kind: e.Kind, Link: e.Link, Mode: e.Mode, UID: e.UID, GID: e.GID, MTime: e.MTime}
	if e.Kind == "file" {
		data, err := os.ReadFile(filepath.Join(s.changeDir(m.ID), e.Snap))
		if err != nil {
			return st, fmt.Errorf("read snapshot: %w", err)
		}
		if int64(len(data)) != e.Size {
			return st, fmt.Errorf("snapshot %s is %d bytes, recorded %d", e.Snap, len(data), e.Size)
		}
		st.Data = data
	}
	return st, nil
}

// loadShot reads a recorded Shot's state.
func (s *Store) loadShot(m *Manifest, a *Shot) (state, error) {
	st := state{Kind: a.Kind, Link: a.Link, Mode: a.Mode, UID: a.UID, GID: a.GID, Tree: a.Tree}
	if a.Kind == "file" {
		data, err := os.ReadFile(filepath.Join(s.changeDir(m.ID), a.Snap))
		if err != nil {
			return st, fmt.Errorf("read the recorded version: %w", err)
		}
		st.Data = data
	}
	return st, nil
}

// ConfirmEdit is what confirm changed at a path (the Final files, the
// confirm actions' edits such as the swap line in fstab): Pre and Post
// bracket it, so that a rollback of a confirmed change reverts exactly
// that before it reverts the apply's edit.
type ConfirmEdit struct {
	Pre  Shot `json:"pre"`
	Post Shot `json:"post"`
}

// confirmPre records every entry as it is before confirm writes
// anything; confirmPost keeps, for the entries confirm changed, the
// states before and after. Called by Confirm around its writes, and
// before a failed confirm rolls back.
func (s *Store) confirmPre(m *Manifest) []*Shot {
	pre := make([]*Shot, len(m.Entries))
	for i, e := range m.Entries {
		snap := filepath.Join("confirm", fmt.Sprintf("%04d-pre", i+1))
		e.Kind = "-" // no tree: only what confirm adds matters
		if sh, err := shoot(s.Root, e, filepath.Join(s.changeDir(m.ID), snap)); err == nil {
			if sh.Kind == "file" {
				sh.Snap = snap
			}
			pre[i] = sh
		}
	}
	return pre
}

func (s *Store) confirmPost(m *Manifest, pre []*Shot) {
	for i := range m.Entries {
		if i >= len(pre) || pre[i] == nil {
			continue
		}
		e := &m.Entries[i]
		snap := filepath.Join("confirm", fmt.Sprintf("%04d-post", i+1))
		probe := *e
		if pre[i].Kind == "absent" {
			probe.Kind = "absent" // a directory confirm created: list it
		} else {
			probe.Kind = "-"
		}
		post, err := shoot(s.Root, probe, filepath.Join(s.changeDir(m.ID), snap))
		if err != nil {
			continue
		}
		if post.Kind == "file" {
			post.Snap = snap
		}
		a, err1 := s.loadShot(m, pre[i])
		b, err2 := s.loadShot(m, post)
		if err1 == nil && err2 == nil && a.same(b) {
			continue
		}
		e.Confirm = &ConfirmEdit{Pre: *pre[i], Post: *post}
	}
}

// revert undoes moat's edits of entry i against the path as it is now:
// confirm's edit first (when the change was confirmed), then the apply's.
func (s *Store) revert(m *Manifest, i int) PathOutcome {
	e := m.Entries[i]
	var stages [][2]*Shot
	if e.Confirm != nil {
		stages = append(stages, [2]*Shot{&e.Confirm.Pre, &e.Confirm.Post})
	}
	stages = append(stages, [2]*Shot{nil, e.After})
	var res PathOutcome
	for k, st := range stages {
		var b state
		var err error
		if st[0] == nil {
			b, err = s.before(m, e)
		} else {
			b, err = s.loadShot(m, st[0])
		}
		var o PathOutcome
		if err != nil {
			o = PathOutcome{Path: e.Path, Result: Failed, Error: err.Error()}
		} else {
			o = s.revertOnce(m, e, b, st[1])
		}
		if k == 0 {
			res = o
			continue
		}
		// The worse result stands; notes add up.
		rank := map[string]int{Untouched: 0, Restored: 1, Merged: 2, Kept: 3, Failed: 4}
		if rank[o.Result] >= rank[res.Result] || (res.Result == Untouched) {
			res.Result, res.Error = o.Result, o.Error
		}
		res.Notes = append(res.Notes, o.Notes...)
		if o.Aside != "" {
			res.Aside = o.Aside
		}
	}
	return res
}

// revertOnce reverts one edit (b → the recorded a) against now; a nil a
// means no record: whatever is there counts as moat's.
func (s *Store) revertOnce(m *Manifest, e Entry, b state, rec *Shot) PathOutcome {
	out := PathOutcome{Path: e.Path}
	fail := func(err error) PathOutcome {
		out.Result, out.Error = Failed, err.Error()
		return out
	}
	d, base, err := openParent(s.Root, e.Path, b.Kind != "absent")
	if errors.Is(err, fs.ErrNotExist) && b.Kind == "absent" {
		out.Result = Restored // its directory is gone, and so is it
		return out
	}
	if err != nil {
		return fail(err)
	}
	defer d.Close()
	nn, err := d.stat(base)
	if err != nil {
		return fail(err)
	}
	n := fromNode(nn)
	a, recorded := n, false
	if rec != nil {
		if a, err = s.loadShot(m, rec); err != nil {
			return fail(err)
		}
		recorded = true
	}
	note := func(kind, format string, args ...any) {
		out.Notes = append(out.Notes, Note{Kind: kind, Text: fmt.Sprintf(format, args...)})
	}

	// A directory moat created goes only if it holds nothing but what
	// moat put there.
	if b.Kind == "absent" && a.Kind == "dir" {
		switch n.Kind {
		case "absent":
			out.Result = Restored
		case "dir":
			known := map[string]bool{}
			for _, it := range a.Tree {
				known[it.Path] = true
			}
			tree, err := d.tree(base, known)
			if errors.Is(err, errTreeTooBig) {
				out.Result = Kept
				note("kept", "moat created it, but it now holds far more than moat put there: left in place")
				return out
			}
			if err != nil {
				return fail(err)
			}
			var foreign []string
			for _, it := range tree {
				if !recorded || containsItem(a.Tree, it) {
					continue
				}
				foreign = append(foreign, it.Path)
			}
			if len(foreign) == 0 {
				if err := d.remove(base); err != nil {
					return fail(err)
				}
				out.Result = Restored
				break
			}
			out.Result = Kept
			more := ""
			if len(foreign) > 5 {
				more = fmt.Sprintf(" and %d more", len(foreign)-5)
				foreign = foreign[:5]
			}
			note("kept", "moat created it, but it now holds what moat did not put there (%s%s): left in place", strings.Join(foreign, ", "), more)
		default:
			out.Result = Kept
			note("kept", "moat created it as a directory; it is now a %s: left alone", n.Kind)
		}
		return out
	}

	switch {
	case recorded && a.same(b):
		out.Result = Untouched
		return out
	case n.same(b):
		out.Result = Restored
		return out
	case b.Kind == "dir" && a.Kind == "dir" && n.Kind == "dir":
		// Owner and mode, each reverted unless changed again since.
		attrs := n
		if n.Mode == a.Mode {
			attrs.Mode = b.Mode
		}
		if n.UID == a.UID && n.GID == a.GID {
			attrs.UID, attrs.GID = b.UID, b.GID
		}
		if err := d.setAttrs(base, "dir", attrs.Mode, attrs.UID, attrs.GID); err != nil {
			return fail(err)
		}
		out.Result = Restored
		if !attrs.sameAttrs(b) {
			out.Result = Merged
			note("kept", "owner or mode changed since: theirs kept where moat had not changed them")
		}
		return out
	case n.sameContent(a):
		// Moat's version is still there: put the old one back, with the
		// owner and mode it had, unless someone changed those since.
		attrs := b
		if !n.sameAttrs(a) && b.Kind == n.Kind {
			attrs = n
			note("kept", "owner or mode changed since: theirs kept")
		}
		if err := put(d, base, b, attrs, n); err != nil {
			return fail(err)
		}
		out.Result = Restored
		if len(out.Notes) > 0 {
			out.Result = Merged
			return out
		}
		return s.verify(d, base, b, out)
	}

	// Changed since moat's step: revert moat's part where it separates.
	db := accountDB(e.Path)
	switch {
	case accountBackup(e.Path) && n.Kind == "file":
		out.Result = Kept
		note("kept", "the account tools rewrote this backup since: left as it is")
		return out
	case (b.Kind == "file" || b.Kind == "absent") && a.Kind == "file" && n.Kind == "file" && !n.Big:
		var merged []byte
		ok := true
		if db != "" {
			var notes []Note
			merged, notes = mergeAccounts(db, b.Data, a.Data, n.Data)
			out.Notes = append(out.Notes, notes...)
		} else if b.Kind == "absent" {
			// moat created it: all of moat's lines go, the lines others
			// added or changed since stay.
			merged, ok = othersLines(a.Data, n.Data)
			if ok && len(merged) > 0 {
				note("kept", "moat created it; lines added or changed since kept, moat's removed")
			}
		} else if merged, ok = mergeText(a.Data, b.Data, n.Data); ok {
			note("kept", "edited since: moat's lines reverted, theirs kept")
		}
		if ok {
			attrs := n
			if n.sameAttrs(a) && b.Kind == "file" {
				attrs.Mode, attrs.UID, attrs.GID = b.Mode, b.UID, b.GID
			}
			target := state{Kind: "file", Data: merged}
			if len(merged) == 0 && b.Kind == "absent" {
				target = state{Kind: "absent"}
			}
			if err := put(d, base, target, attrs, n); err != nil {
				return fail(err)
			}
			out.Result = Merged
			if target.Kind == "absent" && b.Kind == "absent" ||
				b.Kind == "file" && bytes.Equal(merged, b.Data) && attrs.Mode == b.Mode && attrs.UID == b.UID && attrs.GID == b.GID {
				out.Result = Restored // what others did was undone too, or was moat's
			}
			return out
		}
		note("conflict", "edited since where moat edited it too: theirs kept")
	case n.Kind == "absent":
		note("kept", "removed since: left removed")
	default:
		note("conflict", "changed since (now a %s): left as it is", n.Kind)
	}
	out.Result = Kept
	if b.Kind == "file" {
		aside := filepath.Join(s.changeDir(m.ID), "kept", filepath.Clean("/"+e.Path))
		if err := writeAtomic(aside, b.Data, 0o600, 0, 0, time.Time{}); err != nil {
			return fail(fmt.Errorf("keep the version before the change aside: %w", err))
		}
		out.Aside = aside
	}
	return out
}

// put makes name hold target's content with attrs' owner and mode.
func put(d *safeDir, name string, target, attrs, now state) error {
	switch target.Kind {
	case "absent":
		return d.remove(name)
	case "file":
		if now.Kind == "dir" {
			if err := d.remove(name); err != nil {
				return err
			}
		}
		return d.writeFile(name, target.Data, attrs.Mode, attrs.UID, attrs.GID, target.MTime)
	case "symlink":
		if now.Kind == "dir" {
			if err := d.remove(name); err != nil {
				return err
			}
		}
		return d.symlink(name, target.Link, attrs.UID, attrs.GID)
	case "dir":
		if now.Kind == "absent" {
			return d.mkdir(name, attrs.Mode, attrs.UID, attrs.GID)
		}
		if now.Kind != "dir" {
			return fmt.Errorf("refused: %s was a directory and is now a %s", d.show(name), now.Kind)
		}
		return d.setAttrs(name, "dir", attrs.Mode, attrs.UID, attrs.GID)
	}
	return fmt.Errorf("unknown kind %q", target.Kind)
}

// verify reads name back: "restored" promises it is as it was.
func (s *Store) verify(d *safeDir, name string, b state, out PathOutcome) PathOutcome {
	nn, err := d.stat(name)
	if err == nil && !fromNode(nn).same(b) {
		err = errors.New("differs from its snapshot after the restore")
	}
	if err != nil {
		out.Result, out.Error = Failed, err.Error()
	}
	return out
}

func containsItem(items []TreeItem, it TreeItem) bool {
	for _, x := range items {
		if x == it {
			return true
		}
	}
	return false
}
