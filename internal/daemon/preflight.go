package daemon

import (
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/preflight"
)

// loadConfig loads and judges the config as `moat config check` does
// (internal/preflight), logging its warnings in the same words.
func loadConfig(o Options) (*config.Config, error) {
	cfg, warns, err := preflight.Load(o.ConfigPath, o.Explicit, preflight.Options{})
	for _, w := range warns {
		o.Log.Warn(w.String())
	}
	return cfg, err
}
