package audit

import (
	"io"

	"github.com/moat-sh/moat/internal/finding"
)

// WriteSARIF writes the findings as SARIF 2.1.0, for code-scanning UIs.
// Each check ID is a rule; each failed result is a SARIF result.
func (r *Report) WriteSARIF(w io.Writer) error {
	return finding.WriteSARIF(w, finding.SARIFRun{Version: r.Version, Host: r.Host, Results: r.Results})
}
