#!/usr/bin/env bash
# Prints moat's version from git for -ldflags and the packages: the release
# tag without its "v" on a tagged commit (0.11.0), the tag plus the commits
# since and the hash after it (0.11.0+3.gabc1234), and 0.0.0-dev+HASH in a
# clone without tags. ".dirty" marks uncommitted changes. `version.sh
# commit` prints the commit hash instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == commit ]]; then
  git rev-parse --short=12 HEAD 2>/dev/null || true
  exit 0
fi
dirty=""
if git rev-parse --git-dir >/dev/null 2>&1 && ! git diff --quiet HEAD -- 2>/dev/null; then
  dirty=".dirty"
fi
if d=$(git describe --tags --match 'v[0-9]*' --long 2>/dev/null); then
  # v0.11.0-3-gabc1234 → tag, count, hash
  hash=${d##*-}; rest=${d%-*}; count=${rest##*-}; tag=${rest%-*}
  v=${tag#v}
  if [[ $count == 0 ]]; then
    [[ -n $dirty ]] && v="$v+${dirty#.}"
  else
    v="$v+$count.$hash$dirty"
  fi
  echo "$v"
elif h=$(git rev-parse --short=12 HEAD 2>/dev/null); then
  echo "0.0.0-dev+$h$dirty"
else
  echo "0.0.0-dev"
fi
