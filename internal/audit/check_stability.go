package audit

import (
	"errors"
	"fmt"

	"github.com/moat-sh/moat/internal/host"
)

const gib = 1 << 30

func checkStability(f *facts, o *out) {
	virt, _ := f.virt()
	mem, err := f.h.Memory()
	switch {
	case virt.Container:
		o.na("STB-001", "inside a container: swap is the host's business")
	case err != nil:
		o.unknown("STB-001", err)
	case mem.MemTotal <= 4*gib && mem.SwapTotal == 0:
		o.fail("STB-001", "", fmt.Sprintf("%.1f GiB RAM, no swap: a memory spike ends in the OOM killer", float64(mem.MemTotal)/gib))
	default:
		o.pass("STB-001", "", fmt.Sprintf("%.1f GiB RAM, %.1f GiB swap", float64(mem.MemTotal)/gib, float64(mem.SwapTotal)/gib))
	}

	swaps, err := f.h.Swaps()
	if err != nil {
		o.unknown("STB-002", err)
	} else {
		var bad []string
		files := 0
		for _, s := range swaps {
			if s.Type != "file" {
				continue
			}
			files++
			if s.Mode.Perm()&0o077 != 0 {
				bad = append(bad, fmt.Sprintf("%s is mode %04o", s.Filename, s.Mode.Perm()))
			}
		}
		if files == 0 {
			o.na("STB-002", "no swap file")
		} else {
			o.check("STB-002", len(bad) == 0, "", bad...)
		}
	}

	disks, err := f.h.Disks()
	switch {
	case errors.Is(err, host.ErrUnavailable) || (err == nil && len(disks) == 0):
		o.na("STB-003", "no filesystem usage available")
		o.na("STB-004", "no filesystem usage available")
	case err != nil:
		o.unknown("STB-003", err)
		o.unknown("STB-004", err)
	default:
		space, inodes := 0, 0
		for _, d := range disks {
			if d.Size > 0 {
				pct := 100 * float64(d.Size-d.Avail) / float64(d.Size)
				if pct >= 90 {
					o.fail("STB-003", d.Mountpoint, fmt.Sprintf("%s (%s) is %.0f%% full, %.1f GiB left", d.Mountpoint, d.Device, pct, float64(d.Avail)/gib))
					space++
				}
			}
			if d.Inodes > 0 {
				pct := 100 * float64(d.Inodes-d.InodesFree) / float64(d.Inodes)
				if pct >= 90 {
					o.fail("STB-004", d.Mountpoint, fmt.Sprintf("%s uses %.0f%% of its inodes", d.Mountpoint, pct))
					inodes++
				}
			}
		}
		if space == 0 {
			o.pass("STB-003", "", plural(len(disks), "filesystem", "filesystems")+" under 90%")
		}
		if inodes == 0 {
			o.pass("STB-004", "")
		}
	}

	if virt.Container {
		o.na("STB-005", fmt.Sprintf("inside a %s container (%s): the host keeps the clock, and nothing in here may set it", virt.Kind, virt.Signal))
		return
	}
	ts, err := f.h.TimeSynced()
	switch {
	case errors.Is(err, host.ErrUnavailable):
		o.na("STB-005", err.Error())
	case err != nil:
		o.unknown("STB-005", err)
	case ts.Synced:
		o.pass("STB-005", "", "clock synchronised (from "+ts.Signal+")")
	default:
		o.fail("STB-005", "", "clock not synchronised (from "+ts.Signal+")")
		pk, _ := f.packages()
		for _, d := range []string{"systemd-timesyncd", "chrony", "ntpsec", "ntp", "openntpd"} {
			if installed(pk, d) {
				o.setFix(fmt.Sprintf("%s is installed but does not keep the clock in sync: check it runs (systemctl status %s) and reaches its servers (UDP 123 out)", d, d))
				break
			}
		}
	}
}
