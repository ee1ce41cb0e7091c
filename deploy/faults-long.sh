#!/usr/bin/env bash
# The fault tests too long for the test command: a hub on embedded storage
# holding 10,000 subscribers under a steady ingest (by default 200
# envelopes/s, 2 million deliveries offered per second: more than one
# machine delivers) for DURATION (default 5 minutes) must keep its
# goroutines and memory flat: hubload soak compares the last sample with
# the one taken after 30 s of warm-up and fails if either grew. The short fault tests (kills, database restarts and faults,
# bucket outages) run in the test command: go test ./faults.
#
#   deploy/faults-long.sh            SUBS=10000 RATE=200 DURATION=5m
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill "$hub_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/hub" ./cmd/hub
go build -o "$work/hubload" ./cmd/hubload
GUILDHALL_HUB_POST_RATE=-1 GUILDHALL_HUB_SOURCE_RATE=-1 GUILDHALL_HUB_CONNS_PER_SOURCE=-1 GUILDHALL_HUB_SOCKETS_PER_SOURCE=-1 "$work/hub" -data-dir "$work/data" \
  -listen 127.0.0.1:7490 -admin-listen 127.0.0.1:7491 -admission open >"$work/hub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 50); do curl -fs http://127.0.0.1:7490/healthz >/dev/null 2>&1 && break; sleep 0.1; done
"$work/hubload" -hub http://127.0.0.1:7490 soak -admin http://127.0.0.1:7491 \
  -subs "${SUBS:-10000}" -rate "${RATE:-200}" -duration "${DURATION:-5m}"
