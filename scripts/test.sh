#!/usr/bin/env bash
# The whole test suite: dependencies, formatting, vet, staticcheck, and every
# test with the race detector. Root runs the kernel and end-to-end tiers too;
# MOAT_TEST_STRICT=1 turns every skip for a missing tool or root into a
# failure (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
export PATH="$PATH:$(go env GOPATH)/bin"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n "$unformatted" ]]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
staticcheck ./...
# packaging/ is its own module (nfpm stays out of the moat binary).
(cd packaging && go vet ./... && staticcheck ./...)
echo "== go test -race"
go test -race -count=1 -timeout 30m ./... "$@"
