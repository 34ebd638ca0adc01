package filter

import (
	"net/netip"
)

// conn is what sshd's filter remembers of one connection, keyed by the pid
// of the sshd process that serves it.
type conn struct {
	pid  int32
	last int64 // unix seconds of the connection's last line

	// addr is the peer, once a line gave it unambiguously.
	addr netip.Addr
	// pending counts failures seen before the address was known ("Too
	// many authentication failures", kex errors); they are reported when a
	// later line of the connection names the address.
	pending     int32
	pendingKind Kind
	pendingUser string
	// nofail counts attempts that are no failure on their own: a PAM
	// "authentication failure" (a Failed line usually follows), a
	// rejected public key of a valid account (clients offer several).
	// They add to the attempts of a failure the connection ends in.
	nofail int32
	// user0 is a hash of the first user name tried; users counts the
	// names tried, up to 2.
	user0 uint64
	users uint8
	// failed: the connection already produced a failure; maxed: it was
	// "maximum authentication attempts exceeded", which the following
	// "Too many authentication failures" repeats.
	failed, maxed bool
}

// addUser records a user name tried on the connection (an empty name,
// as PAM's "ruser=" often is, says nothing).
func (c *conn) addUser(u []byte) {
	if len(u) == 0 {
		return
	}
	h := uint64(14695981039346656037)
	for _, b := range u {
		h ^= uint64(b)
		h *= 1099511628211
	}
	switch {
	case c.users == 0:
		c.user0, c.users = h, 1
	case c.users == 1 && h != c.user0:
		c.users = 2
	}
}

// conns is a bounded table of connections: a ring of slots in creation
// order and an index by pid. When the ring is full the oldest connection
// is forgotten, so a flood of connections cannot grow memory; a
// connection silent for longer than ttl is forgotten too (its pid may
// have been reused).
type conns struct {
	idx   map[int32]int32
	slots []conn
	next  int
	ttl   int64
}

// connTTL is how long a silent connection is remembered. sshd's
// LoginGraceTime (120 s by default) bounds the pre-authentication phase
// where failures happen; ten minutes leaves room for slow log delivery.
const connTTL = 600

func newConns(n int) conns {
	return conns{idx: make(map[int32]int32, n), slots: make([]conn, n), ttl: connTTL}
}

// get returns the live connection of pid, or nil.
func (t *conns) get(pid int, now int64) *conn {
	if pid <= 0 || pid > 1<<31-1 {
		return nil
	}
	i, ok := t.idx[int32(pid)]
	if !ok {
		return nil
	}
	c := &t.slots[i]
	if d := now - c.last; d > t.ttl || d < -t.ttl {
		delete(t.idx, c.pid)
		*c = conn{}
		return nil
	}
	c.last = now
	return c
}

// open returns the connection of pid, starting one if needed; nil when the
// line has no pid.
func (t *conns) open(pid int, now int64) *conn {
	if c := t.get(pid, now); c != nil || pid <= 0 || pid > 1<<31-1 {
		return c
	}
	i := t.next
	t.next = (t.next + 1) % len(t.slots)
	c := &t.slots[i]
	if c.pid != 0 {
		if j, ok := t.idx[c.pid]; ok && int(j) == i {
			delete(t.idx, c.pid)
		}
	}
	*c = conn{pid: int32(pid), last: now}
	t.idx[int32(pid)] = int32(i)
	return c
}

// forget drops c.
func (t *conns) forget(c *conn) {
	if c == nil {
		return
	}
	if j, ok := t.idx[c.pid]; ok && &t.slots[j] == c {
		delete(t.idx, c.pid)
	}
	*c = conn{}
}

func (t *conns) len() int { return len(t.idx) }
