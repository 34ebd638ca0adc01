package f2bimport

import (
	"errors"
	"fmt"
	"strings"
)

// maxDepth is Python configparser's interpolation depth limit.
const maxDepth = 10

// maxValue bounds an interpolated value: ten levels of references, each
// repeated, would otherwise grow without end.
const maxValue = 1 << 20

// ErrNoOption is returned for an option neither the section, the vars
// nor [DEFAULT] define.
var ErrNoOption = errors.New("no such option")

// Raw returns option in section without interpolation: vars first, then
// the section, then [DEFAULT], as configparser looks it up.
func (c *Config) Raw(section, option string, vars map[string]string) (string, bool) {
	if v, ok := vars[option]; ok {
		return v, true
	}
	if s, ok := c.sections[section]; ok {
		if v, ok := s[option]; ok {
			return v, true
		}
	}
	v, ok := c.Defaults[option]
	return v, ok
}

// Get returns option in section with fail2ban's interpolation: %(name)s
// from vars, the section or [DEFAULT] (with __name__ the section's name),
// %(section/name)s from another section, %(default/name)s from [DEFAULT],
// %(known/name)s from the value name had before a later file overrode it,
// and %% for a percent sign. An option of the form section/name is read
// as get_ex reads it.
func (c *Config) Get(section, option string, vars map[string]string) (string, error) {
	if sec, opt, ok := strings.Cut(option, "/"); ok && sec != "" && opt != "" {
		for _, s := range sectionsFor(section, sec) {
			if v, ok := c.sections[s][opt]; ok {
				return c.interpolate(s, opt, v, vars, 1)
			}
		}
		if strings.EqualFold(sec, "default") {
			if v, ok := c.Defaults[opt]; ok {
				return c.interpolate(section, opt, v, vars, 1)
			}
		}
	}
	v, ok := c.Raw(section, option, vars)
	if !ok {
		return "", fmt.Errorf("[%s] %s: %w", section, option, ErrNoOption)
	}
	return c.interpolate(section, option, v, vars, 1)
}

func sectionsFor(cur, sec string) []string {
	switch strings.ToLower(sec) {
	case "known":
		return []string{"KNOWN/" + cur, cur}
	case "default":
		return nil
	}
	return []string{sec}
}

// lookup resolves one %(name)s inside section.
func (c *Config) lookup(section, name string, vars map[string]string) (string, bool) {
	name = strings.ToLower(name)
	if name == "__name__" {
		if v, ok := vars[name]; ok {
			return v, true
		}
		return section, true
	}
	if v, ok := c.Raw(section, name, vars); ok {
		return v, true
	}
	sec, opt, ok := strings.Cut(name, "/")
	if !ok {
		return "", false
	}
	switch sec {
	case "known":
		if v, ok := c.sections["KNOWN/"+section][opt]; ok {
			return v, true
		}
	case "default":
	default:
		s, ok := c.sections[sec]
		if !ok {
			return "", false
		}
		if v, ok := s[opt]; ok {
			return v, true
		}
	}
	v, ok := c.Defaults[opt]
	return v, ok
}

func (c *Config) interpolate(section, option, v string, vars map[string]string, depth int) (string, error) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	if depth > maxDepth {
		return "", fmt.Errorf("[%s] %s: interpolation nests deeper than %d (a value that refers to itself?)", section, option, maxDepth)
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(v, '%')
		if i < 0 {
			b.WriteString(v)
			return b.String(), nil
		}
		b.WriteString(v[:i])
		v = v[i:]
		switch {
		case strings.HasPrefix(v, "%%"):
			b.WriteByte('%')
			v = v[2:]
		case strings.HasPrefix(v, "%("):
			end := strings.Index(v, ")s")
			close := strings.IndexByte(v, ')')
			if end < 0 || close != end || end == 2 {
				return "", fmt.Errorf("[%s] %s: bad interpolation %q: expected %%(name)s", section, option, clip(v))
			}
			name := v[2:end]
			raw, ok := c.lookup(section, name, vars)
			if !ok {
				return "", fmt.Errorf("[%s] %s refers to %%(%s)s, which nothing defines", section, option, name)
			}
			sub, err := c.interpolate(section, option, raw, vars, depth+1)
			if err != nil {
				return "", err
			}
			b.WriteString(sub)
			if b.Len() > maxValue {
				return "", fmt.Errorf("[%s] %s: interpolates to more than %d bytes", section, option, maxValue)
			}
			v = v[end+2:]
		default:
			return "", fmt.Errorf("[%s] %s: '%%' must be followed by '%%' or '(' in %q", section, option, clip(v))
		}
	}
}
