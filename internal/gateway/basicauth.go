package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Basic auth is expensive by design: bcrypt at cost 14 takes about a second
// of CPU. Three things keep it from becoming a denial of service:
//   - a failure budget per client (IPv4 address or IPv6 /64), spent before
//     hashing: once spent, attempts are refused without hashing;
//   - a gateway-wide cap on concurrent bcrypt computations, so failures
//     from many addresses still cannot take more than half the CPUs;
//   - a cache of recent successes (keyed by a salted SHA-256 of the
//     credentials, in memory only), because browsers resend credentials with
//     every request.
//
// Unknown users are compared against a dummy hash of the file's highest
// cost, so a wrong user name takes as long as a wrong password.
const (
	authFailBurst     = 10        // failures a client may make at once…
	authFailPerSecond = 10.0 / 60 // …and then ten a minute
	authCacheTTL      = 10 * time.Minute
	authCacheMax      = 4096
	authSlotWait      = 5 * time.Second // wait for a bcrypt slot before answering 503
)

type basicAuth struct {
	challenge []string // WWW-Authenticate value
	users     map[string]credential
	dummy     credential // for unknown users: as slow as a known one
	slowAll   []byte     // with bcrypt in the file, weak entries also pay for one (see check)
	weak      []string   // users with entries weaker than bcrypt, for a warning
	fails     *limiter
	slots     chan struct{} // the gateway's bcrypt slots
	now       func() int64  // monotonic ns: the budget's and the cache's clock
	hashes    atomic.Int64  // bcrypt comparisons made: what throttling saves

	mu   sync.Mutex
	ok   map[[32]byte]int64 // credentials → expiry, monotonic ns
	salt [16]byte
}

func newBasicAuth(cfg *BasicAuth, slots chan struct{}, now func() int64) (*basicAuth, error) {
	data, err := os.ReadFile(cfg.Htpasswd)
	if err != nil {
		return nil, fmt.Errorf("read htpasswd: %w", err)
	}
	h, err := parseHtpasswd(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Htpasswd, err)
	}
	b := &basicAuth{
		challenge: []string{`Basic realm="` + cfg.Realm + `", charset="UTF-8"`},
		users:     h.users,
		weak:      h.weak,
		fails:     newLimiter(authFailPerSecond, authFailBurst, limiterCapacity),
		slots:     slots,
		now:       now,
		ok:        map[[32]byte]int64{},
	}
	if _, err := rand.Read(b.salt[:]); err != nil {
		return nil, fmt.Errorf("basic auth salt: %w", err)
	}
	// A wrong user name must take as long as a wrong password: the dummy
	// is bcrypt at the file's highest cost when it has bcrypt entries, and
	// then a weak entry pays for a bcrypt comparison too; otherwise the
	// dummy is an $apr1$ entry.
	if h.cost > 0 {
		b.dummy = credential{"bcrypt", dummyHash(h.cost)}
		if len(h.weak) > 0 {
			b.slowAll = b.dummy.hash
		}
	} else {
		b.dummy = credential{"apr1", apr1(randomBytes(16), []byte("dummysal"))}
	}
	return b, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

var (
	dummyMu     sync.Mutex
	dummyHashes = map[int][]byte{}
)

// dummyHash returns a hash of a random password at cost, made once per
// cost for the life of the process.
func dummyHash(cost int) []byte {
	dummyMu.Lock()
	defer dummyMu.Unlock()
	if h := dummyHashes[cost]; h != nil {
		return h
	}
	pw := make([]byte, 32)
	rand.Read(pw)
	h, err := bcrypt.GenerateFromPassword(pw, cost)
	if err != nil {
		// cost comes from a parsed hash, so it is in range; be safe anyway
		h, _ = bcrypt.GenerateFromPassword(pw, bcrypt.DefaultCost)
	}
	dummyHashes[cost] = h
	return h
}

// authResult is what check decided.
type authResult int

const (
	authOK        authResult = iota
	authMissing              // no credentials: challenged, not a failure
	authFailed               // wrong user or password: a failure
	authThrottled            // failure budget spent: refused without hashing
	authBusy                 // no bcrypt slot in time: 503
)

// check verifies r's credentials for client. On anything but authOK it
// has answered the request.
func (b *basicAuth) check(w http.ResponseWriter, r *http.Request, client netip.Addr) (authResult, string, bool) {
	user, pass, has := r.BasicAuth()
	if !has {
		b.unauthorized(w)
		return authMissing, "", false
	}
	key := b.key(user, pass)
	now := b.now()
	b.mu.Lock()
	exp, cached := b.ok[key]
	b.mu.Unlock()
	if cached && now < exp {
		return authOK, user, false
	}
	ok, _, report := b.fails.take(client, now)
	if !ok {
		b.unauthorized(w)
		return authThrottled, user, report
	}
	if !b.acquire(r.Context()) {
		b.fails.refund(client)
		w.Header().Set("Retry-After", strconv.Itoa(int(authSlotWait/time.Second)))
		plain(w, http.StatusServiceUnavailable)
		return authBusy, user, false
	}
	cred, known := b.users[user]
	if !known {
		cred = b.dummy
	}
	match := cred.verify([]byte(pass))
	if b.slowAll != nil && cred.scheme != "bcrypt" {
		bcrypt.CompareHashAndPassword(b.slowAll, []byte(pass))
	}
	b.hashes.Add(1)
	<-b.slots
	if known && match {
		b.fails.refund(client)
		b.remember(key, now)
		return authOK, user, false
	}
	b.unauthorized(w)
	return authFailed, user, true
}

func (b *basicAuth) acquire(ctx context.Context) bool {
	select {
	case b.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(authSlotWait)
	defer t.Stop()
	select {
	case b.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (b *basicAuth) key(user, pass string) [32]byte {
	h := sha256.New()
	h.Write(b.salt[:])
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(pass))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (b *basicAuth) remember(key [32]byte, now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ok) >= authCacheMax {
		for k, exp := range b.ok {
			if exp <= now || len(b.ok) >= authCacheMax {
				delete(b.ok, k)
			}
		}
	}
	b.ok[key] = now + int64(authCacheTTL)
}

func (b *basicAuth) unauthorized(w http.ResponseWriter) {
	w.Header()["Www-Authenticate"] = b.challenge
	plain(w, http.StatusUnauthorized)
}
