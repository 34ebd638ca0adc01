package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Process is a running process as seen in <root>/proc.
type Process struct {
	PID     int
	Comm    string   // kernel's name for it, at most 15 bytes
	Args    []string // argv; empty for kernel threads
	Cmdline string   // Args separated by spaces
	Exe     string   // base name of the executable; "" if unreadable (not root)
}

// Is reports whether p is the program name: its comm, its executable, or
// the script an interpreter runs (python3 /usr/bin/fail2ban-server).
// Matching comm allows for the kernel's 15-byte truncation.
func (p Process) Is(name string) bool {
	if p.Exe == name || p.Comm == name || (len(name) > 15 && p.Comm == name[:15]) {
		return true
	}
	if len(p.Args) == 0 {
		return false
	}
	if filepath.Base(p.Args[0]) == name {
		return true
	}
	return len(p.Args) > 1 && isInterpreter(filepath.Base(p.Args[0])) && filepath.Base(p.Args[1]) == name
}

// isInterpreter reports whether argv[0] runs scripts, whose name is then
// argv[1].
func isInterpreter(base string) bool {
	for _, p := range []string{"python", "perl", "ruby", "node", "bash", "sh", "dash"} {
		if base == p || strings.HasPrefix(base, p) && strings.Trim(base[len(p):], "0123456789.") == "" {
			return true
		}
	}
	return false
}

// Processes lists the processes in <root>/proc in PID order. Processes
// that exit while being read are left out.
func (h *Host) Processes() ([]Process, error) {
	pids, err := h.pids()
	if err != nil {
		return nil, err
	}
	out := make([]Process, 0, len(pids))
	for _, pid := range pids {
		if p := h.process(pid); p != nil {
			out = append(out, *p)
		}
	}
	return out, nil
}

// Running reports which of names have at least one running process (see
// [Process.Is]).
func (h *Host) Running(names ...string) (map[string]bool, error) {
	procs, err := h.Processes()
	if err != nil {
		return nil, err
	}
	found := make(map[string]bool, len(names))
	for _, p := range procs {
		for _, n := range names {
			if p.Is(n) {
				found[n] = true
			}
		}
	}
	return found, nil
}

// SystemdPID1 reports whether PID 1 is systemd (<root>/proc/1/comm).
func (h *Host) SystemdPID1() (bool, error) {
	b, err := h.ReadFile("/proc/1/comm")
	if err != nil {
		return false, fmt.Errorf("init system: %w", err)
	}
	return strings.TrimSpace(string(b)) == "systemd", nil
}

// JournaldRunning reports whether systemd-journald is running.
func (h *Host) JournaldRunning() (bool, error) {
	found, err := h.Running("systemd-journald")
	return found["systemd-journald"], err
}

// TimeSync says whether the clock is synchronised, and how that was
// learned.
type TimeSync struct {
	Synced bool
	// Signal names the evidence: "timesyncd" when
	// <root>/run/systemd/timesync/synchronized exists, "adjtimex" when
	// the kernel's STA_UNSYNC status bit was read (live only; any NTP
	// daemon that disciplines the clock, chronyd or ntpd, clears it).
	Signal string
}

// TimeSynced reports whether the system clock is synchronised. It first
// looks for systemd-timesyncd's flag file, then, live, asks the kernel via
// adjtimex(2) without changing anything. Under a fixture without the flag
// file the answer is unknown: ErrUnavailable.
func (h *Host) TimeSynced() (TimeSync, error) {
	_, err := os.Stat(h.Path("/run/systemd/timesync/synchronized"))
	if err == nil {
		return TimeSync{Synced: true, Signal: "timesyncd"}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return TimeSync{}, fmt.Errorf("time sync: %w", hint(err))
	}
	if !h.Live() {
		return TimeSync{}, fmt.Errorf("time sync: %w under a fixture root without run/systemd/timesync/synchronized", ErrUnavailable)
	}
	var tx unix.Timex // Modes 0: read only
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return TimeSync{}, fmt.Errorf("time sync: adjtimex: %w", err)
	}
	synced := state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
	return TimeSync{Synced: synced, Signal: "adjtimex"}, nil
}
