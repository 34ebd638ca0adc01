package audit

import (
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// f2bConfig is fail2ban's configuration as its ConfigParser sees it after
// reading every file of one kind ("jail"): sections of lowercased option
// names, later files overriding earlier ones.
type f2bConfig struct {
	sections map[string]map[string]string
}

// f2bMaxFiles bounds how many files one read follows (jail.d/, INCLUDES).
const f2bMaxFiles = 128

// readFail2ban reads <dir>/<name>.conf, <name>.d/*.conf, <name>.local and
// <name>.d/*.local, in that order (fail2ban's ConfigReader), each preceded
// by its [INCLUDES] before= files and followed by its after= files.
// readFile returns a file's content, or an error when it cannot be read
// (such files are skipped, as fail2ban does).
func readFail2ban(readFile func(string) ([]byte, error), glob func(string) []string, dir, name string) *f2bConfig {
	c := &f2bConfig{sections: map[string]map[string]string{}}
	files := []string{path.Join(dir, name+".conf")}
	confs := glob(path.Join(dir, name+".d", "*.conf"))
	sort.Strings(confs)
	files = append(files, confs...)
	files = append(files, path.Join(dir, name+".local"))
	locals := glob(path.Join(dir, name+".d", "*.local"))
	sort.Strings(locals)
	files = append(files, locals...)
	count := 0
	for _, f := range files {
		c.readWithIncludes(readFile, f, &count, 0)
	}
	return c
}

func (c *f2bConfig) readWithIncludes(readFile func(string) ([]byte, error), file string, count *int, depth int) {
	if depth > 8 || *count >= f2bMaxFiles {
		return
	}
	*count++
	b, err := readFile(file)
	if err != nil {
		return
	}
	own := parseINI(string(b))
	inc := own["INCLUDES"]
	resolve := func(list string) []string {
		var out []string
		for _, p := range strings.Fields(list) {
			if !strings.HasPrefix(p, "/") {
				p = path.Join(path.Dir(file), p)
			}
			out = append(out, p)
		}
		return out
	}
	for _, p := range resolve(inc["before"]) {
		c.readWithIncludes(readFile, p, count, depth+1)
	}
	c.merge(own)
	for _, p := range resolve(inc["after"]) {
		c.readWithIncludes(readFile, p, count, depth+1)
	}
}

func (c *f2bConfig) merge(s map[string]map[string]string) {
	for sec, opts := range s {
		if sec == "INCLUDES" {
			continue
		}
		m := c.sections[sec]
		if m == nil {
			m = map[string]string{}
			c.sections[sec] = m
		}
		for k, v := range opts {
			m[k] = v
		}
	}
}

// parseINI reads one file the way Python's configparser does with
// fail2ban's settings: "[section]" headers; "key = value" or
// "key: value" (the first '=' or ':' splits); keys lowercased and
// trimmed; whole-line comments starting with '#' or ';'; inline comments
// after " ;"; lines indented deeper than their option continue its value.
func parseINI(text string) map[string]map[string]string {
	out := map[string]map[string]string{}
	var sec map[string]string
	var key string
	keyIndent := -1
	for raw := range strings.SplitSeq(text, "\n") {
		raw = strings.TrimRight(raw, "\r")
		trimmed := strings.TrimSpace(raw)
		if trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';' {
			if trimmed == "" {
				continue // an empty line inside a value adds nothing that matters here
			}
			continue
		}
		line := stripInlineComment(raw)
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		value := strings.TrimSpace(line)
		if value == "" {
			continue
		}
		if sec != nil && key != "" && indent > keyIndent {
			sec[key] = strings.TrimSpace(sec[key] + "\n" + value)
			continue
		}
		if strings.HasPrefix(value, "[") && strings.HasSuffix(value, "]") && len(value) > 2 {
			name := value[1 : len(value)-1]
			sec = out[name]
			if sec == nil {
				sec = map[string]string{}
				out[name] = sec
			}
			key, keyIndent = "", -1
			continue
		}
		if sec == nil {
			continue // an option before any section: configparser refuses the file
		}
		i := strings.IndexAny(value, "=:")
		if i < 0 {
			key = ""
			continue // configparser: a parsing error for this line
		}
		key = strings.ToLower(strings.TrimSpace(value[:i]))
		keyIndent = indent
		sec[key] = strings.TrimSpace(value[i+1:])
	}
	return out
}

// stripInlineComment drops a ';' comment that follows whitespace.
func stripInlineComment(line string) string {
	for i := 1; i < len(line); i++ {
		if line[i] == ';' && (line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

// get returns an option of sec, falling back to [DEFAULT], with
// %(name)s references resolved (%(sec/name)s reads another section, as
// fail2ban allows; %% is '%'). ok is false when the option is set
// nowhere or a reference cannot be resolved.
func (c *f2bConfig) get(sec, key string) (string, bool) {
	budget := f2bInterpolationBudget
	return c.lookup(sec, strings.ToLower(key), 0, &budget)
}

// f2bInterpolationBudget bounds the references one get resolves and
// f2bMaxValue the length of what it returns, so that a file whose values
// each name the next several times cannot grow the work exponentially.
const (
	f2bInterpolationBudget = 1000
	f2bMaxValue            = 64 << 10
)

func (c *f2bConfig) raw(sec, key string) (string, bool) {
	if v, ok := c.sections[sec][key]; ok {
		return v, true
	}
	v, ok := c.sections["DEFAULT"][key]
	return v, ok
}

func (c *f2bConfig) lookup(sec, key string, depth int, budget *int) (string, bool) {
	v, ok := c.raw(sec, key)
	*budget--
	if !ok || depth > 10 || *budget < 0 {
		return "", false
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(v, '%')
		if i < 0 || i+1 >= len(v) {
			b.WriteString(v)
			return b.String(), true
		}
		b.WriteString(v[:i])
		switch v[i+1] {
		case '%':
			b.WriteByte('%')
			v = v[i+2:]
			continue
		case '(':
			end := strings.Index(v[i:], ")s")
			if end < 0 {
				return "", false
			}
			name := strings.ToLower(v[i+2 : i+end])
			v = v[i+end+2:]
			s, k := sec, name
			if a, bb, ok := strings.Cut(name, "/"); ok {
				s, k = a, bb
				if strings.EqualFold(s, "default") {
					s = "DEFAULT"
				}
				if s == "known" {
					s = sec // fail2ban: the value before this file's override; close enough here
				}
			}
			if k == "__name__" {
				b.WriteString(sec)
				continue
			}
			r, ok := c.lookup(s, k, depth+1, budget)
			if !ok || b.Len()+len(r) > f2bMaxValue {
				return "", false
			}
			b.WriteString(r)
		default:
			return "", false // configparser: a bare '%' is an error
		}
	}
}

// f2bBool is configparser's getboolean: 1/yes/true/on and 0/no/false/off,
// any case; anything else is invalid (fail2ban then warns and uses the
// default).
func f2bBool(v string) (val, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "yes", "true", "on":
		return true, true
	case "0", "no", "false", "off":
		return false, true
	}
	return false, false
}

// fail2banSSHD reads fail2ban's sshd jail the way fail2ban layers its
// files: jail.conf (with its INCLUDES, paths-*.conf), jail.d/*.conf,
// jail.local, jail.d/*.local, later wins; [sshd] over [DEFAULT];
// interpolation resolved. A reference that cannot be resolved because
// the paths file is absent falls back to Debian's values.
func (f *facts) fail2banSSHD() f2bJail {
	glob := func(p string) []string {
		m, _ := filepath.Glob(f.h.Path(p))
		var out []string
		for _, x := range m {
			if rel, err := filepath.Rel(f.h.Path("/"), x); err == nil {
				out = append(out, "/"+filepath.ToSlash(rel))
			}
		}
		return out
	}
	c := readFail2ban(f.h.ReadFile, glob, "/etc/fail2ban", "jail")
	j := f2bJail{backend: "auto"}
	if v, ok := c.get("sshd", "enabled"); ok {
		j.enabled, _ = f2bBool(v)
	}
	if v, ok := c.get("sshd", "backend"); ok && v != "" {
		j.backend = v
	} else if _, set := c.raw("sshd", "backend"); set {
		j.backend = "auto" // %(sshd_backend)s without paths-*.conf: Debian's default_backend
	}
	lp, ok := c.get("sshd", "logpath")
	if !ok {
		lp = "/var/log/auth.log" // Debian's sshd_log (paths-common.conf: syslog_authpriv)
	}
	for _, line := range strings.Split(lp, "\n") {
		// "path [head|tail]" per line (fail2ban's logpath syntax).
		fs := strings.Fields(line)
		for i, p := range fs {
			if i > 0 && (p == "head" || p == "tail") {
				continue
			}
			j.logpaths = append(j.logpaths, p)
		}
	}
	return j
}
