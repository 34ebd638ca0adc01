package change

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
)

// File is a file a step writes, with the bytes it will hold.
type File struct {
	// Path is absolute, as on the host (without the root prefix).
	Path string
	Data []byte
	Mode fs.FileMode // permission bits; 0 means 0644
	// Owner and Group name the owner ("" is root). They are resolved in
	// the root's passwd and group files when the file is written, so a
	// step may write into the home of a user it has just created.
	Owner, Group string
}

// Dir is a directory a step may create. On rollback, one that did not
// exist before is removed if it holds only what moat put there, and kept
// (and reported) otherwise.
type Dir struct {
	Path         string
	Mode         fs.FileMode // 0 means 0755
	Owner, Group string
}

// Action is a live step to run on rollback (an undo) or on confirm, by
// name, with its data: it runs in another process than the one that
// planned it (the watchdog, the systemd timer, moat confirm), so all it
// knows must be in Data. Handlers must be idempotent: a rollback may run
// an undo whose step never started, or run it twice after a crash.
type Action struct {
	Kind string          `json:"kind"`
	Data json.RawMessage `json:"data,omitempty"`
	// Early runs an undo before the snapshots are restored rather than
	// after: swapoff must precede removing the swapfile.
	Early bool `json:"early,omitempty"`
}

// NewAction makes an Action with data marshalled to JSON.
func NewAction(kind string, data any) Action {
	a := Action{Kind: kind}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			panic(fmt.Sprintf("change: action %s: %v", kind, err)) // data types are ours
		}
		a.Data = b
	}
	return a
}

// Handler runs an Action. Env says where.
type Handler func(ctx context.Context, env Env, data json.RawMessage) error

// Handlers maps Action kinds to their handlers.
type Handlers map[string]Handler

// Env is what a Handler or a Step's Apply may need of the transaction.
type Env struct {
	// Root is the fixture prefix ("" for the live system).
	Root string
	// Boot is set when the rollback runs at boot (moat rollback --boot):
	// services such as sshd are not up yet and need no reload.
	Boot bool
}

// Step is one layer's part of a transaction. Everything it will change
// is declared up front, so it can be snapshotted before anything
// changes: Files and Final by content, Touch and Dirs by path.
type Step struct {
	// Layer names the step: "sshd", "admin", "updates", "swap",
	// "sysctl", "firewall".
	Layer string
	// Summary says what the step does, a line each, for plan and apply.
	Summary []string
	// Warnings are what the operator should know but does not stop the
	// apply ("swap: not applicable in a container").
	Warnings []string
	// Files are written during the window, atomically, in order.
	Files []File
	// Final files are written on confirm: boot-time configuration that
	// must not outlive a reboot inside the window.
	Final []File
	// Touch are other paths the step's commands change (useradd writes
	// /etc/passwd): snapshotted and restored like Files.
	Touch []string
	// Dirs the step may create.
	Dirs []Dir
	// Undo runs on rollback, in reverse order over all steps, after the
	// snapshots are restored (Early ones before).
	Undo []Action
	// Confirm runs on confirm, after the Final files are written.
	Confirm []Action
	// Diff is the step's own diff for changes that are not files (the
	// firewall's live table); file diffs are made from Files and Final.
	Diff string
	// Apply makes the change: it writes Files (through the Writer) and
	// runs commands, and verifies the result. Nil writes Files in order.
	Apply func(ctx context.Context, w *Writer) error
}

// Empty reports whether the step has nothing to do.
func (s *Step) Empty() bool {
	return len(s.Files) == 0 && len(s.Final) == 0 && len(s.Touch) == 0 && len(s.Dirs) == 0 &&
		len(s.Undo) == 0 && len(s.Confirm) == 0 && s.Diff == "" && s.Apply == nil
}

// paths lists every path the step declares, in snapshot order: touched
// paths, then directories (parents before children), files, final files.
func (s *Step) paths() []declared {
	var out []declared
	for _, p := range s.Touch {
		out = append(out, declared{path: p})
	}
	for _, d := range s.Dirs {
		out = append(out, declared{path: d.Path, dir: true})
	}
	for _, f := range s.Files {
		out = append(out, declared{path: f.Path})
	}
	for _, f := range s.Final {
		out = append(out, declared{path: f.Path})
	}
	return out
}

type declared struct {
	path string
	dir  bool
}
