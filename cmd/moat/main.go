// Command moat puts a Linux VPS behind layered defences: audit, host
// hardening, firewall, guard, gateway and alerts, in one static binary.
package main

import (
	"os"

	"github.com/moat-sh/moat/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
