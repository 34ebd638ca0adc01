#!/usr/bin/env bash
# Installs what moat's tests need on Debian 12 / Ubuntu: the real sshd,
# nftables, iproute2 and friends that the end-to-end tests run, and
# staticcheck. Safe to run again; does nothing that is already done.
set -euo pipefail

# systemd brings journalctl and systemd-journald, which the journald source's
# tests run by hand (no systemd as PID 1 needed); fail2ban-regex and lynis
# are only for the benchmarks (bench/*.sh install them).
pkgs=(openssh-server openssh-client nftables iproute2 iptables procps sudo openssl curl ca-certificates make systemd jq)
# moat probe's lab test: nmap is the peer it is checked against; the
# unprotected host runs redis-server without a password, PostgreSQL with
# trust, memcached, dnsmasq on UDP 53 and nginx's default site.
pkgs+=(nmap redis-server nginx-light memcached postgresql dnsmasq-base)
# fail2ban: the audit's differential test compares its reading of jail files
# with fail2ban-client -d.
pkgs+=(fail2ban)
# The .deb test (cmd/moat TestDebBuildsInstallsAndRuns, scripts/deb-test.sh):
# lintian checks the package, man renders its man page.
pkgs+=(lintian man-db)
# The generated completions are run by the shells they are for.
pkgs+=(zsh fish)
# The version comes from git tags (cmd/moat TestVersionFromGitTags).
pkgs+=(git)
# chromium: the status page's browser test (headless, driven by chromedp).
pkgs+=(chromium)
# apache2-utils: the gateway's htpasswd reader is tested against files the
# real htpasswd writes ($apr1$, {SHA}, bcrypt).
pkgs+=(apache2-utils)
# ufw: moat import ufw's test writes rules with the real ufw into a scratch
# root and reads its status in a throwaway network namespace.
pkgs+=(ufw)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps: need root to install: ${missing[*]} (run with sudo)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

staticcheck_version=v0.8.2
gobin=$(go env GOPATH)/bin
if ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "${staticcheck_version#v}"; then
  GOFLAGS= go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi
