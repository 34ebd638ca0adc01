package f2bimport

import (
	"fmt"
	"strings"
)

// maxFileSize bounds one config file: fail2ban's own are under 40 KiB.
const maxFileSize = 4 << 20

// File is one parsed INI file, as Python's configparser reads it for
// fail2ban: section names case-sensitive, option names lower-cased,
// '=' or ':' between name and value, indented lines continuing a value,
// '#' and ';' starting a comment line and ';' after blank space ending a
// value early.
type File struct {
	Name     string
	Defaults map[string]string
	Sections []*Section
}

// Section is one [name] of a file, its options in no particular order.
type Section struct {
	Name    string
	Options map[string]string
}

// Section returns the section called name, or nil.
func (f *File) Section(name string) *Section {
	for _, s := range f.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// ParseINI parses one file. Like fail2ban (which refuses to start on
// them), it rejects a section or option given twice in one file, an
// option outside any section and a line that is none of these.
func ParseINI(name string, data []byte) (*File, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a fail2ban config", name, maxFileSize)
	}
	f := &File{Name: name, Defaults: map[string]string{}}
	var (
		cur       map[string]string // options of the current section
		curName   string
		opt       string   // option being read, "" if none
		optIndent int      // its line's indent
		lines     []string // its value's lines
		seenOpts  map[string]bool
	)
	flush := func() {
		if opt != "" {
			cur[opt] = strings.TrimRight(strings.Join(lines, "\n"), " \t\r\n")
		}
		opt, lines = "", nil
	}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	for i, line := range strings.Split(text, "\n") {
		lineno := i + 1
		errf := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", name, lineno, fmt.Sprintf(format, a...))
		}
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, ";") {
			continue // a comment line, even inside a value
		}
		value := stripInline(line)
		if strings.TrimSpace(value) == "" {
			if opt != "" {
				lines = append(lines, "")
			}
			continue
		}
		indent := len(value) - len(strings.TrimLeft(value, " \t"))
		if cur != nil && opt != "" && indent > optIndent {
			lines = append(lines, strings.TrimSpace(value))
			continue
		}
		flush()
		value = strings.TrimSpace(value)
		// A header is "[" up to the line's last "]", as configparser's
		// greedy \[(.+)\] reads it ("[sshd] # note" is [sshd]).
		if end := strings.LastIndexByte(value, ']'); value[0] == '[' && end > 1 {
			curName = value[1:end]
			if curName == "DEFAULT" {
				cur = f.Defaults
			} else {
				if f.Section(curName) != nil {
					return nil, errf("section [%s] given twice in one file", curName)
				}
				s := &Section{Name: curName, Options: map[string]string{}}
				f.Sections = append(f.Sections, s)
				cur = s.Options
			}
			seenOpts = map[string]bool{}
			continue
		}
		if cur == nil {
			return nil, errf("an option before any [section]: %q", clip(value))
		}
		k := strings.IndexAny(value, "=:")
		if k < 0 {
			return nil, errf("expected name = value, found %q", clip(value))
		}
		key := strings.ToLower(strings.TrimSpace(value[:k]))
		if key == "" {
			return nil, errf("an option without a name: %q", clip(value))
		}
		if seenOpts[key] {
			return nil, errf("option %q given twice in [%s]", key, curName)
		}
		seenOpts[key] = true
		opt, optIndent = key, indent
		lines = []string{strings.TrimSpace(value[k+1:])}
	}
	flush()
	return f, nil
}

// stripInline cuts a ';' comment preceded by blank space.
func stripInline(line string) string {
	for i := 1; i < len(line); i++ {
		if line[i] == ';' && (line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
