package fleet

import (
	"maps"
	"sync"
	"time"
)

// Tally counts decisions per origin by the minute over the last hour,
// for `moat fleet status`.
type Tally struct {
	mu sync.Mutex
	m  map[string]*[60]minute
}

type minute struct {
	at int64 // unix minute
	n  int
}

// Add counts n decisions of origin at t.
func (t *Tally) Add(origin string, at time.Time, n int) {
	if n <= 0 {
		return
	}
	m := at.Unix() / 60
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]*[60]minute{}
	}
	b, ok := t.m[origin]
	if !ok {
		if len(t.m) >= 1024 { // bounded: origins are the fleet's hosts
			return
		}
		b = &[60]minute{}
		t.m[origin] = b
	}
	s := &b[m%60]
	if s.at != m {
		*s = minute{at: m}
	}
	s.n += n
}

// LastHour returns each origin's count over the hour before now.
func (t *Tally) LastHour(now time.Time) map[string]int {
	m := now.Unix() / 60
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for o, b := range t.m {
		for _, s := range b {
			if s.at > m-60 && s.at <= m {
				out[o] += s.n
			}
		}
	}
	return maps.Clone(out)
}
