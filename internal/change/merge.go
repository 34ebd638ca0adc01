package change

import (
	"bytes"
	"slices"
)

// maxMergeCells bounds the line matching of a three-way merge (lines of
// one file times lines of the other, after common ends are trimmed):
// moat's files are configuration, and a merge too big to compute is a
// conflict, never a guess.
const maxMergeCells = 4 << 20

// mergeText reverts moat's edit of a text file, line by line: base is the
// file as moat left it, ours as it was before moat, theirs as it is now.
// The result has ours' changes (moat's reverted) and theirs' (everyone
// else's kept) where they touch different lines; ok is false when they
// touch the same or adjacent lines differently, and then the result is
// nil.
func mergeText(base, ours, theirs []byte) ([]byte, bool) {
	b, o, t := splitLines(base), splitLines(ours), splitLines(theirs)
	mo, ok1 := matchLines(b, o)
	mt, ok2 := matchLines(b, t)
	if !ok1 || !ok2 {
		return nil, false
	}
	var out [][]byte
	i, oi, ti := 0, 0, 0
	for {
		// The next base line kept by both sides is a fixed point.
		j := i
		for j < len(b) && (mo[j] < 0 || mt[j] < 0) {
			j++
		}
		oe, te := len(o), len(t)
		if j < len(b) {
			oe, te = mo[j], mt[j]
		}
		bc, oc, tc := b[i:j], o[oi:oe], t[ti:te]
		switch {
		case sameLines(oc, bc):
			out = append(out, tc...)
		case sameLines(tc, bc), sameLines(oc, tc):
			out = append(out, oc...)
		case len(bc) > 0 && hasPrefix(tc, bc):
			// They added lines right after lines moat changed (two
			// appends at the end of fstab): moat's part reverts, theirs
			// follow.
			out = append(append(out, oc...), tc[len(bc):]...)
		case len(bc) > 0 && hasSuffix(tc, bc):
			out = append(append(out, tc[:len(tc)-len(bc)]...), oc...)
		case len(bc) > 0 && hasPrefix(oc, bc):
			out = append(append(out, tc...), oc[len(bc):]...)
		case len(bc) > 0 && hasSuffix(oc, bc):
			out = append(append(out, oc[:len(oc)-len(bc)]...), tc...)
		default:
			return nil, false
		}
		if j >= len(b) {
			break
		}
		out = append(out, b[j])
		i, oi, ti = j+1, oe+1, te+1
	}
	res := bytes.Join(out, nil)
	if res == nil {
		res = []byte{}
	}
	return res, true
}

// splitLines splits after each newline; the last line may lack one.
func splitLines(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			out = append(out, data)
			break
		}
		out = append(out, data[:i+1])
		data = data[i+1:]
	}
	return out
}

func sameLines(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, bytes.Equal)
}

// matchLines returns, for each line of a, the line of b it is matched to
// in a longest common subsequence (-1 when none); false when the files
// are too big to match.
func matchLines(a, b [][]byte) ([]int, bool) {
	m := make([]int, len(a))
	for i := range m {
		m[i] = -1
	}
	// Common ends match trivially.
	p := 0
	for p < len(a) && p < len(b) && bytes.Equal(a[p], b[p]) {
		m[p] = p
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && bytes.Equal(a[len(a)-1-s], b[len(b)-1-s]) {
		m[len(a)-1-s] = len(b) - 1 - s
		s++
	}
	ma, mb := a[p:len(a)-s], b[p:len(b)-s]
	if len(ma) == 0 || len(mb) == 0 {
		return m, true
	}
	if len(ma)*len(mb) > maxMergeCells {
		return nil, false
	}
	// lcs[i][j]: the LCS length of ma[i:] and mb[j:].
	w := len(mb) + 1
	lcs := make([]int32, (len(ma)+1)*w)
	for i := len(ma) - 1; i >= 0; i-- {
		for j := len(mb) - 1; j >= 0; j-- {
			if bytes.Equal(ma[i], mb[j]) {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	for i, j := 0, 0; i < len(ma) && j < len(mb); {
		switch {
		case bytes.Equal(ma[i], mb[j]):
			m[p+i] = p + j
			i++
			j++
		case lcs[(i+1)*w+j] >= lcs[i*w+j+1]:
			i++
		default:
			j++
		}
	}
	return m, true
}

// othersLines returns the lines of now that are not moat's (not matched
// to a line of moat's version), in order; false when the files are too
// big to match.
func othersLines(moat, now []byte) ([]byte, bool) {
	a, n := splitLines(moat), splitLines(now)
	m, ok := matchLines(n, a)
	if !ok {
		return nil, false
	}
	var out []byte
	for i, l := range n {
		if m[i] < 0 {
			out = append(out, l...)
		}
	}
	return out, true
}

func hasPrefix(l, p [][]byte) bool { return len(l) >= len(p) && sameLines(l[:len(p)], p) }

func hasSuffix(l, p [][]byte) bool { return len(l) >= len(p) && sameLines(l[len(l)-len(p):], p) }
