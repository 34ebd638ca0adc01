package guard

import (
	"github.com/moat-sh/moat/internal/logwatch"
)

// ReadFile runs every line of the file at path through u, read as `moat
// run` reads a followed file, and returns the number of lines.
func ReadFile(path string, u *Unit) (int, error) {
	return logwatch.ReadFile(path, 0, func(b []logwatch.Line) error {
		u.Lines(b)
		return nil
	})
}
