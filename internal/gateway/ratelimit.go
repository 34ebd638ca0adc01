package gateway

import (
	"math"
	"net/netip"
	"sync"
	"time"
)

// A limiter is a token bucket per client, in a bounded LRU table.
//
// Clients are keyed by IPv4 address and by IPv6 /64 (one subscriber's
// allocation: per-address keys would hand each attacker 2^64 buckets). The
// table holds at most limiterCapacity clients per route, in limiterShards
// independently locked shards; when a shard is full, its least recently
// seen client is forgotten, which only ever resets that client to a full
// bucket. An entry costs about 150 bytes, so a route's table stays under
// 10 MiB however many addresses a flood comes from.
type limiter struct {
	rate   float64 // tokens per second
	burst  float64
	shards [limiterShards]limShard
}

const (
	limiterShards   = 16
	limiterCapacity = 1 << 16
	// reportEvery spaces the failures a client's rate-limit trips report:
	// one per route per interval while it keeps tripping, so a flood is a
	// handful of guard events, not thousands.
	reportEvery = 10 * time.Second
)

type limShard struct {
	mu         sync.Mutex
	m          map[netip.Addr]*bucket
	head, tail *bucket // most and least recently used
	cap        int
}

type bucket struct {
	key        netip.Addr
	tokens     float64
	last       int64 // monotonic ns of the last refill
	reported   int64 // monotonic ns of the last reported trip, 0 for never
	prev, next *bucket
}

func newLimiter(perSecond float64, burst, capacity int) *limiter {
	l := &limiter{rate: perSecond, burst: float64(max(burst, 1))}
	per := max(capacity/limiterShards, 1)
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Addr]*bucket)
		l.shards[i].cap = per
	}
	return l
}

// clientKey is the unit a limit applies to.
func clientKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

func (l *limiter) shard(k netip.Addr) *limShard {
	b := k.As16()
	var h uint64
	for _, x := range b[:] {
		h = (h ^ uint64(x)) * 0x100000001b3
	}
	return &l.shards[(h>>32)%limiterShards]
}

// take spends one token of a's bucket at now (monotonic ns). When the
// bucket is empty it returns how long until a token is back, and report
// is true when this trip should become a guard failure.
func (l *limiter) take(a netip.Addr, now int64) (ok bool, wait time.Duration, report bool) {
	k := clientKey(a)
	s := l.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.get(k, now, l.burst)
	if el := float64(now-b.last) / 1e9; el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0, false
	}
	wait = time.Duration((1 - b.tokens) / l.rate * 1e9)
	if b.reported == 0 || now-b.reported >= int64(reportEvery) {
		b.reported = now
		report = true
	}
	return false, wait, report
}

// refund gives back a token taken by take (a check that turned out fine).
func (l *limiter) refund(a netip.Addr) {
	k := clientKey(a)
	s := l.shard(k)
	s.mu.Lock()
	if b := s.m[k]; b != nil {
		b.tokens = math.Min(l.burst, b.tokens+1)
	}
	s.mu.Unlock()
}

// get returns k's bucket, moved to the front, creating it full (and
// evicting the least recently used) when missing.
func (s *limShard) get(k netip.Addr, now int64, burst float64) *bucket {
	b := s.m[k]
	if b == nil {
		if len(s.m) >= s.cap {
			old := s.tail
			s.unlink(old)
			delete(s.m, old.key)
			b = old // reuse the evicted entry's memory
			*b = bucket{}
		} else {
			b = new(bucket)
		}
		b.key, b.tokens, b.last = k, burst, now
		s.m[k] = b
	} else {
		if s.head == b {
			return b
		}
		s.unlink(b)
	}
	b.next = s.head
	if s.head != nil {
		s.head.prev = b
	}
	s.head = b
	if s.tail == nil {
		s.tail = b
	}
	return b
}

func (s *limShard) unlink(b *bucket) {
	if b.prev != nil {
		b.prev.next = b.next
	} else {
		s.head = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	} else {
		s.tail = b.prev
	}
	b.prev, b.next = nil, nil
}

// len is the number of clients tracked, for tests.
func (l *limiter) len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// monoEpoch anchors monotonic nanoseconds for the limiters.
var monoEpoch = time.Now()

func monoNow() int64 { return int64(time.Since(monoEpoch)) }
