package logwatch

import (
	"fmt"
	"os"
)

// ReadFile reads the file at path once, from its start to its end, and
// hands its lines to h in batches, split and cut exactly as a followed
// File's are (maxLine, Truncated; DefaultMaxLine when 0): what
// `moat jail replay` and `moat filter test` read, so that they see the
// lines `moat run` would. It returns the number of lines read.
func ReadFile(path string, maxLine int, h Handler) (int, error) {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	g := &segment{f: f}
	b := newLineBuf("file:"+path, maxLine)
	n := 0
	deliver := func() error {
		if len(b.batch) == 0 {
			return nil
		}
		n += len(b.batch)
		err := h(b.batch)
		b.clearBatch()
		return err
	}
	for {
		read, err := b.read(g)
		if err != nil {
			return n, fmt.Errorf("read %s: %w", path, err)
		}
		if read == 0 {
			break
		}
		// The batch's lines point into the buffer, which the next read
		// compacts: hand them over first.
		if err := deliver(); err != nil {
			return n, err
		}
	}
	b.flush(g)
	return n, deliver()
}
