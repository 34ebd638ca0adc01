package alert

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Event kinds, the values of Event.Kind and of a route's events list.
const (
	KindLogin     = "login"
	KindBan       = "ban"
	KindUnban     = "unban"
	KindDrift     = "drift"
	KindCert      = "cert"
	KindDisk      = "disk"
	KindMemory    = "memory"
	KindReboot    = "reboot"
	KindChange    = "change"
	KindLifecycle = "lifecycle"
	KindTest      = "test"
)

// Severity orders events for routing: a route passes events at or above
// its minimum, and quiet hours hold back everything below Critical.
type Severity int8

// Severities, lowest first.
const (
	Info Severity = iota
	Warning
	Critical
)

var severityNames = [...]string{"info", "warning", "critical"}

func (s Severity) String() string {
	if s >= Info && s <= Critical {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", int8(s))
}

// ParseSeverity parses info, warning or critical.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if s == n {
			return Severity(i), nil
		}
	}
	return Info, fmt.Errorf("unknown severity %q: expected info, warning or critical", s)
}

// MarshalText implements encoding.TextMarshaler, so JSON carries the name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// Event is one thing worth telling the operator. Title is one line; Text is
// the human account; Fields carry the same facts for machines (webhook
// receivers, e-mail filters). The Dispatcher fills ID, Time and Host when
// they are empty.
type Event struct {
	ID       string            `json:"id"`
	Kind     string            `json:"kind"`
	Severity Severity          `json:"severity"`
	Time     time.Time         `json:"time"`
	Host     string            `json:"host"`
	Title    string            `json:"title"`
	Text     string            `json:"text"`
	Fields   map[string]string `json:"fields,omitempty"`
}

// Limits on what an event may carry. Event text often quotes attackers
// (user names from failed logins), so it is cut and cleaned before any
// notifier renders it.
const (
	maxTitle      = 200
	maxText       = 3000
	maxFields     = 20
	maxFieldKey   = 40
	maxFieldValue = 200
)

// normalize returns e with its strings made safe to render: valid UTF-8,
// no control characters (newlines and tabs kept in Text), bounded lengths.
// Renderers still escape for their own markup; this removes what no
// markup can: a newline in a title, an escape sequence, a megabyte.
func (e Event) normalize() Event {
	e.Kind = clean(e.Kind, 20, false)
	e.Host = clean(e.Host, 100, false)
	e.Title = clean(e.Title, maxTitle, false)
	e.Text = clean(e.Text, maxText, true)
	if len(e.Fields) > 0 {
		f := make(map[string]string, min(len(e.Fields), maxFields))
		for _, k := range sortedKeys(e.Fields) {
			if len(f) == maxFields {
				break
			}
			if ck := clean(k, maxFieldKey, false); ck != "" {
				f[ck] = clean(e.Fields[k], maxFieldValue, false)
			}
		}
		e.Fields = f
	}
	return e
}

// clean makes s valid UTF-8 without control characters and cuts it to at
// most n runes, marking a cut with an ellipsis. multiline keeps newlines
// and tabs.
func clean(s string, n int, multiline bool) string {
	if plainASCII(s, n, multiline) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	b.Grow(min(len(s), 4*n))
	count := 0
	for _, r := range s {
		switch {
		case multiline && (r == '\n' || r == '\t'):
		case r == '\t' || r == '\n' || r == '\r':
			r = ' '
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r):
			continue
		}
		if count == n {
			return strings.TrimRightFunc(b.String(), unicode.IsSpace) + "…"
		}
		b.WriteRune(r)
		count++
	}
	return strings.TrimRightFunc(b.String(), unicode.IsSpace)
}

// plainASCII reports whether clean would return s unchanged because it is
// short, printable ASCII without trailing space: most event text.
func plainASCII(s string, n int, multiline bool) bool {
	if len(s) > n || (len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\n' || s[len(s)-1] == '\t')) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < ' ' || c > '~') && !(multiline && (c == '\n' || c == '\t')) {
			return false
		}
	}
	return true
}

// truncate cuts s to at most n bytes on a rune boundary, marking a cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:max(cut, 0)] + mark
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}
