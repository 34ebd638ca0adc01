// Package harden plans and applies host hardening from config: the sshd
// drop-in, the admin user, unattended upgrades, swap and sysctls. This file
// set holds its configuration; planning and applying arrive with the change
// transaction layer.
package harden
