package fleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
)

// Op is what a decision does.
type Op string

const (
	// OpBan bans Prefix until Expires.
	OpBan Op = "ban"
	// OpUnban is a tombstone: the origin lifted its ban of Prefix.
	OpUnban Op = "unban"
)

// Decision is one message of the decisions stream. The stream keeps the
// latest per origin and prefix (its subject), so a ban's tombstone
// replaces the ban, and a host catching up reads the current state only.
type Decision struct {
	Op     Op           `json:"op"`
	Prefix netip.Prefix `json:"prefix"`
	Jail   string       `json:"jail,omitempty"`
	Reason string       `json:"reason,omitempty"`
	Origin string       `json:"origin"`
	// Created and Expires are the ban's (Expires zero: permanent). A
	// tombstone carries the lifted ban's Expires: it lives as long.
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires,omitzero"`
	Failures int       `json:"failures,omitempty"`
	// Signer is the public NKEY of the key that signed the decision, Sig
	// its ed25519 signature of SignedBytes: fleet.hosts[Origin] must be
	// Signer (see Verifier).
	Signer string `json:"signer,omitempty"`
	Sig    []byte `json:"sig,omitempty"`
}

// normal is d as this host publishes it: under origin, unsigned, its
// times in milliseconds as the ban store keeps them (so the ban an event
// reports and the same ban read back from the store, for its tombstone
// or a resync, are one decision, not two of different age).
func (d Decision) normal(origin string) Decision {
	d.Origin, d.Signer, d.Sig = origin, "", nil
	d.Created = d.Created.Truncate(time.Millisecond)
	d.Expires = d.Expires.Truncate(time.Millisecond)
	return d
}

// Version is the decisions' wire format: 2 is signed (1 was not, and is
// refused).
const Version = 2

// Before reports whether d is an older decision than e about the same
// origin and prefix: decisions are ordered by the ban they are about
// (Created), then a ban before its tombstone, then by expiry (an
// extension only lengthens a ban; zero, permanent, is the longest). The
// order is a property of the decisions, so an outbox, a resync or a
// receiver agree on it whatever the order they arrive in.
func (d Decision) Before(e Decision) bool {
	if !d.Created.Equal(e.Created) {
		return d.Created.Before(e.Created)
	}
	if d.Op != e.Op {
		return d.Op == OpBan
	}
	switch {
	case d.Expires.Equal(e.Expires), d.Expires.IsZero():
		return false
	case e.Expires.IsZero():
		return true
	}
	return d.Expires.Before(e.Expires)
}

// SignedBytes is the canonical encoding of every field of d but the
// signature, for fleet: a domain and version tag, then each field
// length-prefixed, so no two decisions (or fleets) encode alike.
func (d Decision) SignedBytes(fleet string) []byte {
	b := make([]byte, 0, 256)
	field := func(s string) []byte {
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
	b = field("moat-fleet-decision")
	b = binary.AppendUvarint(b, Version)
	b = field(fleet)
	b = field(string(d.Op))
	b = field(d.Origin)
	b = field(d.Prefix.String())
	b = field(d.Jail)
	b = field(d.Reason)
	b = binary.AppendVarint(b, d.Created.UnixNano())
	var exp int64 // 0: permanent
	if !d.Expires.IsZero() {
		exp = d.Expires.UnixNano()
	}
	b = binary.AppendVarint(b, exp)
	b = binary.AppendVarint(b, int64(d.Failures))
	b = field(d.Signer)
	b = field(d.ID())
	return b
}

// Sign sets d's Signer and Sig with kp, the host's fleet key.
func (d *Decision) Sign(fleet string, kp nkeys.KeyPair) error {
	k, err := newSigner(kp)
	if err != nil {
		return err
	}
	d.sign(fleet, k)
	return nil
}

// signer is a fleet key ready to sign: nkeys derives the ed25519 key
// from the seed at every Sign, which costs as much as the signature.
type signer struct {
	pub  string
	priv ed25519.PrivateKey
}

func newSigner(kp nkeys.KeyPair) (signer, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return signer{}, err
	}
	seed, err := kp.Seed()
	if err != nil {
		return signer{}, err
	}
	_, raw, err := nkeys.DecodeSeed(seed)
	if err != nil {
		return signer{}, err
	}
	return signer{pub: pub, priv: ed25519.NewKeyFromSeed(raw)}, nil
}

func (d *Decision) sign(fleet string, k signer) {
	d.Signer = k.pub
	d.Sig = ed25519.Sign(k.priv, d.SignedBytes(fleet))
}

// MaxDecisionSize bounds a message: anything larger is refused unread.
const MaxDecisionSize = 4096

// SubjectPrefix is the subjects' common part: moat.<fleet>.decision.
func SubjectPrefix(fleet string) string { return "moat." + fleet + ".decision." }

// Subject is the decision's subject:
// moat.<fleet>.decision.<origin>.<prefix token>.
func (d Decision) Subject(fleet string) string {
	return SubjectPrefix(fleet) + d.Origin + "." + PrefixToken(d.Prefix)
}

// ID names this version of the decision, for JetStream's de-duplication:
// the same decision published twice (a retry, a resync) is stored once.
func (d Decision) ID() string {
	h := sha256.New()
	var exp int64
	if !d.Expires.IsZero() {
		exp = d.Expires.UnixNano()
	}
	fmt.Fprintf(h, "%s|%s|%s|%d|%d", d.Op, d.Origin, d.Prefix, d.Created.UnixNano(), exp)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// PrefixToken writes p as one subject token: '.' becomes '-', '/' '_'
// (IPv6's ':' is a legal subject character).
func PrefixToken(p netip.Prefix) string {
	return strings.NewReplacer(".", "-", "/", "_").Replace(p.String())
}

// Marshal encodes d (signed by Sign).
func (d Decision) Marshal() ([]byte, error) {
	w := struct {
		V int `json:"v"`
		Decision
	}{Version, d}
	return json.Marshal(w)
}

// ErrUnsigned is a decision without a signature (or of version 1, which
// had none).
var ErrUnsigned = errors.New("unsigned decision")

// timeOK: a time a decision can carry (its nanoseconds fit an int64).
func timeOK(t time.Time) bool { return t.Year() >= 2000 && t.Year() < 2200 }

// ParseDecision decodes and checks one message body received on subject
// (for fleet): a known version and op, a canonical prefix, an origin
// that is a valid token and the one the subject names, a subject whose
// prefix token is the body's, times that make sense. A message failing
// any of these is refused whole.
func ParseDecision(fleet, subject string, data []byte) (Decision, error) {
	if len(data) > MaxDecisionSize {
		return Decision{}, fmt.Errorf("decision of %d bytes: more than %d", len(data), MaxDecisionSize)
	}
	var w struct {
		V int `json:"v"`
		Decision
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Decision{}, fmt.Errorf("decode decision: %w", err)
	}
	if dec.More() {
		return Decision{}, errors.New("decode decision: trailing data")
	}
	d := w.Decision
	switch {
	case w.V == 1:
		return d, fmt.Errorf("%w: version 1 from %q (upgrade moat on every host: decisions are signed since version 2)", ErrUnsigned, d.Origin)
	case w.V != Version:
		return Decision{}, fmt.Errorf("decision version %d: this moat reads version %d (upgrade moat)", w.V, Version)
	case d.Signer == "" || len(d.Sig) == 0:
		return d, fmt.Errorf("%w from %q", ErrUnsigned, d.Origin)
	case d.Op != OpBan && d.Op != OpUnban:
		return Decision{}, fmt.Errorf("unknown decision op %q", d.Op)
	case !ValidToken(d.Origin):
		return Decision{}, fmt.Errorf("decision origin %q is not a host name", d.Origin)
	case !d.Prefix.IsValid() || d.Prefix != d.Prefix.Masked() || d.Prefix.Addr().Is4In6() || d.Prefix.Addr().Zone() != "":
		return Decision{}, fmt.Errorf("decision prefix %v is not in canonical form", d.Prefix)
	case d.Created.IsZero():
		return Decision{}, errors.New("decision without a creation time")
	case !timeOK(d.Created) || (!d.Expires.IsZero() && !timeOK(d.Expires)):
		return Decision{}, errors.New("decision times outside 2000-2199")
	case d.Failures < 0 || len(d.Signer) > 64 || len(d.Sig) > 128:
		return Decision{}, errors.New("decision failures, signer or signature out of range")
	case !d.Expires.IsZero() && d.Expires.Before(d.Created):
		return Decision{}, errors.New("decision expires before it was created")
	case len(d.Jail) > 64 || len(d.Reason) > 256:
		return Decision{}, errors.New("decision jail or reason too long")
	}
	if want := d.Subject(fleet); subject != want {
		return Decision{}, fmt.Errorf("decision for %s from %s arrived on %s: the subject must name its origin and prefix (%s)", d.Prefix, d.Origin, subject, want)
	}
	return d, nil
}
