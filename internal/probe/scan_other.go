//go:build !linux

package probe

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"time"
)

// nativeConnect: elsewhere the scan dials through net.Dialer.
const nativeConnect = false

// ErrNoRawSocket is returned when --syn cannot open a raw socket.
var ErrNoRawSocket = errors.New("the SYN scan needs a raw socket")

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
	maxTry  *atomic.Int32
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

func (s *Scanner) scanSYN(context.Context, []*HostPorts, []uint16, int, float64, time.Duration, time.Duration, int, func() time.Time) (ScanStats, error) {
	return ScanStats{}, errors.New("the SYN scan is Linux only here: leave out --syn")
}

// CanSYN says whether this process may run the SYN scan.
func CanSYN() error { return ErrNoRawSocket }
