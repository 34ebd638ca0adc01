package fleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
)

// A list in the bucket is signed like a decision: its first line is
//
//	# moat-signed-list 1 <origin> <name> <unix ns> <signer> <signature>
//
// (a comment to the blocklist parser), the list's bytes follow. The
// signature covers the fleet, origin, name, publication time, signer and
// the bytes' SHA-256, so a route peer cannot put a list, or an old copy
// with a new time, under another host's name.
const listMagic = "# moat-signed-list 1 "

func listSignedBytes(fleet, origin, name string, t time.Time, signer string, data []byte) []byte {
	b := make([]byte, 0, 192)
	field := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	field("moat-fleet-list")
	b = binary.AppendUvarint(b, 1)
	field(fleet)
	field(origin)
	field(name)
	b = binary.AppendVarint(b, t.UnixNano())
	field(signer)
	sum := sha256.Sum256(data)
	return append(b, sum[:]...)
}

// sealList is data signed by kp as origin's copy of list name at t.
func sealList(fleet, origin, name string, t time.Time, kp nkeys.KeyPair, data []byte) ([]byte, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	sig, err := kp.Sign(listSignedBytes(fleet, origin, name, t, pub, data))
	if err != nil {
		return nil, err
	}
	head := fmt.Sprintf("%s%s %s %d %s %s\n", listMagic, origin, name, t.UnixNano(), pub, base64.RawURLEncoding.EncodeToString(sig))
	return append([]byte(head), data...), nil
}

// openList checks a bucket value stored under origin.name and returns
// the list's bytes and their signed publication time.
func (v *verifier) openList(origin, name string, value []byte) ([]byte, time.Time, error) {
	head, data, ok := bytes.Cut(value, []byte("\n"))
	if !ok || !bytes.HasPrefix(head, []byte(listMagic)) {
		return nil, time.Time{}, &VerifyError{Reason: ReasonUnsigned, Err: fmt.Errorf("list %s from %q is not signed", name, origin)}
	}
	f := strings.Fields(string(head[len(listMagic):]))
	if len(f) != 5 || f[0] != origin || f[1] != name {
		return nil, time.Time{}, verifyErr(ReasonBadSignature, "list %s from %q: malformed signature line", name, origin)
	}
	ns, err1 := strconv.ParseInt(f[2], 10, 64)
	sig, err2 := base64.RawURLEncoding.DecodeString(f[4])
	if err := errors.Join(err1, err2); err != nil {
		return nil, time.Time{}, verifyErr(ReasonBadSignature, "list %s from %q: malformed signature line: %v", name, origin, err)
	}
	want, ok := v.keys[origin]
	if !ok {
		return nil, time.Time{}, verifyErr(ReasonUnknownOrigin, "list %s from %q, which is not in fleet.hosts", name, origin)
	}
	if f[3] != want {
		return nil, time.Time{}, verifyErr(ReasonSignerMismatch, "list %s under origin %q signed by another key", name, origin)
	}
	t := time.Unix(0, ns)
	pub := v.raw[origin]
	if len(sig) != ed25519.SignatureSize || pub == nil || !ed25519.Verify(pub, listSignedBytes(v.fleet, origin, name, t, want, data), sig) {
		return nil, time.Time{}, verifyErr(ReasonBadSignature, "list %s from %q: signature does not verify", name, origin)
	}
	return data, t, nil
}
