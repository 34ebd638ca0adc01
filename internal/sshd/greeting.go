package sshd

import (
	"bufio"
	"io"
)

// ReadServerGreeting reads what an SSH server sends before any key
// exchange: its identification line and its first KEXINIT (the same
// bounded readers the live probe uses). It is for readers of untrusted
// servers, e.g. moat probe's hostile-server tests and fuzzing.
func ReadServerGreeting(r io.Reader) (version string, k KexInit, err error) {
	br := bufio.NewReader(r)
	version, err = readVersion(br)
	if err != nil {
		return version, KexInit{}, err
	}
	payload, err := readKexInitPacket(br)
	if err != nil {
		return version, KexInit{}, err
	}
	k, err = ParseKexInit(payload)
	return version, k, err
}
