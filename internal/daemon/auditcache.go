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
}

// history returns the parsed history under stateDir.
func (a *auditFile) history(stateDir string) (auditHistory, error) {
	path := filepath.Join(stateDir, AuditHistoryFile)
	a.mu.Lock()
	defer a.mu.Unlock()
	fi, statErr := os.Stat(path)
	if a.read && statErr == nil && fi.ModTime().Equal(a.mtime) && fi.Size() == a.size {
		return a.hist, a.err
	}
	a.hist, a.err = readAuditHistory(path)
	a.read = statErr == nil
	if statErr == nil {
		a.mtime, a.size = fi.ModTime(), fi.Size()
	}
	return a.hist, a.err
}

// lastAudit is LastAudit through the cache.
func (a *auditFile) lastAudit(stateDir string) (*AuditSummary, string) {
	h, err := a.history(stateDir)
	if err != nil {
		return nil, err.Error()
	}
	return h.summary(), ""
}
