package cli

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go4.org/netipx"

	"github.com/moat-sh/moat/internal/blocklist"
)

func init() {
	register(command{"blocklist", "blocklist check [FILE...]: parse lists as moat run would (the configured ones when no FILE)", 66, runBlocklist})
}

// runBlocklist is `moat blocklist check`: each list parsed whole, its
// first malformed line named, nothing loaded. Without files it fetches
// every list of guard.blocklists once (unconditionally).
func runBlocklist(e *env, args []string) int {
	const synopsis = "blocklist check [-c FILE] [--timeout 1m] [LIST_FILE...]"
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(e.stderr, "Usage: moat "+synopsis)
		return ExitUsage
	}
	f := newFlags(e, "blocklist check", synopsis)
	timeout := f.Duration("timeout", time.Minute, "how long fetching each configured list may take")
	if code, ok := f.parse(args[1:]); !ok {
		return code
	}
	type item struct {
		name string
		data func() ([]byte, error)
	}
	var items []item
	for _, p := range f.Args() {
		items = append(items, item{p, func() ([]byte, error) {
			return fetchOnce(&blocklist.FileFeed{Path: p, MaxBytes: blocklist.MaxMaxBytes})
		}})
	}
	if len(items) == 0 {
		c, code, ok := loadConfig(e, f)
		if !ok {
			return code
		}
		if len(c.Guard.Blocklists) == 0 {
			fmt.Fprintln(e.stderr, "moat blocklist check: no lists under guard.blocklists and no LIST_FILE given")
			return ExitUsage
		}
		for _, s := range c.Guard.Blocklists {
			s = s.WithDefaults()
			var feed blocklist.Feed = &blocklist.FileFeed{Path: s.File, MaxBytes: s.MaxBytes}
			if s.URL != "" {
				feed = &blocklist.HTTPFeed{URL: s.URL, MaxBytes: s.MaxBytes, Timeout: *timeout}
			}
			items = append(items, item{s.Name + " (" + s.Where() + ")", func() ([]byte, error) {
				return fetchOnce(feed)
			}})
		}
	}
	code := ExitOK
	for _, it := range items {
		data, err := it.data()
		if err != nil {
			fmt.Fprintf(e.stdout, "%s: FAILED: %v\n", it.name, err)
			code = ExitRuntime
			continue
		}
		ps, err := blocklist.Parse(bytes.NewReader(data), blocklist.MaxEntries)
		if err != nil {
			fmt.Fprintf(e.stdout, "%s: REFUSED, nothing of it would be applied: %v\n", it.name, err)
			code = ExitUsage
			continue
		}
		var b netipx.IPSetBuilder
		v4 := 0
		for _, p := range ps {
			b.AddPrefix(p)
			if p.Addr().Is4() {
				v4++
			}
		}
		set, _ := b.IPSet()
		fmt.Fprintf(e.stdout, "%s: ok, %d networks (%d IPv4, %d IPv6), %d ranges merged\n", it.name, len(ps), v4, len(ps)-v4, len(set.Ranges()))
	}
	return code
}

func fetchOnce(f blocklist.Feed) ([]byte, error) {
	got, err := f.Fetch(context.Background(), blocklist.Validators{})
	return got.Data, err
}
