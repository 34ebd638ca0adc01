#!/usr/bin/env bash
# Installs a moat .deb as on a fresh Debian machine and runs it from the
# installed paths. Needs root. The host is left untouched: dpkg runs in a
# chroot whose root is a private overlay of / (a mount namespace of its
# own, the upper layer on a tmpfs), so the host's dpkg database, /etc and
# /usr never see the package.
#   scripts/deb-test.sh dist/moat_VERSION_amd64.deb
set -euo pipefail
deb=$(readlink -f "$1")
say() { printf '== %s\n' "$*"; }

say "dpkg-deb -I / -c"
dpkg-deb -I "$deb"
contents=$(dpkg-deb -c "$deb")
for p in ./usr/bin/moat ./lib/systemd/system/moat.service ./lib/systemd/system/moat-firewall.service ./lib/systemd/system/moat-vpn.service \
  ./usr/share/man/man1/moat.1.gz ./usr/share/man/man5/moat.yaml.5.gz \
  ./usr/share/bash-completion/completions/moat ./usr/share/zsh/vendor-completions/_moat \
  ./usr/share/fish/vendor_completions.d/moat.fish ./usr/share/doc/moat/copyright \
  ./usr/share/doc/moat/examples/moat.yaml; do
  grep -q " $p\$" <<<"$contents" || { echo "missing from the package: $p"; exit 1; }
done
grep -q -- '-rwxr-xr-x root/root .* ./usr/bin/moat$' <<<"$contents" || { echo "usr/bin/moat is not 0755 root:root"; exit 1; }
# No config is shipped in /etc: postinst writes the starter, never over one.
if grep -q ' ./etc/' <<<"$contents"; then echo "the package ships files under /etc"; exit 1; fi

say "lintian (errors and warnings fail)"
# --fail-on error,warning: the package is lintian-clean but for info tags.
if ! out=$(lintian --fail-on error,warning --tag-display-limit 0 "$deb" 2>&1); then
  printf '%s\n' "$out"; echo "lintian found errors or warnings"; exit 1
fi
printf '%s\n' "$out" | grep -v 'running with root privileges' || true
echo "lintian: no errors, no warnings"

say "dpkg -i in a private overlay of /"
exec unshare --mount --propagation private -- bash -s "$deb" <<'NS'
set -euo pipefail
deb=$1
say() { printf '== %s\n' "$*"; }
t=$(mktemp -d /tmp/moat-deb-XXXXXX)
mount -t tmpfs -o mode=0755 tmpfs "$t"
trap 'umount -R "$t" 2>/dev/null || umount -l "$t"; rmdir "$t"' EXIT
mkdir "$t/upper" "$t/work" "$t/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$t/upper,workdir=$t/work" "$t/root"
r=$t/root
for d in proc sys dev; do mount --rbind "/$d" "$r/$d"; mount --make-rslave "$r/$d"; done
mount -t tmpfs -o mode=0755 tmpfs "$r/run"
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
cp "$deb" "$r/tmp/moat.deb"
inroot() { chroot "$r" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
# A fresh machine: no moat before this package.
rm -rf "$r/etc/moat" "$r/var/lib/moat" "$r/var/log/moat" "$r/usr/local/bin/moat" "$r/etc/systemd/system/moat.service"
inroot dpkg -i /tmp/moat.deb

say "installed: directories and the starter config"
for d in /etc/moat:700 /var/lib/moat:700 /var/log/moat:750; do
  got=$(stat -c %a "$r${d%%:*}")
  [[ $got == "${d##*:}" ]] || { echo "${d%%:*} has mode $got, want ${d##*:}"; exit 1; }
done
[[ $(stat -c %a "$r/etc/moat/moat.yaml") == 600 ]] || { echo "starter config is not 0600"; exit 1; }
# Nothing enabled: no wants link for any moat unit.
if ls "$r"/etc/systemd/system/*.wants/moat* 2>/dev/null; then echo "the package enabled a unit"; exit 1; fi

say "moat version / version --json / config check / audit, from /usr/bin"
inroot /usr/bin/moat version
inroot /usr/bin/moat version --json
inroot /usr/bin/moat config check
set +e
inroot /usr/bin/moat audit --skip-apt --no-probe >"$t/audit.txt"; rc=$?
set -e
tail -n 3 "$t/audit.txt"
[[ $rc == 0 ]] || { echo "moat audit exited $rc"; exit 1; }
inroot man -l /usr/share/man/man1/moat.1.gz | grep -q -- '--json' || { echo "man page lacks --json"; exit 1; }
inroot bash -c 'source /usr/share/bash-completion/completions/moat && complete -p moat' | grep -q _moat

say "systemd-analyze verify / security on the installed units"
inroot systemd-analyze verify --man=no /lib/systemd/system/moat.service /lib/systemd/system/moat-firewall.service /lib/systemd/system/moat-vpn.service
inroot systemd-analyze security --offline=true --threshold=30 /lib/systemd/system/moat.service | tail -n 1

say "dpkg -r refuses while a change waits for confirm"
mkdir -p "$r/var/lib/moat/changes" && echo pending-change >"$r/var/lib/moat/changes/pending"
if inroot dpkg -r moat; then echo "dpkg -r removed moat under a pending change"; exit 1; fi
[[ -x $r/usr/bin/moat ]] || { echo "binary gone after a refused remove"; exit 1; }
rm "$r/var/lib/moat/changes/pending"

say "dpkg -r keeps the config and the state; dpkg -P removes them"
echo "# edited by the operator" >>"$r/etc/moat/moat.yaml"
inroot dpkg -r moat
[[ ! -e $r/usr/bin/moat ]] && grep -q 'edited by the operator' "$r/etc/moat/moat.yaml" && [[ -d $r/var/lib/moat ]] || {
  echo "dpkg -r lost the config or kept the binary"; exit 1; }
inroot dpkg -i /tmp/moat.deb >/dev/null
grep -q 'edited by the operator' "$r/etc/moat/moat.yaml" || { echo "reinstall overwrote the config"; exit 1; }
inroot dpkg -P moat
[[ ! -e $r/etc/moat && ! -e $r/var/lib/moat ]] || { echo "dpkg -P kept /etc/moat or the state"; exit 1; }
say "ok"
NS
