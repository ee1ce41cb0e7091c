#!/usr/bin/env bash
# Relay benchmark against coturn: builds cmd/relay and cmd/turnload, starts
# the relay and coturn's turnserver (Debian's coturn package) on loopback with
# the same limits off and loopback peers allowed, and drives each with the
# same load, alternating runs: N allocations keeping a window of 160-byte
# packets in flight through an echo peer, the clients reaching the server
# over UDP, then over TCP. Reports the median round trips per second and p99
# of each, their ratio, the same load through a minimal UDP forwarder (the
# machine's limit), and memory per allocation with 10,000 idle allocations.
#
#   deploy/bench-relay.sh            RUNS=3 DURATION=5s ALLOCS="16 32 64"
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-5s}
ALLOCS=${ALLOCS:-16 32 64}
work=$(mktemp -d)
go build -o "$work/relay" ./cmd/relay
go build -o "$work/turnload" ./cmd/turnload
command -v turnserver >/dev/null || { echo "turnserver (Debian package coturn) is required" >&2; exit 1; }

cat >"$work/relay.yaml" <<YAML
external_ip: 127.0.0.1
listen:
  udp: 127.0.0.1:34780
  tcp: 127.0.0.1:34780
relay:
  bind: 127.0.0.1
  port_min: 20000
  port_max: 39999
auth:
  users: {bench: bench}
limits:
  allow: ["127.0.0.0/8"]
  user_quota: -1
  total_quota: -1
  bandwidth: -1
  challenge_rate: 1000000
  challenge_burst: 1000000
metrics:
  listen: 127.0.0.2:34781
YAML
pids=()
cleanup() { kill -9 "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$work/relay" -config "$work/relay.yaml" >"$work/relay.log" 2>&1 &
relay_pid=$!; pids+=("$relay_pid")
turnserver -n --listening-ip=127.0.0.1 --listening-port=34790 --relay-ip=127.0.0.1 --min-port=40000 --max-port=59999 \
  --lt-cred-mech --user=bench:bench --realm=guildhall --allow-loopback-peers --no-cli --no-tls --no-dtls \
  --log-file="$work/coturn.log" --no-stdout-log --simple-log >/dev/null 2>&1 &
coturn_pid=$!; pids+=("$coturn_pid")
"$work/turnload" -serve-forwarder 127.0.0.1:34799 >/dev/null 2>&1 &
pids+=($!)
sleep 1

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() { # port allocs [extra flags] -> "rtps p99ms"
  local port=$1 allocs=$2; shift 2
  "$work/turnload" -server "127.0.0.1:$port" -user bench -pass bench -allocs "$allocs" -window 8 -size 160 -duration "$DURATION" "$@" |
    sed -E 's/.*: ([0-9]+) round trips\/s; rtt p50 ([^ ]+) p99 ([^ ]+)/\1 \3/'
}
to_ms() { awk '{v=$1; if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /µs$/) {sub(/µs/,"",v); v=v/1000} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; printf "%.1f\n", v}'; }

echo "UDP:"
echo
echo "| allocations | relay round trips/s | coturn round trips/s | relay / coturn | minimal forwarder | relay / forwarder | relay p99 | coturn p99 |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for a in $ALLOCS; do
  : >"$work/r"; : >"$work/c"; : >"$work/f"
  for _ in $(seq "$RUNS"); do
    run 34780 "$a" >>"$work/r"
    run 34790 "$a" >>"$work/c"
    run 34799 "$a" -raw >>"$work/f"
  done
  r=$(cut -d' ' -f1 "$work/r" | median); c=$(cut -d' ' -f1 "$work/c" | median); f=$(cut -d' ' -f1 "$work/f" | median)
  rp=$(cut -d' ' -f2 "$work/r" | to_ms | median); cp=$(cut -d' ' -f2 "$work/c" | to_ms | median)
  echo "| $a | $r | $c | $(awk -v r="$r" -v c="$c" 'BEGIN{printf "%.2f", r/c}') | $f | $(awk -v r="$r" -v f="$f" 'BEGIN{printf "%.2f", r/f}') | ${rp} ms | ${cp} ms |"
done
echo
echo "TCP (client to server; the relayed leg is UDP):"
echo
echo "| allocations | relay round trips/s | coturn round trips/s | relay / coturn | relay p99 | coturn p99 |"
echo "| --- | --- | --- | --- | --- | --- |"
for a in $ALLOCS; do
  : >"$work/r"; : >"$work/c"
  for _ in $(seq "$RUNS"); do
    run 34780 "$a" -tcp >>"$work/r"
    run 34790 "$a" -tcp >>"$work/c"
  done
  r=$(cut -d' ' -f1 "$work/r" | median); c=$(cut -d' ' -f1 "$work/c" | median)
  rp=$(cut -d' ' -f2 "$work/r" | to_ms | median); cp=$(cut -d' ' -f2 "$work/c" | to_ms | median)
  echo "| $a | $r | $c | $(awk -v r="$r" -v c="$c" 'BEGIN{printf "%.2f", r/c}') | ${rp} ms | ${cp} ms |"
done
echo
echo "memory, 10,000 idle allocations:"
echo "  relay:  $("$work/turnload" -server 127.0.0.1:34780 -user bench -pass bench -allocs 10000 -hold -pid "$relay_pid")"
echo "  coturn: $("$work/turnload" -server 127.0.0.1:34790 -user bench -pass bench -allocs 10000 -hold -pid "$coturn_pid")"
