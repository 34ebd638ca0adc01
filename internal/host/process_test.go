package host

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProcesses(t *testing.T) {
	ps, err := New(fixtureRoot).Processes()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 15 || ps[0].PID != 1 || ps[1].PID != 2 || ps[len(ps)-1].PID != 900 {
		t.Fatalf("got %d processes: %+v", len(ps), ps)
	}
	for _, p := range ps {
		switch p.PID {
		case 2:
			if p.Comm != "kthreadd" || len(p.Args) != 0 || p.Cmdline != "" || p.Exe != "" {
				t.Errorf("kernel thread = %+v", p)
			}
		case 200:
			if p.Exe != "postgres" || p.Cmdline != "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main" || len(p.Args) != 3 {
				t.Errorf("postgres = %+v", p)
			}
		case 700:
			if p.Exe != "systemd-journald" {
				t.Errorf("a deleted executable keeps its name: %+v", p)
			}
		}
	}
}

func TestProcessIs(t *testing.T) {
	for _, tc := range []struct {
		p    Process
		name string
		want bool
	}{
		{Process{Comm: "fail2ban-server", Args: []string{"/usr/bin/python3", "/usr/bin/fail2ban-server", "-xf"}}, "fail2ban-server", true},
		{Process{Comm: "f2b/server", Args: []string{"/usr/bin/python3.11", "/usr/bin/fail2ban-server"}}, "fail2ban-server", true},
		{Process{Comm: "vim", Args: []string{"vim", "crowdsec"}}, "crowdsec", false},
		{Process{Comm: "systemd-journal"}, "systemd-journald", true},
		{Process{Comm: "chronyd", Exe: "chronyd"}, "chronyd", true},
		{Process{Comm: "x", Exe: "sshguard"}, "sshguard", true},
		{Process{Comm: "ntpd"}, "chronyd", false},
		{Process{Comm: "bash", Args: []string{"-bash"}}, "bash", true},
		{Process{Comm: "sh", Args: []string{"/bin/sh", "/usr/sbin/sshguard"}}, "sshguard", true},
	} {
		if got := tc.p.Is(tc.name); got != tc.want {
			t.Errorf("%+v.Is(%q) = %v, want %v", tc.p, tc.name, got, tc.want)
		}
	}
}

func TestRunning(t *testing.T) {
	h := New(fixtureRoot)
	found, err := h.Running("fail2ban-server", "crowdsec", "sshguard", "tailscaled", "chronyd")
	if err != nil || !found["fail2ban-server"] || !found["tailscaled"] || found["crowdsec"] || found["sshguard"] || found["chronyd"] {
		t.Errorf("Running = %v, %v", found, err)
	}
	if ok, err := h.JournaldRunning(); err != nil || !ok {
		t.Errorf("JournaldRunning = %v, %v", ok, err)
	}
	if ok, err := h.SystemdPID1(); err != nil || !ok {
		t.Errorf("SystemdPID1 = %v, %v", ok, err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "proc/1"), 0o755)
	os.WriteFile(filepath.Join(dir, "proc/1/comm"), []byte("tini\n"), 0o644)
	if ok, err := New(dir).SystemdPID1(); err != nil || ok {
		t.Errorf("tini as PID 1: %v, %v", ok, err)
	}
	if ok, err := New(dir).JournaldRunning(); err != nil || ok {
		t.Errorf("JournaldRunning without journald: %v, %v", ok, err)
	}
}

func TestProcessesLive(t *testing.T) {
	ps, err := New("").Processes()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.PID == os.Getpid() {
			if !strings.HasSuffix(os.Args[0], p.Exe) && os.Geteuid() == 0 {
				t.Errorf("self = %+v, args %v", p, os.Args)
			}
			return
		}
	}
	t.Errorf("own PID %d not among %d processes", os.Getpid(), len(ps))
}

func TestTimeSynced(t *testing.T) {
	if ts, err := New(fixtureRoot).TimeSynced(); err != nil || ts != (TimeSync{true, "timesyncd"}) {
		t.Errorf("fixture: %+v, %v", ts, err)
	}
	if _, err := New(t.TempDir()).TimeSynced(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("fixture without flag: %v", err)
	}
	ts, err := New("").TimeSynced()
	if err != nil || ts.Signal == "" {
		t.Errorf("live: %+v, %v", ts, err)
	}
	t.Logf("live: %+v", ts)
}
