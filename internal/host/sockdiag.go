package host

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Sizes of the sock_diag structures in <linux/inet_diag.h>.
const (
	sizeofInetDiagReqV2 = 56 // family, protocol, ext, pad, states u32, inet_diag_sockid (48)
	sizeofInetDiagMsg   = 72 // family, state, timer, retrans, sockid (48), expires, rqueue, wqueue, uid, inode
)

// sockDiagListeningTCP asks the kernel, over NETLINK_SOCK_DIAG, for the
// IPv4 and IPv6 TCP sockets in LISTEN. Reading /proc/net/tcp makes the
// kernel walk every bucket of the established-connection hash
// (milliseconds on a large machine, more on a busy one); a dump filtered
// on LISTEN walks only the listening hash.
func sockDiagListeningTCP() ([]Socket, error) {
	var out []Socket
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := sockDiagDump(family, func(s Socket) { out = append(out, s) }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sockDiagDump runs one SOCK_DIAG_BY_FAMILY dump of listening TCP
// sockets.
func sockDiagDump(family uint8, fn func(Socket)) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(2 * time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}

	const seq = 1
	req := make([]byte, unix.NLMSG_HDRLEN+sizeofInetDiagReqV2)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], seq)
	r := req[unix.NLMSG_HDRLEN:]
	r[0], r[1] = family, unix.IPPROTO_TCP
	ne.PutUint32(r[4:], 1<<tcpListen) // idiag_states
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("sock_diag: send: %w", err)
	}

	buf := make([]byte, 64<<10)
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("sock_diag: receive: %w", err)
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // not from the kernel
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("sock_diag: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(ne.Uint32(m.Data)); errno != 0 {
						return fmt.Errorf("sock_diag: %w", syscall.Errno(-errno))
					}
				}
				return fmt.Errorf("sock_diag: error reply")
			case unix.SOCK_DIAG_BY_FAMILY:
				if s, ok := parseInetDiagMsg(m.Data); ok {
					fn(s)
				}
			}
		}
	}
}

// parseInetDiagMsg decodes a struct inet_diag_msg: ports big-endian,
// addresses in network order, uid and inode in host order.
func parseInetDiagMsg(b []byte) (Socket, bool) {
	if len(b) < sizeofInetDiagMsg {
		return Socket{}, false
	}
	id := b[4:52]
	sport, dport := binary.BigEndian.Uint16(id[0:]), binary.BigEndian.Uint16(id[2:])
	var src, dst netip.Addr
	switch b[0] {
	case unix.AF_INET:
		src, dst = netip.AddrFrom4([4]byte(id[4:8])), netip.AddrFrom4([4]byte(id[20:24]))
	case unix.AF_INET6:
		src, dst = netip.AddrFrom16([16]byte(id[4:20])), netip.AddrFrom16([16]byte(id[20:36]))
	default:
		return Socket{}, false
	}
	s := Socket{
		Proto:  "tcp",
		Local:  netip.AddrPortFrom(src, sport),
		Remote: netip.AddrPortFrom(dst, dport),
		State:  b[1],
		UID:    int(binary.NativeEndian.Uint32(b[64:])),
		Inode:  uint64(binary.NativeEndian.Uint32(b[68:])),
	}
	// Attributes follow the message: the kernel always adds
	// INET_DIAG_SKV6ONLY for IPv6 sockets.
	for a := b[sizeofInetDiagMsg:]; len(a) >= 4; {
		n := int(binary.NativeEndian.Uint16(a[0:]))
		typ := binary.NativeEndian.Uint16(a[2:])
		if n < 4 || n > len(a) {
			break
		}
		if typ == inetDiagSKV6Only && n >= 5 && b[0] == unix.AF_INET6 {
			s.V6Only, s.V6OnlyKnown = a[4] != 0, true
		}
		a = a[min((n+3)&^3, len(a)):]
	}
	return s, true
}

// inetDiagSKV6Only is INET_DIAG_SKV6ONLY of <linux/inet_diag.h>.
const inetDiagSKV6Only = 11
