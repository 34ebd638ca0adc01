package cli

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/filter"
	"github.com/moat-sh/moat/internal/filter/filtertest"
)

// BenchmarkFilterTest is `moat filter test sshd` on a generated 200k-line
// auth.log: reading, parsing and counting; one op is the whole file.
func BenchmarkFilterTest(b *testing.B) {
	p := filepath.Join(b.TempDir(), "auth.log")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	st, err := (filtertest.SSHDLog{Lines: 200000, Seed: 1}).Write(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		flt, _ := filter.New("sshd", "", filter.Options{Now: time.Now})
		if _, err := testFilter(flt, p, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
