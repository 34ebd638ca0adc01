package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// The blocklists bucket: a JetStream key-value bucket where the host that
// fetches a list publishes its raw bytes under <origin>.<list>, and every
// member watches, so a list is fetched once per fleet. Each host may write
// under its own origin only (Permissions); readers parse the bytes as if
// they had fetched them, and refuse a list that fails to parse.

func listsBucket(fleet string) string { return "moat_lists_" + fleet }
func listsStream(fleet string) string { return "KV_" + listsBucket(fleet) }

// MaxListSize bounds a distributed list (NATS's payload limit).
const MaxListSize = 1 << 20

// ListUpdate is one list's bytes as a member published them.
type ListUpdate struct {
	Origin string
	Name   string
	Data   []byte
	// Deleted is set when the origin withdrew the list.
	Deleted bool
	// Time is when the origin published it (signed).
	Time time.Time
	// Err, when set, is why the update was refused: not signed by its
	// origin's key (fleet.hosts), or malformed. Data is nil then.
	Err error
}

// Lists is the fleet's blocklists bucket.
type Lists struct {
	kv     jetstream.KeyValue
	fleet  string
	origin string
	key    nkeys.KeyPair
	ver    *verifier
	now    func() time.Time
}

// Lists opens (creating if need be) the fleet's blocklists bucket.
func (cl *Client) Lists(ctx context.Context) (*Lists, error) {
	kv, err := cl.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: listsBucket(cl.cfg.Name), Description: "moat blocklists of fleet " + cl.cfg.Name,
		History: 1, MaxValueSize: MaxListSize, Replicas: cl.cfg.Replicas(), Storage: jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = cl.js.KeyValue(ctx, listsBucket(cl.cfg.Name))
	}
	if err != nil {
		return nil, fmt.Errorf("fleet: blocklists bucket: %w", err)
	}
	return &Lists{kv: kv, fleet: cl.cfg.Name, origin: cl.cfg.Origin(), key: cl.key, ver: newVerifier(cl.cfg), now: cl.o.Now}, nil
}

// Publish stores list name's raw bytes under this host's origin, signed
// with its key.
func (l *Lists) Publish(ctx context.Context, name string, data []byte) error {
	if !ValidToken(name) {
		return fmt.Errorf("fleet: list name %q: letters, digits, '-' and '_' only", name)
	}
	if len(data) > MaxListSize {
		return fmt.Errorf("fleet: list %s is %d bytes, more than the %d a fleet distributes", name, len(data), MaxListSize)
	}
	sealed, err := sealList(l.fleet, l.origin, name, l.now(), l.key, data)
	if err != nil {
		return fmt.Errorf("fleet: sign list %s: %w", name, err)
	}
	if len(sealed) > MaxListSize {
		return fmt.Errorf("fleet: list %s is %d bytes signed, more than the %d a fleet distributes", name, len(sealed), MaxListSize)
	}
	_, err = l.kv.Put(ctx, l.origin+"."+name, sealed)
	if err != nil {
		return fmt.Errorf("fleet: publish list %s: %w", name, err)
	}
	return nil
}

// Watch calls fn with every list in the bucket, then with every update,
// until ctx ends. fn runs on one goroutine.
func (l *Lists) Watch(ctx context.Context, fn func(ListUpdate)) error {
	w, err := l.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("fleet: watch lists: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil { // the initial values are all delivered
				continue
			}
			origin, name, ok := strings.Cut(e.Key(), ".")
			if !ok || !ValidToken(origin) || !ValidToken(name) {
				continue
			}
			u := ListUpdate{Origin: origin, Name: name, Time: e.Created(), Deleted: e.Operation() != jetstream.KeyValuePut}
			if !u.Deleted {
				u.Data, u.Time, u.Err = l.ver.openList(origin, name, e.Value())
			}
			fn(u)
		}
	}
}

// Latest returns the newest copy of list name any member published, and
// whether there is one: a host whose copy is fresh enough skips its own
// fetch, so the fleet fetches a list about once per refresh.
func (l *Lists) Latest(ctx context.Context, name string) (ListUpdate, bool, error) {
	return l.LatestFrom(ctx, name, nil)
}

// LatestFrom is Latest among the origins accept takes (nil: all).
func (l *Lists) LatestFrom(ctx context.Context, name string, accept func(origin string) bool) (ListUpdate, bool, error) {
	if !ValidToken(name) {
		return ListUpdate{}, false, fmt.Errorf("fleet: list name %q: letters, digits, '-' and '_' only", name)
	}
	keys, err := l.kv.ListKeysFiltered(ctx, "*."+name)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return ListUpdate{}, false, nil
	}
	if err != nil {
		return ListUpdate{}, false, fmt.Errorf("fleet: list %s: %w", name, err)
	}
	var best ListUpdate
	found := false
	for k := range keys.Keys() {
		origin, _, _ := strings.Cut(k, ".")
		if accept != nil && !accept(origin) {
			continue
		}
		e, err := l.kv.Get(ctx, k)
		if err != nil {
			continue
		}
		data, t, err := l.ver.openList(origin, name, e.Value())
		if err != nil {
			continue // not its origin's: as if absent
		}
		if !found || t.After(best.Time) {
			best, found = ListUpdate{Origin: origin, Name: name, Data: data, Time: t}, true
		}
	}
	return best, found, nil
}
