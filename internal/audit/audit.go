package audit

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/moat-sh/moat/internal/host"
)

// Options configure one audit run. The zero value audits the live host with
// nothing known about the operator; the CLI fills in what moat.yaml says.
type Options struct {
	// Root is a fixture tree to read instead of /; commands whose output
	// cannot live in a tree read captures from Root/.fixture/.
	Root string
	// Version is moat's version, for the report.
	Version string
	// SkipApt skips the apt simulation (pending security updates), the one
	// slow check.
	SkipApt bool
	// NoProbe skips the live SSH probe.
	NoProbe bool
	// AdminUser is the operator's account (host.admin.user).
	AdminUser string
	// AdminSources are the operator's addresses (host.admin.sources).
	AdminSources []netip.Prefix
	// VPNRanges and VPNInterfaces describe the VPN (vpn section); found on
	// the host when empty.
	VPNRanges     []netip.Prefix
	VPNInterfaces []string
	// PublicPorts are ports the operator declared public (firewall.public),
	// as "443/tcp"; reachable listeners on them are intended.
	PublicPorts []PortRange
	// Domains are the gateway's sites, for the TLS checks.
	Domains []string
	// TailscaleSocket is tailscaled's local API (tailscale.DefaultSocket
	// when empty; under Root only when set); TailscaleCLI the fallback
	// command ("-" for none).
	TailscaleSocket, TailscaleCLI string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Timeout bounds the whole run (default 20s).
	Timeout time.Duration
}

// PortRange is a declared port range.
type PortRange struct {
	Proto    string
	From, To uint16
}

func (o *Options) declaredPublic(proto string, port uint16) bool {
	for _, p := range o.PublicPorts {
		if p.Proto == proto && p.From <= port && port <= p.To {
			return true
		}
	}
	return false
}

// Run audits the host. It never changes anything. Checks that cannot read
// what they need report Unknown with the reason instead of failing the run.
func Run(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	f := newFacts(ctx, &o, host.New(o.Root))
	layers := []func(*facts, *out){checkSSH, checkUsers, checkExposure, checkFirewall, checkUpdates, checkGuard, checkKernel, checkStability, checkTLS, checkBackups, checkTailscale}
	outs := make([]out, len(layers))
	var wg sync.WaitGroup
	for i, check := range layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			check(f, &outs[i])
		}()
	}
	wg.Wait()

	r := &Report{Schema: SchemaVersion, Version: o.Version, Root: o.Root, Time: o.Now().UTC()}
	r.Host = f.hostname()
	for _, x := range outs {
		r.Results = append(r.Results, x.results...)
	}
	sortResults(r.Results)
	r.Layers, r.Score = Scores(r.Results)
	r.Notes = f.notes()
	r.Duration = time.Since(start)
	return r, nil
}

// out collects one layer's results.
type out struct{ results []Result }

func (o *out) add(id string, st Status, sev *Severity, subject string, ev []string) {
	d, ok := catalog[id]
	if !ok {
		panic("audit: check " + id + " is not in the catalog")
	}
	s := d.Severity
	if sev != nil {
		s = *sev
	}
	o.results = append(o.results, Result{
		ID: id, Layer: d.Layer, Severity: s, Status: st, Title: d.Title,
		Subject: subject, Evidence: ev, Fix: d.Fix, Anchors: d.Anchors,
	})
}

func (o *out) pass(id, subject string, ev ...string) { o.add(id, Pass, nil, subject, ev) }
func (o *out) fail(id, subject string, ev ...string) { o.add(id, Fail, nil, subject, ev) }
func (o *out) failAt(id string, sev Severity, subject string, ev ...string) {
	o.add(id, Fail, &sev, subject, ev)
}

// setFix replaces the catalog's fix of the last result with one that fits
// what was found.
func (o *out) setFix(fix string) { o.results[len(o.results)-1].Fix = fix }

func (o *out) na(id, why string) { o.add(id, NA, nil, "", []string{why}) }
func (o *out) unknown(id string, err error) {
	o.add(id, Unknown, nil, "", []string{err.Error()})
}

// check reports pass or fail for a yes/no condition.
func (o *out) check(id string, ok bool, subject string, ev ...string) {
	if ok {
		o.pass(id, subject, ev...)
	} else {
		o.fail(id, subject, ev...)
	}
}

func hostnameOf(h *host.Host) string {
	if b, err := h.ReadFile("/etc/hostname"); err == nil && len(b) > 0 {
		return string(trimSpace(b))
	}
	if h.Live() {
		if n, err := os.Hostname(); err == nil {
			return n
		}
	}
	return "unknown"
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
