package f2bimport

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Config is a set of fail2ban files merged as fail2ban merges them: later
// files override earlier ones option by option, and the value an option
// had before it was overridden stays reachable as %(known/name)s.
type Config struct {
	Defaults map[string]string
	sections map[string]map[string]string
	order    []string // section names in first-seen order
	Files    []string // the files read, in order
}

// Sections returns the section names in the order they first appeared.
func (c *Config) Sections() []string { return c.order }

// Has reports whether section exists.
func (c *Config) Has(section string) bool { _, ok := c.sections[section]; return ok }

// Own returns the options set in section itself (not from [DEFAULT]).
func (c *Config) Own(section string) map[string]string { return c.sections[section] }

// configFiles lists base.conf, base.d/*.conf, base.local, base.d/*.local
// under dir, in that order, the ones that exist: fail2ban's order.
func configFiles(dir, base string) []string {
	var out []string
	add := func(p string) {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	glob := func(pat string) {
		m, _ := filepath.Glob(pat)
		sort.Strings(m)
		for _, p := range m {
			add(p)
		}
	}
	add(filepath.Join(dir, base+".conf"))
	glob(filepath.Join(dir, base+".d", "*.conf"))
	add(filepath.Join(dir, base+".local"))
	glob(filepath.Join(dir, base+".d", "*.local"))
	return out
}

// Read reads base (jail, or filter.d/NAME) under dir the way fail2ban
// does: the file list above, each file with its [INCLUDES] before and
// after, and each .conf named followed by its .local sibling.
func Read(dir, base string) (*Config, error) {
	files := configFiles(dir, base)
	if len(files) == 0 {
		return nil, fmt.Errorf("no %s.conf or %s.local under %s: %w", base, base, dir, fs.ErrNotExist)
	}
	return readFiles(files)
}

func readFiles(files []string) (*Config, error) {
	c := newConfig()
	cache := map[string]*File{}
	var all []string
	for _, f := range expandLocal(files) {
		inc, err := includes(f, nil, cache)
		if err != nil {
			return nil, err
		}
		all = append(all, inc...)
	}
	for _, p := range all {
		c.Files = append(c.Files, p)
		c.merge(cache[p])
	}
	return c, nil
}

func newConfig() *Config {
	return &Config{Defaults: map[string]string{}, sections: map[string]map[string]string{}}
}

// merge lays f over c, keeping overridden values as KNOWN/section.
func (c *Config) merge(f *File) {
	{
		for k, v := range f.Defaults {
			c.Defaults[k] = v
		}
		for _, s := range f.Sections {
			prev, ok := c.sections[s.Name]
			if !ok {
				c.sections[s.Name] = copyMap(s.Options)
				c.order = append(c.order, s.Name)
				continue
			}
			known := c.sections["KNOWN/"+s.Name]
			if known == nil {
				known = map[string]string{}
				c.sections["KNOWN/"+s.Name] = known
			}
			for k, v := range s.Options {
				if old, had := prev[k]; had {
					known[k] = old
				}
				prev[k] = v
			}
		}
	}
}

// maxIncludes bounds the include tree, against a config that includes
// itself through many names.
const maxIncludes = 256

// includes returns file's include tree, before files first: the leaves in
// reading order, each file read once into cache.
func includes(file string, seen []string, cache map[string]*File) ([]string, error) {
	if len(seen) > 32 || len(cache) > maxIncludes {
		return nil, fmt.Errorf("%s: includes nest too deep", file)
	}
	f, ok := cache[file]
	if !ok {
		data, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // fail2ban skips missing includes (paths-overrides.local)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		if f, err = ParseINI(file, data); err != nil {
			return nil, err
		}
		cache[file] = f
	}
	var before, after []string
	if inc := f.Section("INCLUDES"); inc != nil {
		for _, which := range []struct {
			key string
			to  *[]string
		}{{"before", &before}, {"after", &after}} {
			for _, r := range strings.Split(inc.Options[which.key], "\n") {
				r = strings.TrimSpace(r)
				if r == "" {
					continue
				}
				if !filepath.IsAbs(r) {
					r = filepath.Join(filepath.Dir(file), r)
				}
				if contains(seen, r) || r == file {
					continue
				}
				for _, e := range expandLocal([]string{r}) {
					sub, err := includes(e, append(seen, file), cache)
					if err != nil {
						return nil, err
					}
					*which.to = append(*which.to, sub...)
				}
			}
		}
	}
	out := append(before, file)
	return append(out, after...), nil
}

// expandLocal follows each NAME.conf with NAME.local when that exists and
// is not listed already.
func expandLocal(files []string) []string {
	var out []string
	for _, f := range files {
		out = append(out, f)
		if strings.HasSuffix(f, ".conf") {
			l := strings.TrimSuffix(f, ".conf") + ".local"
			if contains(files, l) {
				continue
			}
			if st, err := os.Stat(l); err == nil && st.Mode().IsRegular() {
				out = append(out, l)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
