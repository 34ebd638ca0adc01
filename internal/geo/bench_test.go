package geo

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/oschwald/maxminddb-golang/v2"
)

// A database the size of GeoLite2-Country (~500k networks), built once per
// test binary; building takes several seconds.
var big struct {
	once    sync.Once
	data    []byte
	entries []entry
}

// cpuTime is the process's user and system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation from start on, a figure
// that, unlike ns/op, does not grow while other work on a shared machine
// holds the cores. Call it deferred, with cpuTime() taken just before the
// benchmark loop.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func bigDB(b *testing.B) *DB {
	big.once.Do(func() {
		big.entries = genEntries(rand.New(rand.NewPCG(7, 8)), 330_000, 200_000)
		big.data = buildMMDB(b, mmdbwriter.Options{RecordSize: 24}, big.entries)
		runtime.GC() // the build's garbage is not the benchmarks' cost
	})
	db, err := Open(writeFile(b, "big.mmdb", big.data))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// probeAddrs picks addresses inside random networks of the big database,
// plus a share of addresses it does not hold.
func probeAddrs(v6 bool, n int) []netip.Addr {
	r := rand.New(rand.NewPCG(9, 10))
	var addrs []netip.Addr
	for len(addrs) < n {
		p := netip.MustParsePrefix(big.entries[r.IntN(len(big.entries))].net)
		if p.Addr().Is6() != v6 {
			continue
		}
		a := p.Addr()
		if r.IntN(10) == 0 {
			a = lastAddr(p).Next() // often in a gap or the next network
		}
		addrs = append(addrs, a)
	}
	return addrs
}

func BenchmarkCountry(b *testing.B) {
	db := bigDB(b)
	for _, bc := range []struct {
		name string
		v6   bool
	}{{"v4", false}, {"v6", true}} {
		addrs := probeAddrs(bc.v6, 1<<14)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			i := 0
			for b.Loop() {
				db.Country(addrs[i&(len(addrs)-1)])
				i++
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					db.Country(addrs[i&(len(addrs)-1)])
					i++
				}
			})
		})
	}
	mapped := probeAddrs(false, 1<<14)
	for i, a := range mapped {
		mapped[i] = netip.AddrFrom16(a.As16())
	}
	b.Run("v4-mapped", func(b *testing.B) {
		defer reportCPU(b, cpuTime())
		i := 0
		for b.Loop() {
			db.Country(mapped[i&(len(mapped)-1)])
			i++
		}
	})
}

func BenchmarkPrefixes(b *testing.B) {
	db := bigDB(b)
	// Networks with data, as a database's size is usually quoted, and all
	// that Prefixes walks (empty ones and IPv4 aliases too).
	networks, walked := 0, 0
	for range db.reader.Load().Networks() {
		networks++
	}
	for range db.reader.Load().Networks(maxminddb.IncludeNetworksWithoutData(), maxminddb.IncludeAliasedNetworks()) {
		walked++
	}
	for _, bc := range []struct {
		name      string
		countries []string
	}{
		{"1-country", []string{genCode(0)}},
		{"3-countries", []string{genCode(0), genCode(1), genCode(5)}},
		{"10-countries", []string{genCode(0), genCode(1), genCode(2), genCode(3), genCode(4), genCode(5), genCode(6), genCode(7), genCode(8), genCode(9)}},
	} {
		// The networks Prefixes merges, to show what merging saves.
		matched := 0
		for res := range db.reader.Load().Networks() {
			if code, _ := decodeCode(res); slices.Contains(bc.countries, code) {
				matched++
			}
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var v4, v6 []netip.Prefix
			defer reportCPU(b, cpuTime())
			for b.Loop() {
				var err error
				v4, v6, err = db.Prefixes(bc.countries)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(networks), "networks")
			b.ReportMetric(float64(walked), "walked")
			b.ReportMetric(float64(matched), "matched")
			b.ReportMetric(float64(len(v4)+len(v6)), "cidrs")
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	bigDB(b)
	path := writeFile(b, "open.mmdb", big.data)
	b.SetBytes(int64(len(big.data)))
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		db, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
}

// BenchmarkCountryDecode is the lookup without moat's offset cache: the
// reader's Lookup and a decode of the code, for comparison.
func BenchmarkCountryDecode(b *testing.B) {
	r := bigDB(b).reader.Load()
	addrs := probeAddrs(false, 1<<14)
	b.ReportAllocs()
	defer reportCPU(b, cpuTime())
	i := 0
	for b.Loop() {
		var code string
		r.Lookup(addrs[i&(len(addrs)-1)]).DecodePath(&code, "country", "iso_code")
		i++
	}
}

// BenchmarkWalk is the bare walk Prefixes makes, without decoding or
// merging, for comparison.
func BenchmarkWalk(b *testing.B) {
	r := bigDB(b).reader.Load()
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		for res := range r.Networks(maxminddb.IncludeNetworksWithoutData(), maxminddb.IncludeAliasedNetworks()) {
			_ = res.Prefix()
		}
	}
}

// BenchmarkMerge merges every network of the big database, shuffled,
// against netipx's IPSetBuilder doing the same.
func BenchmarkMerge(b *testing.B) {
	bigDB(b)
	ps := make([]netip.Prefix, len(big.entries))
	for i, e := range big.entries {
		ps[i] = netip.MustParsePrefix(e.net)
	}
	rand.New(rand.NewPCG(11, 12)).Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	b.Run("geo", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime())
		for b.Loop() {
			Merge(ps)
		}
		b.ReportMetric(float64(len(ps)), "prefixes")
	})
	b.Run("netipx", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpuTime())
		for b.Loop() {
			netipxMerge(ps)
		}
	})
}
