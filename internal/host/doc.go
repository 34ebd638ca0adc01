// Package host reads facts about the machine moat runs on: listening
// sockets and the processes that own them, users and their keys, sudo
// rules, packages, sysctls, memory, swap, disks, network interfaces and
// routes, VPN interfaces, Docker's published ports, processes, time sync
// and the init system.
//
// Everything here is read-only: nothing in this package changes the host.
// Every file is read through [Host.Root], so tests and `moat audit --root`
// can point the whole package at a fixture tree. Facts that do not live in
// files (network interfaces, filesystem usage, the Docker API, command
// output) fall back to files under <root>/.fixture/ when Root is set; each
// function documents its fallback.
//
// Reads that fail because the caller is not root return errors for which
// errors.Is(err, fs.ErrPermission) holds, so callers can say "run as root"
// rather than report a false negative.
//
// Only three functions run commands: [Host.AptConfig] (apt-config dump),
// [Host.UpgradableSecurity] (apt-get -s upgrade) and [Host.VisudoCheck]
// (visudo -c). Everything else is a handful of file reads or syscalls.
package host
