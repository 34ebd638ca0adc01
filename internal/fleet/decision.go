package fleet

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
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
	fmt.Fprintf(h, "%s|%s|%s|%d|%d", d.Op, d.Origin, d.Prefix, d.Created.UnixMilli(), d.Expires.UnixMilli())
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// PrefixToken writes p as one subject token: '.' becomes '-', '/' '_'
// (IPv6's ':' is a legal subject character).
func PrefixToken(p netip.Prefix) string {
	return strings.NewReplacer(".", "-", "/", "_").Replace(p.String())
}

// Marshal encodes d.
func (d Decision) Marshal() ([]byte, error) {
	w := struct {
		V int `json:"v"`
		Decision
	}{1, d}
	return json.Marshal(w)
}

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
	case w.V != 1:
		return Decision{}, fmt.Errorf("decision version %d: this moat reads version 1 (upgrade moat)", w.V)
	case d.Op != OpBan && d.Op != OpUnban:
		return Decision{}, fmt.Errorf("unknown decision op %q", d.Op)
	case !ValidToken(d.Origin):
		return Decision{}, fmt.Errorf("decision origin %q is not a host name", d.Origin)
	case !d.Prefix.IsValid() || d.Prefix != d.Prefix.Masked() || d.Prefix.Addr().Is4In6() || d.Prefix.Addr().Zone() != "":
		return Decision{}, fmt.Errorf("decision prefix %v is not in canonical form", d.Prefix)
	case d.Created.IsZero():
		return Decision{}, errors.New("decision without a creation time")
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
