#!/usr/bin/env bash
# Hub load benchmarks: builds cmd/hub and cmd/hubload, runs a hub on each
# storage profile (embedded; PostgreSQL + MinIO from deploy/testenv.sh) on
# loopback, and drives it with hubload: WebSocket ingest with durable
# receipts, catch-up of 100,000 envelopes from a cursor, and fanout to many
# WebSocket subscribers with the hub's memory per idle subscriber.
#
#   deploy/bench-hub.sh            every scenario, both profiles
#   SUBS=1000 RATE=100 deploy/bench-hub.sh fanout
#
# RUNS=n (default 1) repeats each scenario on a fresh hub and prints the
# median run (by envelopes/s for ingest, deliveries/s and KiB per subscriber
# for fanout; sync takes its own median of 3 catch-ups).
#
# The load generator runs on the same machine as the hub and competes with
# it for CPU: the figures are those of the machine, load included.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
SUBS=${SUBS:-10000}
RATE=${RATE:-100}
RUNS=${RUNS:-1}
work=$(mktemp -d)
bin=$work/bin
mkdir -p "$bin"
go build -o "$bin/hub" ./cmd/hub
go build -o "$bin/hubload" ./cmd/hubload

hub_pid=""
stop_hub() { if [ -n "$hub_pid" ]; then kill -TERM "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true; hub_pid=""; fi; }
env_dir=""
cleanup() { stop_hub; if [ -n "$env_dir" ]; then deploy/testenv.sh down "$env_dir" >/dev/null 2>&1 || true; fi; rm -rf "$work"; }
trap cleanup EXIT

start_hub() { # profile
  local args=(-data-dir "$work/data-$1" -listen 127.0.0.1:7480 -admin-listen 127.0.0.1:7481 -admission open)
  if [ "$1" = postgres ]; then args+=(-postgres "$GUILDHALL_TEST_POSTGRES"); fi
  GUILDHALL_HUB_POST_RATE=-1 GUILDHALL_HUB_SOURCE_RATE=-1 GUILDHALL_HUB_CONNS_PER_SOURCE=-1 GUILDHALL_HUB_SOCKETS_PER_SOURCE=-1 "$bin/hub" "${args[@]}" >"$work/hub-$1.log" 2>&1 &
  hub_pid=$!
  for _ in $(seq 50); do curl -fs http://127.0.0.1:7480/healthz >/dev/null 2>&1 && return; sleep 0.1; done
  cat "$work/hub-$1.log" >&2; exit 1
}

load() { "$bin/hubload" -hub http://127.0.0.1:7480 -pid "$hub_pid" "$@"; }

# median_line regex: of the lines read that match regex, the one whose
# first group (a number) is the median.
median_line() {
  python3 -c 'import re, sys
p = re.compile(sys.argv[1])
ls = sorted((l for l in sys.stdin if p.search(l)), key=lambda l: float(p.search(l).group(1)))
sys.stdout.write(ls[len(ls) // 2] if ls else "")' "$1"
}
repeat() { # profile scenario args...: RUNS fresh hubs, every output line
  local p=$1; shift
  for _ in $(seq "$RUNS"); do rm -rf "$work/data-$p"; start_hub "$p"; load "$@"; stop_hub; done
}

profiles=(sqlite)
if [ "$what" = all ] || [ "$what" = ingest ] || [ "$what" = sync ]; then
  if [ -z "${GUILDHALL_TEST_POSTGRES:-}" ]; then
    out=$(deploy/testenv.sh up)
    eval "$(grep '^export' <<<"$out")"
    env_dir=$GUILDHALL_TESTENV_DIR
  fi
  profiles+=(postgres)
fi
for p in "${profiles[@]}"; do
  echo "== $p"
  if [ "$what" = all ] || [ "$what" = ingest ]; then
    repeat "$p" ingest -n 200000 -size 1024 | median_line ' ([0-9.]+) envelopes/s'
  fi
  if [ "$what" = all ] || [ "$what" = sync ]; then start_hub "$p"; load sync -n 100000 -size 1024; stop_hub; fi
done
if [ "$what" = all ] || [ "$what" = fanout ]; then
  echo "== fanout (embedded)"
  repeat sqlite fanout -subs "$SUBS" -rate "$RATE" -duration 30s >"$work/fanout"
  median_line '\(([0-9.]+)/s\)' <"$work/fanout"
  median_line ' ([0-9.]+) KiB per subscriber' <"$work/fanout"
fi
