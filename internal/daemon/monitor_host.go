package daemon

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/gateway"
)

// Thresholds of the host checks. Each condition clears a little below the
// level that raised it, so a value hovering at a threshold alerts once.
const (
	diskCritical = 98 // percent used; alert.DiskThreshold is the warning
	diskMargin   = 2

	memLowPercent = 5  // MemAvailable below this share of MemTotal
	memClear      = 8  // … clears above this
	stallHigh     = 10 // PSI memory "some" avg60, percent
	stallClear    = 5

	certCritical = 3 * 24 * time.Hour // alert.Cert is critical within this
)

// diskLevel grades a filesystem's used percentage, given its last level.
func diskLevel(prev int, used float64) int {
	switch {
	case used >= diskCritical, prev >= 2 && used >= diskCritical-diskMargin:
		return 2
	case used > alert.DiskThreshold, prev >= 1 && used > alert.DiskThreshold-diskMargin:
		return 1
	}
	return 0
}

// usedPercent is df's Use%: used over what users can have, as root's
// reserved blocks are not theirs.
func usedPercent(used, avail uint64) float64 {
	if used+avail == 0 {
		return 0
	}
	return 100 * float64(used) / float64(used+avail)
}

func (m *monitor) checkDisks(now time.Time) {
	disks, err := m.host.Disks()
	if err != nil {
		m.log.Debug("monitor: disks", "err", err)
		return
	}
	seen := map[string]bool{}
	for _, d := range disks {
		seen[d.Mountpoint] = true
		used := usedPercent(d.Used, d.Avail)
		m.set(alert.KindDisk, d.Mountpoint, diskLevel(m.levelOf(alert.KindDisk, d.Mountpoint), used), now, func() alert.Event {
			return alert.Disk{Mount: d.Mountpoint, UsedPercent: used, FreeBytes: d.Avail, Time: now}.Event()
		})
	}
	m.sweep(alert.KindDisk, seen, now)
}

// memoryLevel grades memory pressure: little available, or tasks
// stalling on memory (stall < 0: the kernel has no PSI).
func memoryLevel(prev int, availPercent, stall float64) int {
	if availPercent < memLowPercent || stall >= stallHigh {
		return 1
	}
	if prev > 0 && (availPercent < memClear || stall >= stallClear) {
		return 1
	}
	return 0
}

func (m *monitor) checkMemory(now time.Time) {
	mi, err := m.host.Memory()
	if err != nil || mi.MemTotal == 0 {
		m.log.Debug("monitor: meminfo", "err", err)
		return
	}
	avail := 100 * float64(mi.MemAvailable) / float64(mi.MemTotal)
	stall := -1.0
	if b, err := m.host.ReadFile("/proc/pressure/memory"); err == nil {
		if v, ok := parsePSISome60(b); ok {
			stall = v
		}
	}
	m.set(alert.KindMemory, "pressure", memoryLevel(m.levelOf(alert.KindMemory, "pressure"), avail, stall), now, func() alert.Event {
		return alert.Memory{AvailablePercent: avail, Stall: max(stall, 0), Time: now}.Event()
	})

	// OOM kills are events, not a condition: each one alerts.
	if m.kmsg != nil {
		m.victims = m.victims[:0]
		m.kmsg.drain(func(msg []byte) {
			if v, ok := parseOOMKill(msg); ok && len(m.victims) < maxOOMAlerts {
				m.victims = append(m.victims, v)
			}
		})
	}
	b, err := m.host.ReadFile("/proc/vmstat")
	if err != nil {
		return
	}
	n, ok := parseVMStatOOM(b)
	if !ok {
		return
	}
	was, known := m.oom, m.oomOK
	m.oom, m.oomOK = n, true
	if !known || n <= was {
		return
	}
	m.oomAlerts(int(min(n-was, 1<<20)), avail, now)
}

// maxOOMAlerts bounds the OOM kills named one by one in a check: a
// machine thrashing through kills gets a handful of messages and one
// with the count of the rest, not a flood.
const maxOOMAlerts = 5

func (m *monitor) oomAlerts(kills int, avail float64, now time.Time) {
	named := m.victims[:min(len(m.victims), kills, maxOOMAlerts)]
	for _, v := range named {
		m.notify(alert.Memory{OOMKill: true, Process: v.comm, PID: v.pid, AvailablePercent: avail, Time: now}.Event())
	}
	if rest := kills - len(named); rest > 0 {
		// Past the named ones, or the kernel log had no names for these.
		what := "1 process"
		if rest > 1 {
			what = fmt.Sprintf("%d processes", rest)
		}
		if len(named) > 0 {
			what += " more"
		}
		m.notify(alert.Memory{OOMKill: true, Process: what + " (see dmesg)", AvailablePercent: avail, Time: now}.Event())
	}
}

func (m *monitor) checkReboot(now time.Time) {
	r, err := m.host.RebootRequired()
	if err != nil {
		return
	}
	level := 0
	if r.Required {
		level = 1
	}
	m.set(alert.KindReboot, "", level, now, func() alert.Event {
		return alert.Reboot{Packages: r.Packages, Time: now}.Event()
	})
}

// certLevel grades a certificate's time left.
func certLevel(notAfter, now time.Time) int {
	if notAfter.IsZero() {
		return 0 // not obtained yet: a failure to obtain it is its own condition
	}
	switch left := notAfter.Sub(now); {
	case left < certCritical:
		return 2
	case left < alert.CertWarnDays*24*time.Hour:
		return 1
	}
	return 0
}

// Condition subjects of certificates: the expiry is the host name; a
// failing renewal is the host name with this suffix.
const renewSuffix = " renewal"

func (m *monitor) checkCerts(now time.Time) {
	if m.certs == nil {
		return
	}
	seen := map[string]bool{}
	for _, c := range m.certs() {
		seen[c.Host], seen[c.Host+renewSuffix] = true, true
		m.set(alert.KindCert, c.Host, certLevel(c.NotAfter, now), now, func() alert.Event {
			return alert.Cert{Domain: c.Host, NotAfter: c.NotAfter, Time: now}.Event()
		})
		failing := 0
		if c.Err != "" {
			failing = 1
		}
		m.set(alert.KindCert, c.Host+renewSuffix, failing, now, func() alert.Event {
			return certFailure(c, now)
		})
	}
	m.sweep(alert.KindCert, seen, now)
}

// certFailure is the alert of a failed renewal, or of a certificate ACME
// has not obtained at all (nothing to expire, but nothing served either).
func certFailure(c gateway.CertInfo, now time.Time) alert.Event {
	e := alert.Cert{Domain: c.Host, NotAfter: c.NotAfter, RenewErr: c.Err, Time: now}.Event()
	if c.NotAfter.IsZero() {
		e.Title = "Certificate for " + c.Host + " could not be obtained"
		e.Text = "ACME could not obtain a certificate for " + c.Host + "; HTTPS clients get no certificate.\nFailure: " + c.Err
		e.Severity = alert.Critical
		delete(e.Fields, "not_after")
		delete(e.Fields, "days_left")
	}
	return e
}

// parseVMStatOOM reads the oom_kill counter of /proc/vmstat (Linux 4.13+).
func parseVMStatOOM(b []byte) (uint64, bool) {
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		b = rest
		if v, ok := bytes.CutPrefix(line, []byte("oom_kill ")); ok {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// parsePSISome60 reads avg60 of the "some" line of /proc/pressure/memory:
// the share of the last minute in which some task stalled on memory.
func parsePSISome60(b []byte) (float64, bool) {
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		b = rest
		fields, ok := bytes.CutPrefix(line, []byte("some "))
		if !ok {
			continue
		}
		for _, f := range bytes.Fields(fields) {
			if v, ok := bytes.CutPrefix(f, []byte("avg60=")); ok {
				x, err := strconv.ParseFloat(string(v), 64)
				if err != nil || !(x >= 0 && x <= 100) { // NaN too
					return 0, false
				}
				return x, true
			}
		}
	}
	return 0, false
}
