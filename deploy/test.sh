#!/usr/bin/env bash
# The whole Guildhall test suite, from a fresh Debian machine with Go:
# installs and starts what the tests need (deploy/testenv.sh), then runs
# gofmt, go vet, go test -race and a short pass of every fuzz target.
#   FUZZTIME  budget per fuzz target (default 200000x executions). A count,
#             not a duration: Go 1.26's fuzz coordinator can report a spurious
#             "context deadline exceeded" at a wall-clock -fuzztime deadline
#             (golang/go#75804, fixed in Go 1.27).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/testenv.sh

step() { printf '\n== %s\n' "$*"; }

step "test environment"
testenv_install
envdir=$(testenv_up)
trap 'testenv_down "$envdir"' EXIT
. "$envdir/env"

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))
if [ -n "$unformatted" ]; then
  printf 'not gofmt-formatted:\n%s\n' "$unformatted"
  exit 1
fi

step "policy depends on the standard library and the CBOR library only"
extra=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./policy | grep -v -x -e github.com/guildhall/guildhall/policy -e github.com/fxamacker/cbor/v2 -e github.com/x448/float16 || true)
if [ -n "$extra" ]; then
  printf 'policy must not depend on:\n%s\n' "$extra"
  exit 1
fi

step "go vet"
go vet ./...

step "go test -race"
go test -race -count=1 ./...

step "deployment files (compose, Dockerfile, rules, dashboards, units)"
(cd deploy/check && go vet ./... && go test -count=1 ./...)

step "fuzz (${FUZZTIME:-200000x} per target)"
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    printf '%s %s: ' "$pkg" "$target"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME:-200000x}" -fuzzminimizetime 10s "$pkg" >"${envdir}/fuzz.log" 2>&1 \
      || { cat "${envdir}/fuzz.log"; exit 1; }
    grep -Eo 'execs: [0-9]+' "${envdir}/fuzz.log" | tail -n 1
  done
done

step "all checks passed"
