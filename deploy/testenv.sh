#!/usr/bin/env bash
# Test environment for Guildhall: installs and starts the real components the
# tests run against, on loopback, in a throwaway directory.
#
#   deploy/testenv.sh install      install what is missing (apt packages, pinned MinIO)
#   deploy/testenv.sh up           start PostgreSQL and MinIO; prints the variables to export
#   deploy/testenv.sh down DIR     stop what "up" started in DIR and delete it
#
# deploy/test.sh sources this file. Tests read:
#   GUILDHALL_TEST_POSTGRES  postgres://... URL of an empty database (synchronous_commit=on, fsync=on)
#   GUILDHALL_TEST_S3        http://127.0.0.1:PORT, an S3 endpoint (MinIO)
#   GUILDHALL_TEST_S3_ACCESS_KEY, GUILDHALL_TEST_S3_SECRET_KEY
#   GUILDHALL_TEST_TURNUTILS directory holding coturn's turnutils_uclient, turnutils_peer, turnserver
# With CI=true a missing component is an error in the tests; locally they skip and say how to get it.
set -euo pipefail

# MinIO has no semver tags on the module proxy; this pseudo-version builds with Go 1.26.
MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
GUILDHALL_CACHE=${GUILDHALL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/guildhall}
APT_PACKAGES=(gcc libc6-dev postgresql coturn)

log() { printf 'testenv: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && printf '%s\n' "$d"
}

testenv_install() {
  local missing=()
  command -v gcc >/dev/null || missing+=(gcc libc6-dev)
  pg_bindir >/dev/null || missing+=(postgresql)
  command -v turnutils_uclient >/dev/null || missing+=(coturn)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from Debian's packages"
    as_root apt-get update -qq
    # Do not let package scripts start a system-wide PostgreSQL or TURN server.
    as_root env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  local stamp="$GUILDHALL_CACHE/bin/minio.version"
  if [ ! -x "$GUILDHALL_CACHE/bin/minio" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$MINIO_VERSION" ]; then
    log "building MinIO $MINIO_VERSION (a few minutes the first time, cached in $GUILDHALL_CACHE)"
    mkdir -p "$GUILDHALL_CACHE/bin"
    (cd / && GOBIN="$GUILDHALL_CACHE/bin" GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION")
    printf '%s\n' "$MINIO_VERSION" > "$stamp"
  fi
}

# free_port prints a loopback TCP port nothing listens on.
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      printf '%s\n' "$p"
      return 0
    fi
  done
  return 1
}

# http_status HOST PORT PATH prints the status code of a GET, using only bash.
http_status() {
  local line
  exec 3<>"/dev/tcp/$1/$2" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
  read -r _ line _ <&3 || true
  exec 3>&- 3<&-
  printf '%s\n' "$line"
}

# run_pg runs a PostgreSQL binary as an unprivileged user (initdb refuses root).
run_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

testenv_up() {
  local dir bindir pgport s3port consoleport
  dir=$(mktemp -d "${TMPDIR:-/tmp}/guildhall-testenv.XXXXXX")
  chmod 755 "$dir"
  bindir=$(pg_bindir) || { log "PostgreSQL is not installed: run deploy/testenv.sh install"; return 1; }

  # PostgreSQL: a throwaway cluster, durable settings, loopback only.
  mkdir -p "$dir/pg"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir/pg"
  pgport=$(free_port)
  run_pg "$bindir/initdb" -D "$dir/pg/data" -U guildhall --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  printf '%s' "-c listen_addresses=127.0.0.1 -p $pgport -k $dir/pg -c fsync=on -c synchronous_commit=on -c max_connections=200" >"$dir/pg/opts"
  pg_start "$dir" || return 1
  run_pg "$bindir/psql" -h 127.0.0.1 -p "$pgport" -U guildhall -d postgres -qAt -c 'CREATE DATABASE guildhall_test' >/dev/null
  [ "$(run_pg "$bindir/psql" -h 127.0.0.1 -p "$pgport" -U guildhall -d guildhall_test -qAt -c 'SHOW synchronous_commit')" = on ] \
    || { log "PostgreSQL did not come up with synchronous_commit=on"; return 1; }

  # MinIO: one drive in the temp dir, random credentials, loopback only.
  s3port=$(free_port)
  consoleport=$(free_port)
  local access secret
  access="gh$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  secret="$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
  mkdir -p "$dir/s3"
  cat >"$dir/s3/run" <<RUN
MINIO_ROOT_USER=$access MINIO_ROOT_PASSWORD=$secret MINIO_BROWSER=off MINIO_UPDATE=off \
  nohup "$GUILDHALL_CACHE/bin/minio" server --quiet --address "127.0.0.1:$s3port" \
  --console-address "127.0.0.1:$consoleport" "$dir/s3/data" >>"$dir/s3/server.log" 2>&1 &
echo \$! > "$dir/s3/pid"
RUN
  echo "$s3port" >"$dir/s3/port"
  s3_start "$dir" || return 1

  cat > "$dir/env" <<ENV
export GUILDHALL_TESTENV_DIR=$dir
export GUILDHALL_TEST_POSTGRES=postgres://guildhall@127.0.0.1:$pgport/guildhall_test?sslmode=disable
export GUILDHALL_TEST_S3=http://127.0.0.1:$s3port
export GUILDHALL_TEST_S3_ACCESS_KEY=$access
export GUILDHALL_TEST_S3_SECRET_KEY=$secret
export GUILDHALL_TEST_TURNUTILS=$(dirname "$(command -v turnutils_uclient)")
ENV
  log "PostgreSQL on 127.0.0.1:$pgport, MinIO on 127.0.0.1:$s3port (state in $dir)"
  printf '%s\n' "$dir"
}

# pg_start and pg_stop start and stop the cluster of an environment (fault
# tests restart it under load); s3_start and s3_stop likewise for MinIO.
pg_start() {
  local dir=$1
  run_pg "$(pg_bindir)/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 -o "$(cat "$dir/pg/opts")" start >/dev/null \
    || { cat "$dir/pg/server.log" >&2; return 1; }
}

pg_stop() { run_pg "$(pg_bindir)/pg_ctl" -D "$1/pg/data" -m fast -w stop >/dev/null; }

s3_start() {
  local dir=$1 ok=
  sh "$dir/s3/run"
  for _ in $(seq 120); do
    if [ "$(http_status 127.0.0.1 "$(cat "$dir/s3/port")" /minio/health/ready 2>/dev/null)" = 200 ]; then ok=1; break; fi
    sleep 0.5
  done
  [ -n "$ok" ] || { cat "$dir/s3/server.log" >&2; log "MinIO did not become ready"; return 1; }
}

s3_stop() {
  local pid
  pid=$(cat "$1/s3/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

testenv_down() {
  local dir=${1:-}
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  if [ -f "$dir/s3/pid" ]; then kill "$(cat "$dir/s3/pid")" 2>/dev/null || true; fi
  if [ -d "$dir/pg/data" ]; then run_pg "$(pg_bindir)/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    install) testenv_install ;;
    up) testenv_install; d=$(testenv_up); cat "$d/env"; echo "# stop with: deploy/testenv.sh down $d" ;;
    down) testenv_down "${2:-}" ;;
    pg-start) pg_start "$2" ;;
    pg-stop) pg_stop "$2" ;;
    s3-start) s3_start "$2" ;;
    s3-stop) s3_stop "$2" ;;
    *) echo "usage: $0 install | up | down DIR | pg-start DIR | pg-stop DIR | s3-start DIR | s3-stop DIR" >&2; exit 2 ;;
  esac
fi
