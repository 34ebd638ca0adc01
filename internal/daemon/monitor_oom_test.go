package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/lab"
)

// memoryCgroup makes a throwaway memory cgroup limited to limit bytes,
// without swap, on cgroup v2 or v1; it is removed when t ends.
func memoryCgroup(t *testing.T, limit int) (procs string) {
	t.Helper()
	name := fmt.Sprintf("moat-oom-test-%d", os.Getpid())
	type layout struct{ dir, limitFile, swapFile string }
	var found *layout
	for _, l := range []layout{
		{"/sys/fs/cgroup", "memory.max", "memory.swap.max"},
		{"/sys/fs/cgroup/unified", "memory.max", "memory.swap.max"},
		{"/sys/fs/cgroup/memory", "memory.limit_in_bytes", ""},
	} {
		if _, err := os.Stat(filepath.Join(l.dir, "cgroup.procs")); err != nil {
			continue
		}
		if l.limitFile == "memory.max" {
			// v2: the memory controller must be enabled for children.
			b, err := os.ReadFile(filepath.Join(l.dir, "cgroup.subtree_control"))
			if err != nil || !slices.Contains(strings.Fields(string(b)), "memory") {
				continue
			}
		}
		found = &l
		break
	}
	lab.Require(t, found != nil, "no memory cgroup controller to confine an OOM kill in")
	dir := filepath.Join(found.dir, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		t.Fatalf("make cgroup: %v", err)
	}
	t.Cleanup(func() {
		for range 50 { // rmdir fails while the killed process is still being reaped
			if err := os.Remove(dir); err == nil || errors.Is(err, fs.ErrNotExist) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, found.limitFile), []byte(strconv.Itoa(limit)), 0o644); err != nil {
		t.Fatalf("limit cgroup: %v", err)
	}
	if found.swapFile != "" {
		os.WriteFile(filepath.Join(dir, found.swapFile), []byte("0"), 0o644)
	}
	return filepath.Join(dir, "cgroup.procs")
}

// TestOOMChild is the process the OOM killer kills: it waits to be moved
// into the cgroup, then allocates and touches far more than the limit.
func TestOOMChild(t *testing.T) {
	if os.Getenv("MOAT_OOM_CHILD") != "1" {
		return // only as TestOOMKillAlerted's child
	}
	var b [1]byte
	os.Stdin.Read(b[:])
	var hold [][]byte
	for range 64 {
		chunk := make([]byte, 8<<20)
		for i := 0; i < len(chunk); i += 4096 {
			chunk[i] = 1
		}
		hold = append(hold, chunk)
	}
	t.Fatalf("allocated %d MiB without being killed", len(hold)*8)
}

// TestOOMKillAlerted: a real OOM kill, confined to a 32 MiB memory cgroup,
// is alerted once, naming the process the kernel killed.
func TestOOMKillAlerted(t *testing.T) {
	lab.RequireRoot(t)
	procs := memoryCgroup(t, 32<<20)
	k, err := openKmsg()
	lab.Require(t, err == nil, fmt.Sprintf("kernel log: %v", err))
	rec := &recorder{}
	m := newMonitor(&monitor{host: host.New(""), notify: rec.notify, kmsg: k})
	defer k.Close()
	m.checkMemory(time.Now()) // the baseline of oom_kill
	rec.take()

	child := exec.Command(os.Args[0], "-test.run=^TestOOMChild$")
	child.Env = append(os.Environ(), "MOAT_OOM_CHILD=1")
	in, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(procs, []byte(strconv.Itoa(child.Process.Pid)), 0o644); err != nil {
		child.Process.Kill()
		t.Fatalf("move child into the cgroup: %v", err)
	}
	in.Write([]byte{1})
	err = child.Wait()
	if ws, ok := child.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
		t.Fatalf("child was not killed: %v", err)
	}

	// The kernel logs the kill as it happens; give the record a moment.
	var oom []alert.Event
	for deadline := time.Now().Add(3 * time.Second); len(oom) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		m.checkMemory(time.Now())
		for _, e := range rec.events {
			// Other processes on the machine may be OOM-killed meanwhile:
			// look for ours.
			if e.Fields["oom_kill"] == "true" && e.Fields["pid"] == strconv.Itoa(child.Process.Pid) {
				oom = append(oom, e)
			}
		}
		rec.events = nil
	}
	if len(oom) != 1 {
		t.Fatalf("OOM alerts = %+v, want one", oom)
	}
	comm := filepath.Base(os.Args[0])
	if len(comm) > 15 {
		comm = comm[:15]
	}
	if e := oom[0]; e.Severity != alert.Critical || e.Fields["process"] != comm || e.Fields["pid"] != strconv.Itoa(child.Process.Pid) {
		t.Errorf("OOM alert = %s %q %v, want critical naming %s (pid %d)", e.Severity, e.Title, e.Fields, comm, child.Process.Pid)
	}
	m.checkMemory(time.Now())
	for _, e := range rec.events {
		if e.Fields["pid"] == strconv.Itoa(child.Process.Pid) {
			t.Errorf("the kill alerted again on the next check: %+v", e)
		}
	}
}
