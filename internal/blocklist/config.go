package blocklist

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"time"

	"github.com/moat-sh/moat/internal/schema"
)

// Source is one list under guard.blocklists.
type Source struct {
	// Name identifies the list in status, metrics and the cache.
	Name string `yaml:"name"`
	// URL is an https URL; File a local path. Exactly one is set.
	URL  string `yaml:"url"`
	File string `yaml:"file"`
	// Refresh is the time between two fetches (DefaultRefresh when 0).
	Refresh schema.Duration `yaml:"refresh"`
	// MaxBytes bounds a download, after decompression (DefaultMaxBytes
	// when 0).
	MaxBytes int64 `yaml:"max_bytes"`
	// Timeout bounds one fetch, body included (DefaultTimeout when 0).
	Timeout schema.Duration `yaml:"timeout"`
}

// Defaults and bounds of a Source.
const (
	DefaultRefresh  = 12 * time.Hour
	MinRefresh      = 5 * time.Minute
	DefaultMaxBytes = 16 << 20
	MaxMaxBytes     = 256 << 20
	DefaultTimeout  = time.Minute
	// MaxEntries bounds the networks of one list: a list of millions of
	// single addresses is a mistake, and memory the host needs.
	MaxEntries = 1 << 20
)

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// WithDefaults fills the unset fields.
func (s Source) WithDefaults() Source {
	if s.Refresh == 0 {
		s.Refresh = schema.Duration(DefaultRefresh)
	}
	if s.MaxBytes == 0 {
		s.MaxBytes = DefaultMaxBytes
	}
	if s.Timeout == 0 {
		s.Timeout = schema.Duration(DefaultTimeout)
	}
	return s
}

// Where is the list's origin as people read it: the URL or the file.
func (s Source) Where() string {
	if s.URL != "" {
		return s.URL
	}
	return s.File
}

// Validate checks guard.blocklists; paths in errors are relative to it.
func Validate(srcs []Source) error {
	var errs []error
	seen := map[string]bool{}
	for i, s := range srcs {
		at := fmt.Sprintf("blocklists[%d]", i)
		s = s.WithDefaults()
		switch {
		case !validName.MatchString(s.Name):
			errs = append(errs, schema.Errorf(at+".name", "expected a name of lower-case letters, digits, '-', '_' or '.' (like spamhaus-drop), found %q", s.Name))
		case seen[s.Name]:
			errs = append(errs, schema.Errorf(at+".name", "%q names two lists: give each its own name", s.Name))
		}
		seen[s.Name] = true
		switch {
		case (s.URL == "") == (s.File == ""):
			errs = append(errs, schema.Errorf(at, "set exactly one of url (https://…) or file (/path)"))
		case s.URL != "":
			u, err := url.Parse(s.URL)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				errs = append(errs, schema.Errorf(at+".url", "expected an https:// URL, found %q (lists decide what the firewall drops: fetch them over TLS, or download them yourself and use file:)", s.URL))
			}
		case !filepath.IsAbs(s.File):
			errs = append(errs, schema.Errorf(at+".file", "expected an absolute path, found %q", s.File))
		}
		if time.Duration(s.Refresh) < MinRefresh {
			errs = append(errs, schema.Errorf(at+".refresh", "expected at least %s (list publishers throttle clients that ask more often), found %s", MinRefresh, time.Duration(s.Refresh)))
		}
		if s.MaxBytes < 1024 || s.MaxBytes > MaxMaxBytes {
			errs = append(errs, schema.Errorf(at+".max_bytes", "expected 1024 to %d, found %d", MaxMaxBytes, s.MaxBytes))
		}
		if t := time.Duration(s.Timeout); t < time.Second || t > 10*time.Minute {
			errs = append(errs, schema.Errorf(at+".timeout", "expected 1s to 10m, found %s", t))
		}
	}
	return errors.Join(errs...)
}
