//go:build !linux

package probe

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// nativeConnect: elsewhere the scan dials through net.Dialer.
const nativeConnect = false

type attempt struct {
	host  int
	port  uint16
	try   int
	probe bool
}

type engineRun struct {
	addrs   []netip.Addr
	work    []attempt
	workers int
	retries int
	timeout func(try int) time.Duration
	lim     *pacer
	rtt     *rttEstimator
	now     func() time.Time
	stats   *ScanStats
	timing  bool
	drops   bool
	done    func(a attempt, st State)
}

func (e *engineRun) run(context.Context) error {
	return errors.New("no native connect scan on this system")
}
