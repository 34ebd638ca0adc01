package logwatch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxLine bounds the text of one line. A longer line is cut to this
// length and delivered with Truncated set; the rest is discarded, so a
// line without end never grows memory.
const DefaultMaxLine = 16 << 10

// DefaultSaveInterval is the least time between two Saves of a source's
// position. Positions are also saved when Run returns.
const DefaultSaveInterval = time.Second

// Line is one log line or journal entry.
type Line struct {
	// Source names where the line came from (the source's configured name).
	Source string
	// Time is when the journal received the entry. It is zero for file
	// lines, whose text carries its own timestamp.
	Time time.Time
	// Text is the line without its newline, or the journal's MESSAGE. It
	// is valid only until the handler returns.
	Text []byte
	// Fields holds journal fields such as _PID, SYSLOG_IDENTIFIER,
	// _SYSTEMD_UNIT and _HOSTNAME; nil for file lines. Valid only until
	// the handler returns.
	Fields map[string]string
	// Pos is where reading resumes after this line.
	Pos Position
	// Truncated reports that the line was longer than the source's
	// MaxLine and Text holds only its beginning.
	Truncated bool
}

// Handler receives batches of lines in order. Returning nil acknowledges
// the batch; an error stops the source, which returns it without recording
// the batch's position, so the batch is delivered again on the next run.
type Handler func(batch []Line) error

// Source delivers lines until ctx is cancelled (then Run returns nil) or
// until the handler or the source fails (then Run returns that error).
type Source interface {
	Run(ctx context.Context, h Handler) error
}

// Store persists positions by source name between runs.
type Store interface {
	// Load returns the position saved for source; ok is false when none is.
	Load(source string) (pos Position, ok bool, err error)
	Save(source string, pos Position) error
}

// StartPolicy says where a source starts when its Store holds no position.
type StartPolicy int

const (
	// StartAtEnd (the default) skips what is already there: a daemon's
	// first start must not count old failures again. A file that appears
	// after the source started is read from its beginning all the same.
	StartAtEnd StartPolicy = iota
	// StartAtBeginning reads existing files whole.
	StartAtBeginning
)

// Position is an opaque resume point: a file's identity and offset, or a
// journal cursor. Its text form (MarshalText) is what a Store keeps.
type Position struct {
	// Dev and Ino identify the file; Offset is just past the last line
	// delivered.
	Dev, Ino uint64
	Offset   int64
	// HeadLen and HeadSum fingerprint the file's first HeadLen bytes
	// (CRC-32C), so that a new file that reuses an inode number is not
	// resumed at the old file's offset, and so that a rotated copy can be
	// recognised. HeadLen 0 means no fingerprint was taken.
	HeadLen int
	HeadSum uint32
	// Cursor is the journal cursor of the last entry delivered.
	Cursor string
}

// IsZero reports whether p is the zero Position (nothing read yet).
func (p Position) IsZero() bool { return p == Position{} }

const (
	filePrefix    = "file:"
	journalPrefix = "journal:"
)

// MarshalText encodes p as "file:DEV:INO:OFFSET:HEADLEN:HEADSUM" or
// "journal:CURSOR"; the zero Position encodes as "".
func (p Position) MarshalText() ([]byte, error) {
	switch {
	case p.IsZero():
		return []byte{}, nil
	case p.Cursor != "":
		return []byte(journalPrefix + p.Cursor), nil
	}
	b := make([]byte, 0, 64)
	b = append(b, filePrefix...)
	b = strconv.AppendUint(b, p.Dev, 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, p.Ino, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, p.Offset, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(p.HeadLen), 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(p.HeadSum), 16)
	return b, nil
}

var errPosition = errors.New("malformed position")

// UnmarshalText decodes the form written by MarshalText.
func (p *Position) UnmarshalText(b []byte) error {
	s := string(b)
	switch {
	case s == "":
		*p = Position{}
		return nil
	case strings.HasPrefix(s, journalPrefix):
		c := s[len(journalPrefix):]
		if c == "" || strings.ContainsAny(c, "\n\x00") {
			return fmt.Errorf("%w %q: bad cursor", errPosition, s)
		}
		*p = Position{Cursor: c}
		return nil
	case !strings.HasPrefix(s, filePrefix):
		return fmt.Errorf("%w %q: want a file or journal position", errPosition, s)
	}
	f := strings.Split(s[len(filePrefix):], ":")
	if len(f) != 5 {
		return fmt.Errorf("%w %q: want 5 fields", errPosition, s)
	}
	var q Position
	var err error
	var hl, hs uint64
	if q.Dev, err = strconv.ParseUint(f[0], 10, 64); err == nil {
		if q.Ino, err = strconv.ParseUint(f[1], 10, 64); err == nil {
			if q.Offset, err = strconv.ParseInt(f[2], 10, 64); err == nil {
				if hl, err = strconv.ParseUint(f[3], 10, 31); err == nil {
					hs, err = strconv.ParseUint(f[4], 16, 32)
				}
			}
		}
	}
	if err != nil || q.Offset < 0 || hl > headMax {
		return fmt.Errorf("%w %q", errPosition, s)
	}
	q.HeadLen, q.HeadSum = int(hl), uint32(hs)
	*p = q
	return nil
}

// String returns the text form.
func (p Position) String() string {
	b, _ := p.MarshalText()
	return string(b)
}
