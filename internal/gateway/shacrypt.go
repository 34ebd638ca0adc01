package gateway

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// SHA-crypt, as glibc's crypt(3) and `htpasswd -2` ($5$, SHA-256) and
// `htpasswd -5` ($6$, SHA-512) write it: Ulrich Drepper's "Unix crypt
// using SHA-256 and SHA-512".

const (
	shaCryptDefaultRounds = 5000
	shaCryptMinRounds     = 1000
	// shaCryptMaxRounds is lower than the spec's 999999999: an entry is
	// verified on requests, and the file should not be a way to make
	// each one cost seconds.
	shaCryptMaxRounds = 1_000_000
)

var (
	sha256Order = [][3]int{{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14}, {15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29}}
	sha512Order = [][3]int{{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41}}
)

// parseSHACrypt splits "$5$[rounds=N$]salt$hash" (or $6$).
func parseSHACrypt(s string) (magic string, rounds int, explicit bool, salt string, err error) {
	switch {
	case strings.HasPrefix(s, "$5$"), strings.HasPrefix(s, "$6$"):
		magic = s[:3]
	default:
		return "", 0, false, "", fmt.Errorf("not SHA-crypt")
	}
	rest := s[3:]
	rounds = shaCryptDefaultRounds
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		n, after, found := strings.Cut(r, "$")
		v, perr := strconv.Atoi(n)
		if !found || perr != nil {
			return "", 0, false, "", fmt.Errorf("malformed rounds")
		}
		rounds, explicit, rest = min(max(v, shaCryptMinRounds), 999999999), true, after
		if rounds > shaCryptMaxRounds {
			return "", 0, false, "", fmt.Errorf("rounds=%d is more than %d", v, shaCryptMaxRounds)
		}
	}
	salt, sum, ok := strings.Cut(rest, "$")
	want := 43
	if magic == "$6$" {
		want = 86
	}
	if !ok || len(salt) > 16 || strings.ContainsAny(salt, "$:\n") || len(sum) != want {
		return "", 0, false, "", fmt.Errorf("malformed %s hash", magic)
	}
	return magic, rounds, explicit, salt, nil
}

// shaCrypt computes the full SHA-crypt string for pass with the settings
// of an entry.
func shaCrypt(magic string, rounds int, explicit bool, salt string, pass []byte) []byte {
	newHash, order, tail := sha256.New, sha256Order, func(sum []byte, out func(b2, b1, b0 byte, n int)) { out(0, sum[31], sum[30], 3) }
	if magic == "$6$" {
		newHash, order, tail = sha512.New, sha512Order, func(sum []byte, out func(b2, b1, b0 byte, n int)) { out(0, 0, sum[63], 2) }
	}
	sum := shaCryptSum(newHash, pass, []byte(salt), rounds)
	out := []byte(magic)
	if explicit {
		out = append(out, "rounds="+strconv.Itoa(rounds)+"$"...)
	}
	out = append(out, salt...)
	out = append(out, '$')
	const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b64 := func(b2, b1, b0 byte, n int) {
		w := uint32(b2)<<16 | uint32(b1)<<8 | uint32(b0)
		for ; n > 0; n-- {
			out = append(out, itoa64[w&0x3f])
			w >>= 6
		}
	}
	for _, o := range order {
		b64(sum[o[0]], sum[o[1]], sum[o[2]], 4)
	}
	tail(sum, b64)
	return out
}

func shaCryptSum(newHash func() hash.Hash, pass, salt []byte, rounds int) []byte {
	h := newHash()
	size := h.Size()
	// B = H(pass salt pass)
	h.Write(pass)
	h.Write(salt)
	h.Write(pass)
	b := h.Sum(nil)
	// A = H(pass salt B-repeated, then by the bits of len(pass))
	a := newHash()
	a.Write(pass)
	a.Write(salt)
	for n := len(pass); n > 0; n -= size {
		a.Write(b[:min(n, size)])
	}
	for n := len(pass); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(b)
		} else {
			a.Write(pass)
		}
	}
	sumA := a.Sum(nil)
	// P from DP = H(pass × len(pass)); S from DS = H(salt × (16 + A[0])).
	dp := newHash()
	for range len(pass) {
		dp.Write(pass)
	}
	p := repeatTo(dp.Sum(nil), len(pass))
	ds := newHash()
	for range 16 + int(sumA[0]) {
		ds.Write(salt)
	}
	s := repeatTo(ds.Sum(nil), len(salt))
	c := sumA
	for i := range rounds {
		r := newHash()
		if i&1 != 0 {
			r.Write(p)
		} else {
			r.Write(c)
		}
		if i%3 != 0 {
			r.Write(s)
		}
		if i%7 != 0 {
			r.Write(p)
		}
		if i&1 != 0 {
			r.Write(c)
		} else {
			r.Write(p)
		}
		c = r.Sum(nil)
	}
	return c
}

func repeatTo(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, d[:min(len(d), n-len(out))]...)
	}
	return out
}
