package audit

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/host"
)

func checkUpdates(f *facts, o *out) {
	pk, err := f.packages()
	if err != nil {
		for _, id := range []string{"UPD-001", "UPD-002", "UPD-003", "UPD-004"} {
			o.unknown(id, err)
		}
	} else if !installed(pk, "unattended-upgrades") {
		o.fail("UPD-001", "", "package unattended-upgrades is not installed (dpkg status)")
		o.na("UPD-002", "unattended-upgrades is not installed")
		o.na("UPD-003", "unattended-upgrades is not installed")
		o.na("UPD-004", "unattended-upgrades is not installed")
	} else {
		o.pass("UPD-001", "", "unattended-upgrades "+pk["unattended-upgrades"].Version)
		checkUnattended(f, o)
	}

	if f.o.SkipApt {
		o.na("UPD-005", "skipped (--skip-apt)")
	} else if up, err := f.h.UpgradableSecurity(f.ctx); errors.Is(err, host.ErrUnavailable) {
		o.na("UPD-005", err.Error())
	} else if err != nil {
		o.unknown("UPD-005", err)
	} else if len(up.Security) > 0 {
		ev := up.Security
		if len(ev) > 20 {
			ev = append(ev[:20:20], fmt.Sprintf("… and %d more", len(up.Security)-20))
		}
		o.fail("UPD-005", plural(len(up.Security), "package", "packages"), append([]string{"from " + up.Method + ":"}, ev...)...)
	} else {
		o.pass("UPD-005", "", "no security update pending (from "+up.Method+")")
	}

	var ev []string
	if rb, err := f.h.RebootRequired(); err == nil && rb.Required {
		ev = append(ev, "/var/run/reboot-required exists")
		if len(rb.Packages) > 0 {
			ev = append(ev, "for: "+strings.Join(rb.Packages, ", "))
		}
	}
	virt, _ := f.virt()
	if ks, err := f.h.NewerKernelInstalled(); err == nil && ks.NewerInstalled && !virt.Container {
		ev = append(ev, fmt.Sprintf("running kernel %s, newest installed %s", ks.Running, ks.Newest))
	}
	switch {
	case len(ev) > 0:
		o.fail("UPD-006", "", ev...)
	case virt.Container:
		o.pass("UPD-006", "", fmt.Sprintf("inside a %s container: the kernel is the host's, so an installed kernel package needs no reboot here", virt.Kind))
	default:
		o.pass("UPD-006", "")
	}
}

func checkUnattended(f *facts, o *out) {
	cfg, err := f.h.AptConfig(f.ctx)
	if err != nil {
		for _, id := range []string{"UPD-002", "UPD-003"} {
			if errors.Is(err, host.ErrUnavailable) {
				o.na(id, err.Error())
			} else {
				o.unknown(id, err)
			}
		}
	} else {
		lists, uu := cfg["APT::Periodic::Update-Package-Lists"], cfg["APT::Periodic::Unattended-Upgrade"]
		on := func(v string) bool { return v != "" && v != "0" && v != "false" }
		o.check("UPD-002", on(lists) && on(uu), "",
			fmt.Sprintf("apt-config dump: APT::Periodic::Update-Package-Lists %q, APT::Periodic::Unattended-Upgrade %q", lists, uu))
		origins := cfg["Unattended-Upgrade::Origins-Pattern"] + "\n" + cfg["Unattended-Upgrade::Allowed-Origins"]
		sec := strings.Contains(origins, "security") || strings.Contains(origins, "Security")
		o.check("UPD-003", sec, "", "origins: "+strings.Join(strings.Fields(strings.ReplaceAll(origins, "\n", " ")), " "))
	}
	st, err := f.h.AptStamps()
	if err != nil {
		o.unknown("UPD-004", err)
		return
	}
	last := st.UnattendedUpgrade
	if st.UnattendedLog.After(last) {
		last = st.UnattendedLog
	}
	switch age := f.o.Now().Sub(last); {
	case last.IsZero():
		o.fail("UPD-004", "", "no sign it ever ran: no /var/lib/apt/periodic/unattended-upgrades-stamp, no log")
	case age > 3*24*time.Hour:
		o.fail("UPD-004", "", fmt.Sprintf("last run %s ago (%s)", age.Round(time.Hour), last.Format(time.DateOnly)))
	default:
		o.pass("UPD-004", "", "last run "+last.Format(time.RFC3339))
	}
}
