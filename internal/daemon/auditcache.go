package daemon

import (
	"os"
	"path/filepath"
	"sync"
	"time"
)

// auditFile is the audit history as the running daemon last read it,
// parsed again only when the file changed (a drift audit every 15
// minutes): `moat status` and the status page ask far more often, and a
// long history costs a parse of its whole length.
type auditFile struct {
	mu    sync.Mutex
	mtime time.Time
	size  int64
	hist  auditHistory
	err   error
	read  bool
	// version counts the reads, so a reader can keep what it derived
	// from one.
	version int
}

// history returns the parsed history under stateDir.
func (a *auditFile) history(stateDir string) (auditHistory, error) {
	h, _, err := a.versioned(stateDir)
	return h, err
}

// versioned is history with the version of the read it comes from.
func (a *auditFile) versioned(stateDir string) (auditHistory, int, error) {
	path := filepath.Join(stateDir, AuditHistoryFile)
	a.mu.Lock()
	defer a.mu.Unlock()
	fi, statErr := os.Stat(path)
	if a.read && statErr == nil && fi.ModTime().Equal(a.mtime) && fi.Size() == a.size {
		return a.hist, a.version, a.err
	}
	a.hist, a.err = readAuditHistory(path)
	a.read = statErr == nil
	a.version++
	if statErr == nil {
		a.mtime, a.size = fi.ModTime(), fi.Size()
	}
	return a.hist, a.version, a.err
}

// lastAudit is LastAudit through the cache.
func (a *auditFile) lastAudit(stateDir string) (*AuditSummary, string) {
	h, err := a.history(stateDir)
	if err != nil {
		return nil, err.Error()
	}
	return h.summary(), ""
}
