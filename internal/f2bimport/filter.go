package f2bimport

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// Filter is a fail2ban filter read for one jail: its regexes with every
// %(name)s and <tag> expanded as fail2ban expands them.
type Filter struct {
	Name         string
	PrefRegex    string
	FailRegex    []string
	IgnoreRegex  []string
	JournalMatch []string // one entry per line, words separated by spaces
	MaxLines     string
	DatePattern  string // "" for fail2ban's default
	Journal      bool   // read from the journal: lines carry no date
}

// ReadFilter reads filter.d/name under dir with the jail's options
// (mode=aggressive) and the backend's log type, as fail2ban's
// FilterReader does.
func ReadFilter(dir, name string, opts map[string]string, backend string) (*Filter, error) {
	if strings.ContainsAny(name, "/\\") || name == "" || name == "." || name == ".." {
		return nil, fmt.Errorf("filter name %q: expected a file name under filter.d", name)
	}
	c, err := Read(dir, filepath.Join("filter.d", name))
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for k, v := range opts {
		vars[strings.ToLower(k)] = v
	}
	for k, v := range c.Own("Init") {
		if _, ok := vars[k]; !ok {
			vars[k] = v
		}
		vars["known/"+k] = v
	}
	if _, ok := vars["logtype"]; !ok {
		if _, def := c.Own("Definition")["logtype"]; !def {
			vars["logtype"] = "file"
			if strings.HasPrefix(backend, "systemd") {
				vars["logtype"] = "journal"
			}
		}
	}
	f := &Filter{Name: name}
	x := &tagExpander{c: c, vars: vars}
	get := func(opt string) (string, error) {
		v, err := c.Get("Definition", opt, vars)
		if err != nil {
			if isMissing(err) {
				return "", nil
			}
			return "", err
		}
		return x.expand(v)
	}
	if f.PrefRegex, err = get("prefregex"); err != nil {
		return nil, err
	}
	for _, opt := range []struct {
		key string
		to  *[]string
	}{{"failregex", &f.FailRegex}, {"ignoreregex", &f.IgnoreRegex}, {"journalmatch", &f.JournalMatch}} {
		v, err := get(opt.key)
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Split(v, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				*opt.to = append(*opt.to, l)
			}
		}
	}
	if f.MaxLines, err = get("maxlines"); err != nil {
		return nil, err
	}
	if f.DatePattern, err = get("datepattern"); err != nil {
		return nil, err
	}
	f.Journal = strings.HasPrefix(backend, "systemd")
	return f, nil
}

func isMissing(err error) bool {
	return err != nil && strings.HasSuffix(err.Error(), ErrNoOption.Error())
}

// tagRE is fail2ban's TAG_CRE: <name> without blank space or brackets.
var tagRE = regexp.MustCompile(`<([^ <>]+)>`)

// maxTagReplacements bounds the expansion, against tags that refer to
// each other (fail2ban gives up the same way).
const maxTagReplacements = 2000

type tagExpander struct {
	c    *Config
	vars map[string]string
}

// lookup finds the value of <tag>: a filter option, an [Init] value or
// jail option, or section/option.
func (x *tagExpander) lookup(tag string) (string, bool) {
	if v, ok := x.vars[tag]; ok {
		return v, true
	}
	if isKnownTag(tag) {
		return "", false
	}
	v, err := x.c.Get("Definition", tag, x.vars)
	if err != nil {
		return "", false
	}
	return v, true
}

// isKnownTag reports the tags fail2ban fills at match time, never from
// options.
func isKnownTag(tag string) bool {
	switch tag {
	case "HOST", "ADDR", "IP4", "IP6", "DNS", "CIDR", "SUBNET", "SKIPLINES", "HOSTNAME":
		return true
	}
	return strings.HasPrefix(tag, "F-") || strings.HasPrefix(tag, "/F-")
}

// expand replaces every <tag> an option defines, innermost first, until
// none is left; tags nothing defines stay as they are.
func (x *tagExpander) expand(v string) (string, error) {
	from := 0
	for n := 0; ; n++ {
		if n > maxTagReplacements || len(v) > 1<<20 {
			return "", fmt.Errorf("tags refer to each other without end (near %q)", clip(v))
		}
		loc := tagRE.FindStringSubmatchIndex(v[from:])
		if loc == nil {
			return v, nil
		}
		s, e := from+loc[0], from+loc[1]
		tag := v[from+loc[2] : from+loc[3]]
		repl, ok := x.lookup(tag)
		if !ok {
			from = e
			continue
		}
		v = v[:s] + repl + v[e:]
		// A replacement can complete an enclosing tag
		// (<lt_<logtype>/x> → <lt_file/x>): look again from the start of
		// the enclosing text.
		from = strings.LastIndexByte(v[:s], '<')
		if from < 0 || strings.Contains(v[from:s], ">") {
			from = s
		}
	}
}
