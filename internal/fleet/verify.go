package fleet

import (
	"crypto/ed25519"
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
	keys  map[string]string            // origin → public NKEY
	raw   map[string]ed25519.PublicKey // origin → its key, decoded once
	owner map[string]string            // public NKEY → origin

	mu        sync.Mutex
	last      map[string]Decision // origin|prefix → latest seen
	nextPrune int
}

func newVerifier(c Config) *verifier {
	v := &verifier{fleet: c.Name, keys: map[string]string{}, raw: map[string]ed25519.PublicKey{}, owner: map[string]string{}, last: map[string]Decision{}, nextPrune: 4096}
	for o, k := range c.Hosts {
		v.keys[o], v.owner[k] = k, o
		if b, err := nkeys.Decode(nkeys.PrefixByteUser, []byte(k)); err == nil && len(b) == ed25519.PublicKeySize {
			v.raw[o] = ed25519.PublicKey(b)
		}
	}
	return v
}

// verify returns nil or a *VerifyError.
func (v *verifier) verify(d Decision, now time.Time) error {
	if err := v.verifySig(d); err != nil {
		return err
	}
	return v.verifyFresh(d, now)
}

// verifySig checks who signed d: safe to run in parallel.
func (v *verifier) verifySig(d Decision) error {
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
	pub, ok := v.raw[d.Origin]
	if !ok {
		return verifyErr(ReasonUnknownOrigin, "fleet.hosts[%s] is not a public user NKEY", d.Origin)
	}
	if len(d.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, d.SignedBytes(v.fleet), d.Sig) {
		return verifyErr(ReasonBadSignature, "decision for %s from %q: signature does not verify", d.Prefix, d.Origin)
	}
	return nil
}

// verifyFresh checks d against the clock and the decisions seen before
// it: in the stream's order, one at a time.
func (v *verifier) verifyFresh(d Decision, now time.Time) error {
	if !d.Expires.IsZero() && !d.Expires.After(now) {
		return verifyErr(ReasonExpired, "decision for %s from %q expired at %s", d.Prefix, d.Origin, d.Expires.Format(time.RFC3339))
	}
	k := d.Origin + "|" + d.Prefix.String()
	v.mu.Lock()
	defer v.mu.Unlock()
	if last, ok := v.last[k]; ok && d.Before(last) {
		return verifyErr(ReasonStale, "decision for %s from %q is older than one already applied (a replay)", d.Prefix, d.Origin)
	}
	v.last[k] = Decision{Op: d.Op, Created: d.Created, Expires: d.Expires} // what Before reads
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
