package change

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// A quick edit (moat allow, deny, expose) changes moat.yaml and the host
// together: the file is part of the change, so that a change nobody
// confirmed leaves a config that says what the host runs. Otherwise the
// next moat apply would apply the edit the timer had just undone.
//
// moat.yaml is the operator's own file, though, so it is not merged like
// the files moat writes in /etc: it goes back only if it still holds,
// byte for byte, what the quick edit wrote. An operator who edited it
// during the window keeps their file; the version before the quick edit
// is written beside it, and the rollback says where.

// ConfigEdit is moat.yaml as a quick edit changes it. The change writes
// After once its timer is armed, so a moat apply killed before that
// leaves the file as it was.
type ConfigEdit struct {
	// Path is the config as named (it may be a symlink); File is the
	// regular file it resolves to, absolute: what is written, so that a
	// link stays a link. Neither is under the store's root: the config
	// is where the command read it.
	Path, File    string
	Before, After []byte
}

// ConfigRecord is a ConfigEdit as the manifest keeps it.
type ConfigRecord struct {
	Path string `json:"path"`
	File string `json:"file"`
	// Snap is the version before the edit, in the change directory.
	Snap         string `json:"snap"`
	BeforeSHA256 string `json:"before_sha256"`
	AfterSHA256  string `json:"after_sha256"`
	// Writing is saved before the edit is written: without it, a file
	// that holds the edit holds someone else's identical one.
	Writing bool `json:"writing,omitempty"`
}

// AsideSuffix ends the name of the version before a quick edit, written
// beside moat.yaml when a rollback finds the file edited since.
const AsideSuffix = ".rolled-back-"

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// recordConfig keeps the version before the edit in the change
// directory. Called by begin: nothing is written to the config yet.
func (s *Store) recordConfig(m *Manifest, c *ConfigEdit) error {
	if c == nil {
		return nil
	}
	if err := validPath(c.File); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if sum(c.Before) == sum(c.After) {
		return errors.New("config: the edit changes nothing")
	}
	snap := filepath.Join("config", "before")
	if err := writeAtomic(filepath.Join(s.changeDir(m.ID), snap), c.Before, 0o600, 0, 0, time.Time{}); err != nil {
		return fmt.Errorf("snapshot %s: %w", c.Path, err)
	}
	m.ConfigEdit = &ConfigRecord{Path: c.Path, File: c.File, Snap: snap, BeforeSHA256: sum(c.Before), AfterSHA256: sum(c.After)}
	return nil
}

// writeConfig writes the edit, under the change's lock, once the timer
// is armed: only over the version the edit was made from (someone
// else's edit meanwhile fails the change, which rolls back), keeping the
// file's mode and owner.
func (s *Store) writeConfig(id string, c *ConfigEdit) error {
	m, unlock, err := s.applying(id)
	if err != nil {
		return err
	}
	defer unlock()
	d, base, err := openParent("", c.File, false)
	if err != nil {
		return fmt.Errorf("write %s: %w", c.Path, err)
	}
	defer d.Close()
	n, err := d.stat(base)
	if err != nil {
		return fmt.Errorf("write %s: %w", c.Path, err)
	}
	if n.Kind != "file" || n.Big || sum(n.Data) != m.ConfigEdit.BeforeSHA256 {
		return fmt.Errorf("%s changed while the edit was prepared: left as it is; run the command again", c.Path)
	}
	m.ConfigEdit.Writing = true
	if err := s.save(m); err != nil {
		return err
	}
	if err := d.writeFile(base, c.After, n.Mode, n.UID, n.GID, time.Time{}); err != nil {
		return fmt.Errorf("write %s: %w", c.Path, err)
	}
	m.event(time.Now(), "wrote the edit of %s", c.Path)
	return s.save(m)
}

// revertConfig undoes the quick edit of moat.yaml: the version before
// goes back only over exactly what the edit wrote; anything else is the
// operator's and stays, with the version before written beside it.
func (s *Store) revertConfig(m *Manifest) PathOutcome {
	rc := m.ConfigEdit
	out := PathOutcome{Path: rc.Path}
	fail := func(err error) PathOutcome {
		out.Result, out.Error = Failed, err.Error()
		return out
	}
	note := func(kind, format string, args ...any) {
		out.Notes = append(out.Notes, Note{Kind: kind, Text: fmt.Sprintf(format, args...)})
	}
	before, err := os.ReadFile(filepath.Join(s.changeDir(m.ID), rc.Snap))
	if err != nil {
		return fail(fmt.Errorf("read the version before the edit: %w", err))
	}
	if sum(before) != rc.BeforeSHA256 {
		return fail(fmt.Errorf("the version before the edit (%s) does not match its recorded hash", rc.Snap))
	}
	d, base, err := openParent("", rc.File, false)
	var n node
	if errors.Is(err, fs.ErrNotExist) {
		n = node{Kind: "absent"}
	} else if err != nil {
		return fail(err)
	} else {
		defer d.Close()
		if n, err = d.stat(base); err != nil {
			return fail(err)
		}
	}
	cur := ""
	if n.Kind == "file" && !n.Big {
		cur = sum(n.Data)
	}
	switch {
	case cur == rc.BeforeSHA256 || !rc.Writing:
		out.Result = Untouched // the edit was never written, or is undone
		return out
	case cur == rc.AfterSHA256 && rc.Writing:
		if err := d.writeFile(base, before, n.Mode, n.UID, n.GID, time.Time{}); err != nil {
			return fail(fmt.Errorf("restore: %w", err))
		}
		if back, err := d.stat(base); err != nil || sum(back.Data) != rc.BeforeSHA256 {
			return fail(errors.New("differs from the version before the edit after the restore"))
		}
		out.Result = Restored
		note("config", "the quick edit is undone: it says again what the host runs")
		return out
	}
	// The operator's file: kept, the version before put beside it.
	out.Result = Kept
	switch n.Kind {
	case "file":
		note("kept", "edited since the quick edit wrote it: your version is kept as it is; it still holds the quick edit, which the next moat apply applies")
	case "absent":
		note("kept", "removed since the quick edit wrote it: left removed")
	default:
		note("kept", "replaced since by a %s: left as it is", n.Kind)
	}
	if d == nil {
		// Its directory is gone too: the version before goes to the
		// change directory rather than recreating it.
		aside := filepath.Join(s.changeDir(m.ID), "kept", filepath.Clean("/"+rc.File))
		if err := writeAtomic(aside, before, 0o600, 0, 0, time.Time{}); err != nil {
			return fail(fmt.Errorf("keep the version before the edit: %w", err))
		}
		out.Aside = aside
		return out
	}
	uid, gid := n.UID, n.GID
	if n.Kind != "file" {
		uid, gid = 0, 0
	}
	aside := base + AsideSuffix + m.ID
	if err := d.writeFile(aside, before, 0o600, uid, gid, time.Time{}); err != nil {
		return fail(fmt.Errorf("keep the version before the edit beside it: %w", err))
	}
	out.Aside = filepath.Join(filepath.Dir(rc.File), aside)
	return out
}

// configNote is what the rollback's alert says of moat.yaml.
func configNote(o PathOutcome) string {
	switch o.Result {
	case Restored:
		return fmt.Sprintf("; %s restored as it was before the quick edit", o.Path)
	case Kept:
		return fmt.Sprintf("; %s was edited since the quick edit: yours is kept (the quick edit is still in it), the version before the edit is in %s", o.Path, o.Aside)
	case Failed:
		return fmt.Sprintf("; %s could not be restored: %s", o.Path, o.Error)
	}
	return ""
}

// WriteOver replaces the regular file at path (absolute, its last
// component not a link) atomically, keeping its mode and owner.
func WriteOver(path string, data []byte) error {
	d, base, err := openParent("", path, false)
	if err != nil {
		return err
	}
	defer d.Close()
	n, err := d.stat(base)
	if err != nil {
		return err
	}
	if n.Kind != "file" {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return d.writeFile(base, data, n.Mode, n.UID, n.GID, time.Time{})
}
