package daemon

import "testing"

func TestParseOOMKill(t *testing.T) {
	for _, c := range []struct {
		rec  string
		want oomVictim
		ok   bool
	}{
		{"3,1234,98765432,-;Out of memory: Killed process 4321 (stress) total-vm:1048576kB, anon-rss:1000kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:2100kB oom_score_adj:0\n SUBSYSTEM=memory\n",
			oomVictim{4321, "stress"}, true},
		{"3,77,1,-;Memory cgroup out of memory: Killed process 99 (postgres) total-vm:2kB\n", oomVictim{99, "postgres"}, true},
		{"3,77,1,-;Out of memory: Kill process 12 (java) score 900 or sacrifice child\n", oomVictim{12, "java"}, true},
		{"3,77,1,-;Out of memory: Killed process 12 (a) b)) total-vm:1kB\n", oomVictim{12, "a) b)"}, true},
		{"3,77,1,-;Out of memory: Killed process 12 (x), UID 0, total-vm:1kB\n", oomVictim{12, "x"}, true},
		{"6,5,1,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),task=stress,pid=4321,uid=0\n", oomVictim{}, false},
		{"6,5,1,-;someone wrote: Killed process 1 (init)\n", oomVictim{}, false},
		{"6,5,1,-;Out of memory: Killed process -1 (x)\n", oomVictim{}, false},
		{"6,5,1,-;Out of memory: Killed process 5 ()\n", oomVictim{}, false},
		{"no semicolon", oomVictim{}, false},
	} {
		msg, ok := kmsgMessage([]byte(c.rec))
		var got oomVictim
		if ok {
			got, ok = parseOOMKill(msg)
		}
		if ok != c.ok || got != c.want {
			t.Errorf("%q: got %+v %v, want %+v %v", c.rec, got, ok, c.want, c.ok)
		}
	}
}

func TestParseVMStatAndPSI(t *testing.T) {
	if n, ok := parseVMStatOOM([]byte("nr_free_pages 1\noom_kill 17\nzz 3\n")); !ok || n != 17 {
		t.Errorf("parseVMStatOOM = %d %v", n, ok)
	}
	if _, ok := parseVMStatOOM([]byte("nr_free_pages 1\n")); ok {
		t.Error("a kernel without oom_kill parsed")
	}
	psi := "some avg10=1.50 avg60=12.25 avg300=3.00 total=12345\nfull avg10=0.00 avg60=4.00 avg300=0.00 total=1\n"
	if v, ok := parsePSISome60([]byte(psi)); !ok || v != 12.25 {
		t.Errorf("parsePSISome60 = %v %v", v, ok)
	}
	for _, bad := range []string{"", "full avg60=3\n", "some avg60=NaN\n", "some avg60=101\n", "some avg60=-1\n"} {
		if v, ok := parsePSISome60([]byte(bad)); ok {
			t.Errorf("parsePSISome60(%q) = %v, want no value", bad, v)
		}
	}
}

func FuzzOOMKill(f *testing.F) {
	f.Add([]byte("3,1,2,-;Out of memory: Killed process 4321 (stress) total-vm:1kB\n K=V\n"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		msg, ok := kmsgMessage(rec)
		if !ok {
			return
		}
		v, ok := parseOOMKill(msg)
		if ok && (v.pid <= 0 || v.comm == "" || len(v.comm) > 15) {
			t.Fatalf("victim %+v from %q", v, rec)
		}
	})
}

func FuzzProcStats(f *testing.F) {
	f.Add([]byte("some avg10=0.00 avg60=1.00 avg300=0.00 total=1\noom_kill 3\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, ok := parsePSISome60(b); ok && !(v >= 0 && v <= 100) {
			t.Fatalf("stall %v out of range from %q", v, b)
		}
		parseVMStatOOM(b)
	})
}
