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
	// kex: a kex_exchange_identification failure was counted (or is
	// pending); the "banner exchange" line sshd logs after it for the
	// same bad banner is no second failure.
	kex bool
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

// conns is a bounded table of connections, direct-mapped by pid: a
// connection lives in slot pid mod size, and a new connection whose pid
// lands on an occupied slot replaces the one there. sshd's pids grow
// until they wrap, so the connection replaced is, in practice, the
// oldest; a flood of connections cannot grow memory, and finding a
// connection costs an index, not a hash lookup. A connection silent for
// longer than ttl is forgotten too (its pid may have been reused).
type conns struct {
	slots []conn
	mask  int
	n     int
	ttl   int64
}

// connTTL is how long a silent connection is remembered. sshd's
// LoginGraceTime (120 s by default) bounds the pre-authentication phase
// where failures happen; ten minutes leaves room for slow log delivery.
const connTTL = 600

// newConns makes a table of at least n slots (a power of two).
func newConns(n int) conns {
	size := 64
	for size < n {
		size <<= 1
	}
	return conns{slots: make([]conn, size), mask: size - 1, ttl: connTTL}
}

// get returns the live connection of pid, or nil.
func (t *conns) get(pid int, now int64) *conn {
	if pid <= 0 || pid > 1<<31-1 {
		return nil
	}
	c := &t.slots[pid&t.mask]
	if c.pid != int32(pid) {
		return nil
	}
	if d := now - c.last; d > t.ttl || d < -t.ttl {
		t.forget(c)
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
	c := &t.slots[pid&t.mask]
	if c.pid == 0 {
		t.n++
	}
	*c = conn{pid: int32(pid), last: now}
	return c
}

// forget drops c.
func (t *conns) forget(c *conn) {
	if c == nil || c.pid == 0 {
		return
	}
	*c = conn{}
	t.n--
}

func (t *conns) len() int { return t.n }
