package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Options are one probe run's.
type Options struct {
	Target  Target
	Ports   []uint16 // TCP ports; nil: all 65,535
	NoUDP   bool
	Scanner Scanner
	Prober  Prober
	// Intent, when set, is what the findings are held against.
	Intent *Intent
	// MaxTime bounds the whole run; 0 is 30 minutes.
	MaxTime time.Duration
	Version string
	Now     func() time.Time
}

// identifyParallel bounds open ports examined at once: each may cost a
// dozen connections.
const identifyParallel = 8

// Run scans the target, examines what answers on every open port and
// judges it. Only Target.Addrs are ever dialled.
func Run(ctx context.Context, o Options) (*Report, error) {
	if len(o.Target.Addrs) == 0 {
		return nil, errors.New("no address to probe")
	}
	for _, a := range o.Target.Addrs {
		if err := CheckAddr(a); err != nil {
			return nil, err
		}
	}
	if o.Scanner.SYN {
		if err := CanSYN(); err != nil {
			return nil, err
		}
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	maxTime := o.MaxTime
	if maxTime <= 0 {
		maxTime = 30 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, maxTime)
	defer cancel()
	ports := o.Ports
	if ports == nil {
		ports, _ = ParsePorts("all")
	}
	start := now()
	r := &Report{Schema: SchemaVersion, Version: o.Version, Target: o.Target.Name, Time: start.UTC(), Ports: len(ports), Intent: o.Intent}
	for _, a := range o.Target.Addrs {
		r.Addrs = append(r.Addrs, a.String())
	}
	// Every connection goes through dial, which refuses any address but
	// the target's: a redirect, a DNS answer or a bug cannot widen the
	// probe.
	allowed := map[netip.Addr]bool{}
	for _, a := range o.Target.Addrs {
		allowed[a] = true
	}
	dial := guardDial(o.Scanner.Dial, allowed)
	sc := o.Scanner
	if sc.Dial != nil || !nativeConnect {
		sc.Dial = dial
	}
	// Else the scan runs its own connect loop, which connects to the
	// addresses it is given and nothing else: Target.Addrs.
	pr := o.Prober
	pr.Dial = dial
	if o.Intent != nil {
		if len(pr.Names) == 0 {
			pr.Names = o.Intent.Sites
		}
		if pr.Admin == "" {
			pr.Admin = o.Intent.Admin
		}
		if pr.Routes == nil {
			pr.Routes = o.Intent.Routes
		}
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, identifyParallel)
	)
	// Each open port is examined as soon as the scan finds it, while the
	// scan goes on: the examination's connections are few and slow (a
	// greeting waited for, a TLS handshake) where the scan's are many and
	// fast, so the two overlap instead of adding up.
	sc.OnOpen = func(ap netip.AddrPort) {
		wg.Go(func() {
			// Past the time limit identify returns at once, so every
			// open port still gets its (unknown) service.
			sem <- struct{}{}
			defer func() { <-sem }()
			s := pr.identify(ctx, ap)
			mu.Lock()
			r.Services = append(r.Services, s)
			mu.Unlock()
		})
	}
	// UDP, likewise, beside the TCP scan.
	if !o.NoUDP {
		for _, a := range o.Target.Addrs {
			wg.Go(func() {
				u := pr.ScanUDP(ctx, a)
				mu.Lock()
				r.UDP = append(r.UDP, u...)
				mu.Unlock()
			})
		}
	}
	hosts, stats, scanErr := sc.ScanTCP(ctx, o.Target.Addrs, ports)
	r.Scan = stats
	if scanErr != nil {
		r.Notes = append(r.Notes, scanErr.Error())
	}
	for _, h := range hosts {
		r.Hosts = append(r.Hosts, hostReport(h))
	}
	wg.Wait()
	sortServices(r.Services)
	sortUDP(r.UDP)
	if ctx.Err() != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("stopped at the time limit (%v): results are partial", maxTime))
	}
	r.Duration = now().Sub(start)
	r.finish(o.Intent, now())
	return r, nil
}

// guardDial wraps dial so that it connects to allowed addresses only.
func guardDial(dial DialFunc, allowed map[netip.Addr]bool) DialFunc {
	if dial == nil {
		dial = (&Prober{}).dial()
	}
	return func(ctx context.Context, network, addr string) (_ netConn, err error) {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil || !allowed[ap.Addr().Unmap()] {
			return nil, fmt.Errorf("refusing to dial %s: not the probe's target", addr)
		}
		return dial(ctx, network, addr)
	}
}
