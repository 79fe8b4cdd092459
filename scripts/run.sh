#!/usr/bin/env bash
# Starts the gateway for local use: if nothing answers on the Redis URL
# (default redis://127.0.0.1:6379), starts a loopback redis-server with its
# data under .run/, then runs target/debug/emitgate with the given flags.
set -euo pipefail
cd "$(dirname "$0")/.."

url="${EMITGATE_REDIS_URL:-redis://127.0.0.1:6379}"
hostport="${url#redis://}"; hostport="${hostport%%/*}"; hostport="${hostport##*@}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$hostport" ] && port=6379

redis_answers() { (exec 3<>"/dev/tcp/$host/$port" && printf 'PING\r\n' >&3 && read -r -t 2 line <&3 && [[ "$line" == +PONG* ]]) 2>/dev/null; }

started=""
if ! redis_answers; then
  if [[ "$host" != "127.0.0.1" && "$host" != "localhost" ]]; then
    echo "run: nothing answers at $url and it is not loopback; start Redis there first" >&2; exit 1
  fi
  command -v redis-server >/dev/null || { echo "run: redis-server missing: run 'make setup'" >&2; exit 1; }
  mkdir -p .run
  echo "run: starting redis-server on $host:$port (data in .run/)" >&2
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$PWD/.run" \
    --logfile "$PWD/.run/redis.log" &
  started=$!
  for _ in $(seq 1 100); do redis_answers && break; sleep 0.05; done
  redis_answers || { echo "run: redis-server did not start, see .run/redis.log" >&2; exit 1; }
fi
cleanup() { [ -n "$started" ] && kill "$started" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

EMITGATE_REDIS_URL="$url" target/debug/emitgate "$@"
