package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/gateway"
	"github.com/moat-sh/moat/internal/host"
)

// fakeHost is a fixture root the monitors read instead of the machine.
type fakeHost struct {
	t    *testing.T
	root string
}

func newFakeHost(t *testing.T) *fakeHost {
	f := &fakeHost{t: t, root: t.TempDir()}
	f.memory(50, -1)
	f.oomKills(0)
	return f
}

func (f *fakeHost) write(path, data string) {
	f.t.Helper()
	p := filepath.Join(f.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// disk sets the root filesystem's use, in percent of 1000 GB.
func (f *fakeHost) disk(usedPercent int) {
	b, _ := json.Marshal([]host.Disk{{Device: "/dev/vda1", Mountpoint: "/", FSType: "ext4",
		Size: 1000e9, Used: uint64(usedPercent) * 10e9, Avail: uint64(100-usedPercent) * 10e9}})
	f.write(".fixture/df.json", string(b))
}

// memory sets the available share of memory and PSI some avg60 (<0: no PSI).
func (f *fakeHost) memory(availPercent int, stall float64) {
	f.write("proc/meminfo", fmt.Sprintf("MemTotal: 1000000 kB\nMemFree: 1 kB\nMemAvailable: %d kB\n", availPercent*10000))
	if stall < 0 {
		os.Remove(filepath.Join(f.root, "proc/pressure/memory"))
		return
	}
	f.write("proc/pressure/memory", fmt.Sprintf("some avg10=0.00 avg60=%.2f avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", stall))
}

func (f *fakeHost) oomKills(n int) {
	f.write("proc/vmstat", fmt.Sprintf("nr_free_pages 1000\noom_kill %d\nnr_zspages 0\n", n))
}

func (f *fakeHost) reboot(pkgs ...string) {
	if pkgs == nil {
		os.Remove(filepath.Join(f.root, "var/run/reboot-required"))
		return
	}
	f.write("var/run/reboot-required", "*** System restart required ***\n")
	f.write("var/run/reboot-required.pkgs", strings.Join(pkgs, "\n")+"\n")
}

// recorder collects notified events.
type recorder struct{ events []alert.Event }

func (r *recorder) notify(e alert.Event) { r.events = append(r.events, e) }

// take returns the events since the last take, as "kind severity: title".
func (r *recorder) take() []string {
	var out []string
	for _, e := range r.events {
		out = append(out, fmt.Sprintf("%s %s: %s", e.Kind, e.Severity, e.Title))
	}
	r.events = nil
	return out
}

func TestMonitorHostConditions(t *testing.T) {
	fh := newFakeHost(t)
	rec := &recorder{}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	m := newMonitor(&monitor{host: host.New(fh.root), notify: rec.notify, now: func() time.Time { return now }})

	steps := []struct {
		name  string
		setup func()
		want  []string
	}{
		{"calm", func() { fh.disk(85) }, nil},
		{"disk full, reboot pending", func() { fh.disk(93); fh.reboot("linux-image-amd64") },
			[]string{"disk warning: Disk / is 93% full", "reboot warning: Reboot required"}},
		{"no change, no repeat", func() {}, nil},
		{"disk critical, one OOM kill", func() { fh.disk(99); fh.oomKills(1) },
			[]string{"disk critical: Disk / is 99% full", "memory critical: Out of memory: killed 1 process (see dmesg)"}},
		{"hovering below critical keeps quiet", func() { fh.disk(97) }, nil},
		{"99% again is no news: 97% kept it critical", func() { fh.disk(99) }, nil},
		{"clears", func() { fh.disk(80); fh.reboot() }, nil},
		{"a new episode alerts again", func() { fh.disk(91) }, []string{"disk warning: Disk / is 91% full"}},
		{"hysteresis: 89% stays raised", func() { fh.disk(89) }, nil},
		{"three OOM kills", func() { fh.oomKills(4) }, []string{"memory critical: Out of memory: killed 3 processes (see dmesg)"}},
		{"low memory", func() { fh.memory(3, -1) }, []string{"memory warning: Memory pressure: 3% available"}},
		{"memory recovering but under the clear mark", func() { fh.memory(6, -1) }, nil},
		{"memory recovered", func() { fh.memory(40, -1) }, nil},
		{"stalls", func() { fh.memory(40, 25) }, []string{"memory warning: Memory pressure: 40% available"}},
	}
	for _, s := range steps {
		s.setup()
		m.check()
		now = now.Add(time.Minute)
		if got := rec.take(); !slices.Equal(got, s.want) {
			t.Errorf("%s: alerts\n got %q\nwant %q", s.name, got, s.want)
		}
	}
	if got := conditionKeys(m.conditions()); !slices.Equal(got, []string{"disk /", "memory pressure"}) {
		t.Errorf("conditions = %q", got)
	}
}

func TestMonitorCertificates(t *testing.T) {
	rec := &recorder{}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	certs := []gateway.CertInfo{{Host: "a.example", Source: gateway.CertACME, NotAfter: now.Add(60 * 24 * time.Hour)}}
	m := newMonitor(&monitor{host: host.New(t.TempDir()), notify: rec.notify, now: func() time.Time { return now },
		certs: func() []gateway.CertInfo { return certs }})

	day := 24 * time.Hour
	steps := []struct {
		name  string
		setup func()
		want  []string
	}{
		{"far from expiry", func() {}, nil},
		{"renewal fails", func() { certs[0].Err = "acme: rate limited" },
			[]string{"cert warning: Certificate renewal failed for a.example"}},
		{"still failing, no repeat", func() { certs[0].Err = "acme: rate limited again" }, nil},
		{"13 days left", func() { now = certs[0].NotAfter.Add(-13 * day) },
			[]string{"cert warning: Certificate for a.example expires in 13 days"}},
		{"12 days left, no repeat", func() { now = now.Add(day) }, nil},
		{"2 days left is critical", func() { now = certs[0].NotAfter.Add(-2 * day) },
			[]string{"cert critical: Certificate for a.example expires in 2 days"}},
		{"renewed", func() { certs[0].Err, certs[0].NotAfter = "", now.Add(90*day) }, nil},
		{"a site never obtained", func() {
			certs = append(certs, gateway.CertInfo{Host: "b.example", Source: gateway.CertACME, Err: "no route to CA"})
		}, []string{"cert critical: Certificate for b.example could not be obtained"}},
		{"site removed", func() { certs = certs[:1] }, nil},
	}
	for _, s := range steps {
		s.setup()
		m.check()
		if got := rec.take(); !slices.Equal(got, s.want) {
			t.Errorf("%s: alerts\n got %q\nwant %q", s.name, got, s.want)
		}
	}
	if c := m.conditions(); len(c) != 0 {
		t.Errorf("conditions after renewal and removal: %+v", c)
	}
}

func TestDiskLevel(t *testing.T) {
	for _, c := range []struct {
		prev int
		used float64
		want int
	}{
		{0, 90, 0}, {0, 90.1, 1}, {0, 97.9, 1}, {0, 98, 2}, {1, 88.5, 1}, {1, 88, 0},
		{2, 96.5, 2}, {2, 95.9, 1}, {2, 50, 0},
	} {
		if got := diskLevel(c.prev, c.used); got != c.want {
			t.Errorf("diskLevel(%d, %v) = %d, want %d", c.prev, c.used, got, c.want)
		}
	}
	if got := usedPercent(0, 0); got != 0 {
		t.Errorf("usedPercent of an empty filesystem = %v", got)
	}
}

func conditionKeys(cs []Condition) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = strings.TrimSpace(c.Kind + " " + c.Subject)
	}
	slices.Sort(out)
	return out
}
