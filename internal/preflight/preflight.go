// Package preflight is the one judgement of a config against the host,
// shared by `moat config check`, `moat run` (at start and on reload) and
// `moat gateway check|serve`: what the file says (internal/config), then
// what the host must provide for it (the geo database, the gateway's
// certificates and htpasswd files, the access log's directory, who may
// write the jails' logs). Every caller gets the same errors and warnings
// in the same words, so the three commands can never disagree.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/gateway"
	"github.com/moat-sh/moat/internal/geo"
	"github.com/moat-sh/moat/internal/guard"
	"github.com/moat-sh/moat/internal/logwatch"
	"github.com/moat-sh/moat/internal/schema"
)

// Options adjust the check for a command's flags.
type Options struct {
	// GeoPath overrides firewall.geo.database (moat gateway --geo).
	GeoPath string
}

// Warning is something `moat run` would start with but log: printed by
// config check and logged by the daemon in the same words.
type Warning struct{ *schema.Error }

// String is "file:line:col: warning: path: message".
func (w Warning) String() string {
	var b strings.Builder
	if s := w.Pos.String(); s != "" {
		b.WriteString(s + ": ")
	}
	b.WriteString("warning: ")
	if w.Path != "" {
		b.WriteString(w.Path + ": ")
	}
	b.WriteString(w.Msg)
	return b.String()
}

// Load reads the config at path (see config.Load for explicit) and checks
// it against the host. err, when not nil, is a schema.Errors: a config
// error, exit 2 for every command.
func Load(path string, explicit bool, o Options) (*config.Config, []Warning, error) {
	c, err := config.Load(path, explicit)
	if err != nil {
		return nil, nil, err
	}
	warns, errs := Check(c, o)
	if len(errs) > 0 {
		return nil, warns, errs
	}
	return c, warns, nil
}

// Check judges a parsed config against the host.
func Check(c *config.Config, o Options) ([]Warning, schema.Errors) {
	var errs schema.Errors
	var warns []Warning
	warn := func(es schema.Errors) {
		for _, e := range es {
			warns = append(warns, Warning{e})
		}
	}

	// The geo database: a policy that cannot be enforced is refused, not
	// skipped (a geo allowlist without its database would admit nobody
	// or everybody).
	geoPath, geoKey := c.Firewall.Geo.Database, "firewall.geo.database"
	if o.GeoPath != "" {
		geoPath, geoKey = o.GeoPath, ""
	}
	var db *geo.DB
	if geoPath != "" {
		var err error
		if db, err = geo.Open(geoPath); err != nil {
			if geoKey == "" {
				errs = append(errs, &schema.Error{Pos: schema.Pos{File: "--geo"}, Msg: err.Error()})
			} else {
				errs = append(errs, c.Place(geoKey, err)...)
			}
		} else {
			defer db.Close()
		}
	}

	if g := c.Gateway; g != nil {
		rec := newRecorder()
		deps := gateway.Deps{VPN: c.VPN.Prefixes(), Log: slog.New(rec)}
		for _, s := range c.Host.Admin.Sources {
			deps.Admin = append(deps.Admin, s.Prefix)
		}
		if db != nil {
			deps.Geo = db
		}
		if geoPath == "" || db != nil { // else the geo error above says it
			if err := gateway.Check(*g, deps); err != nil {
				errs = append(errs, c.Place("gateway", errors.New(strings.TrimPrefix(err.Error(), "gateway config: ")))...)
			}
		}
		for _, m := range rec.messages() {
			warn(c.Place("gateway", errors.New(m)))
		}
		if g.AccessLog != "" && g.AccessLog != "stdout" {
			if err := creatableDir(filepath.Dir(g.AccessLog)); err != nil {
				errs = append(errs, c.Place("gateway.access_log", err)...)
			}
		}
	}

	// An XOAUTH2 token read at send time: said now, not at the first alert.
	for _, name := range slices.Sorted(maps.Keys(c.Alerts.Notifiers)) {
		n := c.Alerts.Notifiers[name]
		at := "alerts.notifiers." + name
		if n.TokenFile != "" {
			if _, err := os.ReadFile(n.TokenFile); err != nil {
				warn(c.Place(at+".token_file", fmt.Errorf("%v: e-mail alerts fail until the token is there", err)))
			}
		}
		if n.TokenEnv != "" && os.Getenv(n.TokenEnv) == "" {
			warn(c.Place(at+".token_env", fmt.Errorf("$%s is empty here: e-mail alerts fail unless the daemon's environment sets it", n.TokenEnv)))
		}
	}

	// Logs a local user can write let that user get any address banned.
	jails := guard.Jails(c)
	for _, name := range slices.Sorted(maps.Keys(jails)) {
		j := jails[name]
		if j.Filter != "sshd" || j.Source != "auto" || len(j.Paths) > 0 || len(j.Journal) > 0 {
			continue
		}
		// Where moat run will read sshd's log (the journal where journald
		// runs): a file trusts every local user.
		if ch := logwatch.ChooseSSHD(nil); ch.Kind == logwatch.KindFile {
			err := fmt.Errorf("sshd's log source is a file: %s", ch.Reason)
			if _, written := c.Guard.Jails[name]; written {
				warn(c.Place("guard.jails."+name, err))
			} else { // the built-in jail: no line to point at
				warn(schema.Errors{{Pos: schema.Pos{File: c.File}, Path: "guard.jails." + name, Msg: err.Error()}})
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(jails)) {
		for i, p := range jails[name].Paths {
			if why := guard.UntrustedWriter(p); why != "" {
				warn(c.Place(fmt.Sprintf("guard.jails.%s.paths[%d]", name, i),
					fmt.Errorf("a local user can write %s, and so get any address banned: make it root's, mode 0640 (%s)", p, why)))
			}
		}
	}
	return warns, errs
}

// creatableDir reports whether dir exists (or its nearest existing parent
// does) and may be written, so the daemon can create the file there.
func creatableDir(dir string) error {
	d := dir
	for {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory, so %s cannot be created", d, dir)
			}
			if err := syscall.Access(d, 2 /* W_OK */); err != nil {
				if d == dir {
					return fmt.Errorf("directory %s is not writable: %w", d, err)
				}
				return fmt.Errorf("directory %s does not exist and %s is not writable to create it: %w", dir, d, err)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("directory %s: %w", dir, err)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return fmt.Errorf("directory %s cannot be created", dir)
		}
		d = parent
	}
}

// recorder is a slog handler that keeps warnings, for the gateway's
// build-time warnings ("route admits nobody"), which the daemon logs.
type recorder struct {
	sink  *sink
	attrs []slog.Attr
}

type sink struct {
	mu   sync.Mutex
	msgs []string
}

func newRecorder() *recorder { return &recorder{sink: &sink{}} }

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	sep := " ("
	add := func(a slog.Attr) bool {
		b.WriteString(sep + a.Key + "=" + a.Value.String())
		sep = ", "
		return true
	}
	for _, a := range r.attrs {
		add(a)
	}
	rec.Attrs(add)
	if sep == ", " {
		b.WriteString(")")
	}
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	r.sink.msgs = append(r.sink.msgs, b.String())
	return nil
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{sink: r.sink, attrs: append(slices.Clone(r.attrs), as...)}
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

func (r *recorder) messages() []string {
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	return slices.Clone(r.sink.msgs)
}
