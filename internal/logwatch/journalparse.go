package logwatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// maxFields bounds the fields kept from one journal entry.
const maxFields = 64

// entry is one line of `journalctl --output=json`.
type entry struct {
	cursor   string
	realtime time.Time
	message  []byte
	fields   map[string]string
	cut      bool // message longer than the limit
}

var errNoCursor = errors.New("journal entry without __CURSOR")

// parseEntry parses one JSON object written by journalctl. Values come as
// journalctl writes them: a string; an array of byte values when the data
// is not printable UTF-8 (MESSAGE with an escape sequence, binary fields);
// an array of those when a field occurs more than once (the first is
// kept); or null when a value was too large to show. Fields other than
// MESSAGE and the "__" metadata go to fields; MESSAGE and every field value
// are cut at maxText bytes.
func parseEntry(line []byte, maxText int) (entry, error) {
	var sc entryScanner
	return sc.parse(line, maxText)
}

// parse is parseEntry reusing the scanner's buffer.
func (sc *entryScanner) parse(line []byte, maxText int) (entry, error) {
	e, ok := sc.scan(line, maxText)
	if !ok {
		var err error
		if e, err = parseEntryJSON(line, maxText); err != nil {
			return entry{}, err
		}
	}
	if e.cursor == "" || strings.ContainsAny(e.cursor, "\n\x00") {
		return entry{}, errNoCursor
	}
	return e, nil
}

// parseEntryJSON is parseEntry's general path, for what scanEntry leaves.
func parseEntryJSON(line []byte, maxText int) (entry, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return entry{}, fmt.Errorf("journal entry: %w", err)
	}
	var e entry
	for k, v := range raw {
		switch k {
		case "__CURSOR":
			if b, ok := fieldValue(v, 0); ok {
				e.cursor = string(b)
			}
		case "__REALTIME_TIMESTAMP":
			if b, ok := fieldValue(v, 0); ok {
				if us, ok := decimal(b); ok {
					e.realtime = time.UnixMicro(us)
				}
			}
		case "MESSAGE":
			if b, ok := fieldValue(v, 0); ok {
				if len(b) > maxText {
					b, e.cut = b[:maxText], true
				}
				e.message = b
			}
		default:
			if strings.HasPrefix(k, "__") || len(e.fields) >= maxFields {
				continue
			}
			b, ok := fieldValue(v, 0)
			if !ok {
				continue
			}
			if e.fields == nil {
				e.fields = make(map[string]string, len(raw))
			}
			e.fields[k] = string(b[:min(len(b), maxText)])
		}
	}
	return e, nil
}

// fieldValue decodes one journal JSON value; ok is false for null and for
// shapes journalctl does not write.
func fieldValue(v json.RawMessage, depth int) ([]byte, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return nil, false
	}
	switch c := v[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(v, &s) != nil {
			return nil, false
		}
		return []byte(s), true
	case c == '[':
		var elems []json.RawMessage
		if json.Unmarshal(v, &elems) != nil || len(elems) == 0 {
			return nil, false
		}
		if first := bytes.TrimSpace(elems[0]); len(first) > 0 && (first[0] == '"' || first[0] == '[') {
			// A field that occurs more than once: keep the first value.
			if depth > 0 {
				return nil, false
			}
			return fieldValue(first, depth+1)
		}
		b := make([]byte, len(elems))
		for i, el := range elems {
			n, ok := byteValue(el)
			if !ok {
				return nil, false
			}
			b[i] = n
		}
		return b, true
	case c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f':
		return v, true // not written by journalctl; kept as text
	}
	return nil, false
}

// byteValue parses a JSON number 0..255.
func byteValue(v json.RawMessage) (byte, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || len(v) > 3 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return byte(n), n <= 255
}
