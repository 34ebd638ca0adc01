package sshd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxTLine bounds one line of sshd -T output. Real lines stay under a few
// KiB (long algorithm lists); the bound only stops garbage from growing
// the scanner buffer without limit.
const maxTLine = 1 << 20

// Effective is sshd's effective configuration as printed by sshd -T: each
// keyword (lowercase) maps to the values of its lines, in output order.
// Keywords sshd prints once (most of them) have one value; keywords it
// repeats (hostkey, port, listenaddress, acceptenv, subsystem, allowusers,
// setenv, ...) accumulate. Comma lists (ciphers, kexalgorithms, ...) stay one
// value; List splits them. Values are spelled as sshd prints them, which
// is not always as configured: PermitRootLogin prohibit-password prints as
// "without-password", its older alias.
//
// The zero Effective is empty and ready to use.
type Effective struct {
	keys []string // first-appearance order
	vals map[string][]string
	// notes say what sshd could not evaluate as asked (see Runner).
	notes []string
}

// Notes says what this evaluation could not verify: Match criteria sshd
// would not evaluate for the connection asked about, and how they were
// evaluated instead. Empty when sshd answered exactly what was asked.
func (e Effective) Notes() []string { return append([]string(nil), e.notes...) }

// ParseT parses the output of sshd -T. Every non-blank line must have the
// shape "keyword value" (keyword ASCII letters and digits, then a space or
// tab); anything else is an error naming the line. The value is the rest of
// the line and may contain spaces ("subsystem sftp /usr/lib/...",
// "authorizedkeysfile a b"). Empty input gives an empty Effective.
func ParseT(r io.Reader) (Effective, error) {
	var e Effective
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxTLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			continue
		}
		key, val, err := splitTLine(line)
		if err != nil {
			return Effective{}, fmt.Errorf("sshd -T output line %d: %w", n, err)
		}
		e.add(key, val)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Effective{}, fmt.Errorf("sshd -T output line %d: longer than %d bytes", n+1, maxTLine)
		}
		return Effective{}, fmt.Errorf("read sshd -T output: %w", err)
	}
	return e, nil
}

// splitTLine splits "keyword value" and lowercases the keyword.
func splitTLine(line string) (key, val string, err error) {
	i := strings.IndexAny(line, " \t")
	if i < 0 {
		return "", "", fmt.Errorf("want \"keyword value\", got %q", clip(line))
	}
	key = line[:i]
	if key == "" {
		return "", "", fmt.Errorf("want \"keyword value\", line starts with blank: %q", clip(line))
	}
	for j := 0; j < len(key); j++ {
		c := key[j]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return "", "", fmt.Errorf("keyword %q: want ASCII letters and digits", clip(key))
		}
	}
	return strings.ToLower(key), strings.TrimLeft(line[i+1:], " \t"), nil
}

// clip shortens s for an error message so garbage input cannot make
// errors enormous.
func clip(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

func (e *Effective) add(key, val string) {
	if e.vals == nil {
		e.vals = make(map[string][]string)
	}
	if _, ok := e.vals[key]; !ok {
		e.keys = append(e.keys, key)
	}
	e.vals[key] = append(e.vals[key], val)
}

// set replaces all values of key (keeping its position if present).
func (e *Effective) set(key string, vals []string) {
	if e.vals == nil {
		e.vals = make(map[string][]string)
	}
	if _, ok := e.vals[key]; !ok {
		e.keys = append(e.keys, key)
	}
	e.vals[key] = vals
}

// Len reports the number of distinct keywords.
func (e Effective) Len() int { return len(e.keys) }

// Keys returns the keywords in the order sshd printed them.
func (e Effective) Keys() []string { return append([]string(nil), e.keys...) }

// Has reports whether sshd printed key at all.
func (e Effective) Has(key string) bool {
	_, ok := e.vals[strings.ToLower(key)]
	return ok
}

// Get returns the first value of key, or "" if sshd did not print it.
// The first is the one sshd uses for single-valued keywords.
func (e Effective) Get(key string) string {
	v := e.vals[strings.ToLower(key)]
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// All returns every value of key in output order (a copy).
func (e Effective) All(key string) []string {
	return append([]string(nil), e.vals[strings.ToLower(key)]...)
}

// List splits every value of key on commas and returns the non-empty
// elements in order: List("kexalgorithms") gives the algorithm names.
// It splits on commas only: "authenticationmethods" alternatives, which
// sshd separates with spaces, stay joined within an element.
func (e Effective) List(key string) []string {
	var out []string
	for _, v := range e.vals[strings.ToLower(key)] {
		for f := range strings.SplitSeq(v, ",") {
			if f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

// Bool reports whether the first value of key is "yes". Tri-state
// keywords (permitrootlogin prohibit-password, ...) are not "yes".
func (e Effective) Bool(key string) bool { return e.Get(key) == "yes" }

// Int parses the first value of key as a decimal integer.
func (e Effective) Int(key string) (int, bool) {
	n, err := strconv.Atoi(e.Get(key))
	return n, err == nil
}
