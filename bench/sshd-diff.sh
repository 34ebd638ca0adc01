#!/usr/bin/env bash
# The long form of the sshd differential harness: SSHD_CASES random sshd
# configurations (drop-ins, Match User/Group/Address/LocalAddress/
# LocalPort/Host over users in groups), each judged by the audit under
# --root (sshd -T -C on a fixture tree) and by a real sshd in a lab
# namespace (no-credential probe of the auth methods from four source
# addresses, IPv4 and IPv6, and two ports, plus key logins per user). Also the fail2ban
# differential (F2B_CASES random jail files against fail2ban-client -d).
# Prints the seeds, the case counts and the disagreements (target: 0).
# MOAT_SSHD_SEED / MOAT_F2B_SEED reproduce a run. Needs root, sshd,
# iproute2 and fail2ban.
set -euo pipefail
cd "$(dirname "$0")/.."
SSHD_CASES=${SSHD_CASES:-300}
F2B_CASES=${F2B_CASES:-300}
echo "load: $(uptime)"
MOAT_SSHD_SEED=${MOAT_SSHD_SEED:-$(date +%s%N)} MOAT_F2B_SEED=${MOAT_F2B_SEED:-$(date +%s%N)} \
  go test -count=1 -timeout 60m -v -run 'TestSSHDDifferential|TestFail2banDifferential' ./internal/audit/ \
  -sshd.cases "$SSHD_CASES" -f2b.cases "$F2B_CASES" 2>&1 |
  grep -E 'seed|cases|disagree|audit says|moat read|^(ok|FAIL|---)'
