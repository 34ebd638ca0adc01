package jail

// The failure table: per-source failure times, bounded in size, with an
// eviction order an attacker cannot steer cheaply. See the package doc for
// the policy and what flooding can and cannot achieve.
//
// Layout, for 1M entries without GC cost: a map from a 16-byte key to a
// uint32 slot, and slabs of pointer-free structs, so the garbage collector
// never scans them. A slot holds its source's newest failure inline; the
// older ones (at most maxRetry-2 of them, because the maxRetry-th failure
// bans and clears the slot) live in fixed-size blocks of a shared pool, so
// the common case of one failure per source costs no block at all. Free
// slots and blocks are reused: in the steady state nothing is allocated.
// Slabs grow by fixed chunks rather than by reallocation, so growing to a
// million sources never holds two copies of the slab at once (RSS stays
// near the heap in use).

// key is a source address widened to the jail's prefix, in 16-byte form
// (IPv4 as IPv4-mapped IPv6).
type key [16]byte

// slot is one tracked source. Slot and block indexes start at 1; 0 is none.
type slot struct {
	key        key
	newest     int64  // unix nanoseconds of the newest failure
	prev, next uint32 // neighbours in the class list: prev towards the head
	block      uint32 // the older failures' block, 0 when n < 2
	n          uint16 // failures held, 1..maxRetry-1; 0 marks a free slot
}

// class lists hold the slots with the same number of failures, most
// recently touched at the head.
type class struct{ head, tail uint32 }

// Slabs are chunked: slot or block i lives in chunk i>>chunkBits.
const (
	chunkBits = 12
	chunkLen  = 1 << chunkBits
	chunkMask = chunkLen - 1
)

type table struct {
	maxRetry  int   // failures that ban; slots hold at most maxRetry-1
	findTime  int64 // nanoseconds
	capacity  int
	index     map[key]uint32
	slots     []*[chunkLen]slot // slot 0 is unused
	nslots    uint32            // slots handed out, 0 included
	freeSlots []uint32
	stride    int       // maxRetry-2: older failures per block
	pool      [][]int64 // chunks of chunkLen blocks of stride times; block 0 unused
	nblocks   uint32
	freeBlks  []uint32
	classes   []class // classes[n] for n in 1..maxRetry-1
	sweepFrom int     // next class whose tail an admission checks for expiry
	scratch   []int64 // a slot's times during an update, ascending
	clock     int64   // newest event time seen: "now" for expiry

	expired, evicted, dropped uint64
}

func newTable(maxRetry int, findTime int64, capacity int) *table {
	t := &table{
		maxRetry: maxRetry,
		findTime: findTime,
		capacity: capacity,
		index:    map[key]uint32{},
		nslots:   1,
		nblocks:  1,
		classes:  make([]class, max(maxRetry, 1)),
		scratch:  make([]int64, 0, maxRetry),
	}
	t.slots = append(t.slots, new([chunkLen]slot))
	t.stride = max(maxRetry-2, 0)
	t.pool = append(t.pool, make([]int64, t.stride*chunkLen))
	return t
}

// at returns slot i.
func (t *table) at(i uint32) *slot { return &t.slots[i>>chunkBits][i&chunkMask] }

// block returns block b's stride times.
func (t *table) block(b uint32) []int64 {
	off := int(b&chunkMask) * t.stride
	return t.pool[b>>chunkBits][off : off+t.stride]
}

func (t *table) len() int { return len(t.index) }

// outcome of an observation.
type outcome uint8

const (
	tracked outcome = iota // counted, below maxRetry
	banned                 // reached maxRetry: the slot was cleared
	stale                  // older than findTime: counted nothing
	dropped                // table full of sources with more failures
)

// observe records attempts failures of k at time at (unix nanoseconds) and
// returns what happened and the failures counted in the window.
func (t *table) observe(k key, at int64, attempts int) (outcome, int) {
	t.clock = max(t.clock, at)
	if at <= t.clock-t.findTime {
		// An event older than any window still open counts nothing: in a
		// replay or a late journal it could only revive expired state.
		if i, ok := t.index[k]; ok {
			return stale, t.live(i)
		}
		return stale, 0
	}
	i, ok := t.index[k]
	if !ok {
		return t.admit(k, at, attempts)
	}
	s := t.at(i)
	times := t.times(i)
	ref := max(at, s.newest)
	cut := ref - t.findTime
	// times is ascending: drop the failures that left the window.
	j := 0
	for j < len(times) && times[j] <= cut {
		j++
	}
	kept := len(times) - j
	if n := kept + attempts; n >= t.maxRetry {
		t.remove(i)
		return banned, n
	}
	// Shift the kept times down and insert attempts copies of at in order;
	// kept+attempts < maxRetry fits scratch's capacity.
	copy(times, times[j:])
	p := kept
	for p > 0 && times[p-1] > at {
		p--
	}
	times = times[:kept+attempts]
	copy(times[p+attempts:], times[p:kept])
	for q := p; q < p+attempts; q++ {
		times[q] = at
	}
	t.store(i, times)
	return tracked, len(times)
}

// admit starts tracking k, making room at the cap.
func (t *table) admit(k key, at int64, attempts int) (outcome, int) {
	if attempts >= t.maxRetry {
		return banned, attempts
	}
	t.expireSome(2)
	if len(t.index) >= t.capacity {
		t.expireSome(len(t.classes))
	}
	if len(t.index) >= t.capacity {
		// Evict the least recently seen source among those with the
		// fewest failures, but never one with more failures than the
		// newcomer: a spray of single failures displaces only other
		// single failures.
		c := 1
		for c < len(t.classes) && t.classes[c].tail == 0 {
			c++
		}
		if c >= len(t.classes) || c > attempts {
			t.dropped++
			return dropped, 0
		}
		t.remove(t.classes[c].tail)
		t.evicted++
	}
	var i uint32
	if n := len(t.freeSlots); n > 0 {
		i = t.freeSlots[n-1]
		t.freeSlots = t.freeSlots[:n-1]
	} else {
		i = t.nslots
		if i&chunkMask == 0 {
			t.slots = append(t.slots, new([chunkLen]slot))
		}
		t.nslots++
	}
	t.at(i).key = k
	t.index[k] = i
	times := t.scratch[:attempts]
	for q := range times {
		times[q] = at
	}
	t.store(i, times)
	return tracked, attempts
}

// times returns slot i's failure times, ascending, in t.scratch.
func (t *table) times(i uint32) []int64 {
	s := t.at(i)
	times := t.scratch[:0]
	if s.n > 1 {
		times = append(times, t.block(s.block)[:s.n-1]...)
	}
	return append(times, s.newest)
}

// store writes times (ascending, 1..maxRetry-1 of them) into slot i and
// moves it to the head of its class.
func (t *table) store(i uint32, times []int64) {
	s := t.at(i)
	if s.n > 0 {
		t.unlink(i)
	}
	n := len(times)
	s.n = uint16(n)
	s.newest = times[n-1]
	switch {
	case n > 1 && s.block == 0:
		s.block = t.allocBlock()
	case n <= 1 && s.block != 0:
		t.freeBlks = append(t.freeBlks, s.block)
		s.block = 0
	}
	if n > 1 {
		copy(t.block(s.block), times[:n-1])
	}
	t.link(i, n)
}

func (t *table) allocBlock() uint32 {
	if n := len(t.freeBlks); n > 0 {
		b := t.freeBlks[n-1]
		t.freeBlks = t.freeBlks[:n-1]
		return b
	}
	b := t.nblocks
	if b&chunkMask == 0 {
		t.pool = append(t.pool, make([]int64, t.stride*chunkLen))
	}
	t.nblocks++
	return b
}

// remove forgets slot i.
func (t *table) remove(i uint32) {
	s := t.at(i)
	t.unlink(i)
	if s.block != 0 {
		t.freeBlks = append(t.freeBlks, s.block)
	}
	delete(t.index, s.key)
	*s = slot{}
	t.freeSlots = append(t.freeSlots, i)
}

func (t *table) link(i uint32, n int) {
	c := &t.classes[n]
	s := t.at(i)
	s.prev, s.next = 0, c.head
	if c.head != 0 {
		t.at(c.head).prev = i
	} else {
		c.tail = i
	}
	c.head = i
}

func (t *table) unlink(i uint32) {
	s := t.at(i)
	c := &t.classes[s.n]
	if s.prev != 0 {
		t.at(s.prev).next = s.next
	} else {
		c.head = s.next
	}
	if s.next != 0 {
		t.at(s.next).prev = s.prev
	} else {
		c.tail = s.prev
	}
	s.prev, s.next = 0, 0
}

// expireSome removes the least recently touched slot of up to n classes,
// round robin, where its newest failure has left the window. Each admission
// calls it, so expiry keeps pace with arrivals at O(1) per event.
func (t *table) expireSome(n int) {
	cut := t.clock - t.findTime
	for range min(n, len(t.classes)-1) {
		t.sweepFrom++
		if t.sweepFrom >= len(t.classes) {
			t.sweepFrom = 1
		}
		c := &t.classes[t.sweepFrom]
		if c.tail != 0 && t.at(c.tail).newest <= cut {
			t.remove(c.tail)
			t.expired++
		}
	}
}

// sweep removes every slot whose newest failure is at or before now minus
// findTime, and returns how many it removed.
func (t *table) sweep(now int64) int {
	t.clock = max(t.clock, now)
	cut := t.clock - t.findTime
	n := 0
	for i := uint32(1); i < t.nslots; i++ {
		if s := t.at(i); s.n > 0 && s.newest <= cut {
			t.remove(i)
			n++
		}
	}
	t.expired += uint64(n)
	if len(t.index) == 0 && t.nslots > chunkLen {
		// A spray is over: give its memory back.
		*t = *newTableLike(t)
	}
	return n
}

// newTableLike is an empty table with t's parameters and counters.
func newTableLike(t *table) *table {
	u := newTable(t.maxRetry, t.findTime, t.capacity)
	u.clock, u.expired, u.evicted, u.dropped = t.clock, t.expired, t.evicted, t.dropped
	return u
}

// live counts slot i's failures still inside the window at the clock.
func (t *table) live(i uint32) int {
	cut := t.clock - t.findTime
	n := 0
	for _, at := range t.times(i) {
		if at > cut {
			n++
		}
	}
	return n
}

// lookup returns the failures of k inside the window.
func (t *table) lookup(k key) int {
	if i, ok := t.index[k]; ok {
		return t.live(i)
	}
	return 0
}

// each calls f with every slot's key and times (ascending; valid only
// during the call).
func (t *table) each(f func(k key, times []int64)) {
	for i := uint32(1); i < t.nslots; i++ {
		if s := t.at(i); s.n > 0 {
			f(s.key, t.times(i))
		}
	}
}
