package blocklist

import (
	"bytes"
	"fmt"
	"testing"
)

// FuzzParse: any input parses or is refused with a line number, never
// panics; what parses is masked, valid, never /0, and reads back the
// same when written out one per line.
func FuzzParse(f *testing.F) {
	for _, s := range []string{dropList, fireholList, "", "1.2.3.4\n", "::ffff:1.2.3.4/128\n", "1.2.3.0/24;x\n#\n", "fe80::1%lo\n", "0.0.0.0/0\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := Parse(bytes.NewReader(data), 1000)
		if err != nil {
			return
		}
		var out bytes.Buffer
		for _, p := range ps {
			if !p.IsValid() || p != p.Masked() || p.Bits() == 0 || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("parsed %v from %q", p, data)
			}
			fmt.Fprintln(&out, p)
		}
		again, err := Parse(&out, 1000)
		if err != nil || fmt.Sprint(again) != fmt.Sprint(ps) {
			t.Fatalf("round trip: %v %v, want %v", again, err, ps)
		}
	})
}
