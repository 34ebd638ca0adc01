package fleet

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nkeys"
)

// Reasons a decision fails verification (the metric's reason label).
const (
	ReasonUnsigned       = "unsigned"
	ReasonBadSignature   = "bad_signature"
	ReasonUnknownOrigin  = "unknown_origin"
	ReasonSignerMismatch = "signer_mismatch"
	ReasonExpired        = "expired"
	ReasonStale          = "stale"
)

// VerifyReasons lists every Reason*.
var VerifyReasons = []string{ReasonUnsigned, ReasonBadSignature, ReasonUnknownOrigin, ReasonSignerMismatch, ReasonExpired, ReasonStale}

// VerifyError is a decision that failed verification.
type VerifyError struct {
	Reason string
	Err    error
}

func (e *VerifyError) Error() string { return e.Err.Error() }
func (e *VerifyError) Unwrap() error { return e.Err }

func verifyErr(reason, f string, a ...any) error {
	return &VerifyError{Reason: reason, Err: fmt.Errorf(f, a...)}
}

// verifier checks each decision end to end, whoever relayed it: signed
// by the key fleet.hosts gives its origin, over every field (SignedBytes),
// not expired, and not older than the latest decision already seen for
// its origin and prefix (a replay of a ban its tombstone lifted). NATS
// permissions stop a host publishing under another's origin on the
// embedded node; the signature stops anyone who can write to the stream
// some other way (a route peer, an external NATS's operator, a stolen
// account) from speaking for a host without its key.
type verifier struct {
	fleet string
	keys  map[string]string // origin → public NKEY
	owner map[string]string // public NKEY → origin

	mu        sync.Mutex
	last      map[string]Decision // origin|prefix → latest seen
	nextPrune int
}

func newVerifier(c Config) *verifier {
	v := &verifier{fleet: c.Name, keys: map[string]string{}, owner: map[string]string{}, last: map[string]Decision{}, nextPrune: 4096}
	for o, k := range c.Hosts {
		v.keys[o], v.owner[k] = k, o
	}
	return v
}

// verify returns nil or a *VerifyError.
func (v *verifier) verify(d Decision, now time.Time) error {
	want, ok := v.keys[d.Origin]
	if !ok {
		return verifyErr(ReasonUnknownOrigin, "decision from %q, which is not in fleet.hosts", d.Origin)
	}
	if d.Signer != want {
		if o, ok := v.owner[d.Signer]; ok {
			return verifyErr(ReasonSignerMismatch, "decision under origin %q signed by %q's key", d.Origin, o)
		}
		return verifyErr(ReasonSignerMismatch, "decision under origin %q signed by a key not in fleet.hosts (%.12s…)", d.Origin, d.Signer)
	}
	kp, err := nkeys.FromPublicKey(want)
	if err != nil {
		return verifyErr(ReasonUnknownOrigin, "fleet.hosts[%s]: %v", d.Origin, err)
	}
	if err := kp.Verify(d.SignedBytes(v.fleet), d.Sig); err != nil {
		return verifyErr(ReasonBadSignature, "decision for %s from %q: signature does not verify (%v)", d.Prefix, d.Origin, err)
	}
	if !d.Expires.IsZero() && !d.Expires.After(now) {
		return verifyErr(ReasonExpired, "decision for %s from %q expired at %s", d.Prefix, d.Origin, d.Expires.Format(time.RFC3339))
	}
	k := d.Origin + "|" + d.Prefix.String()
	v.mu.Lock()
	defer v.mu.Unlock()
	if last, ok := v.last[k]; ok && d.Before(last) {
		return verifyErr(ReasonStale, "decision for %s from %q is older than one already applied (a replay)", d.Prefix, d.Origin)
	}
	v.last[k] = d
	if len(v.last) >= v.nextPrune {
		// An expired decision is refused anyway: forget those.
		for k, q := range v.last {
			if !q.Expires.IsZero() && !q.Expires.After(now) {
				delete(v.last, k)
			}
		}
		v.nextPrune = max(4096, 2*len(v.last))
	}
	return nil
}

// RefusalReason names why a decision was refused, for the log: a
// verification reason, else "check" (the guard's trust and never-ban
// checks, or the parser).
func RefusalReason(err error) string {
	if r := verifyReason(err); r != "" {
		return r
	}
	return "check"
}

// verifyReason is err's metric reason, "" for a refusal that is not a
// verification failure.
func verifyReason(err error) string {
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	if errors.Is(err, ErrUnsigned) {
		return ReasonUnsigned
	}
	return ""
}
