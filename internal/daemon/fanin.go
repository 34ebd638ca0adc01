package daemon

import (
	"context"
	"log/slog"
	"sync"

	"github.com/moat-sh/moat/internal/logwatch"
)

// multiSource follows several files for one jail, handing batches to the
// jail's handler one at a time (its filter is not safe for concurrent use).
type multiSource struct{ srcs []logwatch.Source }

func fanIn(name string, paths []string, store logwatch.Store, log *slog.Logger) (logwatch.Source, string, error) {
	m := &multiSource{}
	for _, p := range paths {
		src, err := logwatch.NewFile(logwatch.FileConfig{Path: p, Name: "file:" + p, Store: store, Log: log})
		if err != nil {
			return nil, "", err
		}
		m.srcs = append(m.srcs, src)
	}
	return m, "files: " + joinPaths(paths), nil
}

func (m *multiSource) Run(ctx context.Context, h logwatch.Handler) error {
	var mu sync.Mutex
	locked := func(b []logwatch.Line) error {
		mu.Lock()
		defer mu.Unlock()
		return h(b)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(m.srcs))
	for _, s := range m.srcs {
		go func() { errs <- s.Run(ctx, locked) }()
	}
	var first error
	for range m.srcs {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

func joinPaths(ps []string) string {
	out := ""
	for i, p := range ps {
		if i > 0 {
			out += ", "
		}
		out += p
	}
	return out
}
