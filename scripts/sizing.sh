#!/usr/bin/env bash
# Measures what dbprobe costs against a real MariaDB (the switchover lab on
# loopback): CPU, memory and journal growth, at 1 s and 100 ms, for a few
# stream counts. Each target has the fresh and pooled modes (2 streams) and a
# write probe; the HTTP server is off. docs/deploy.md#sizing has the results.
#   usage: scripts/sizing.sh [SECONDS] [TARGET COUNTS...]   (default: 60 1 10)
set -euo pipefail
secs=${1:-60}; shift || true
counts=("${@:-1 10}"); counts=(${counts[*]})
cd "$(dirname "$0")/.."
go build -o bin/dbprobe ./cmd/dbprobe
work=$(mktemp -d)
lab=""
cleanup() {
  if [ -n "$lab" ]; then bin/dbprobe lab down --dir "$work/lab" >/dev/null 2>&1 || kill "$lab" 2>/dev/null || true; wait "$lab" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
bin/dbprobe lab up --dir "$work/lab" --http "" >"$work/lab.log" 2>&1 &
lab=$!
for _ in $(seq 600); do [ -f "$work/lab/lab.json" ] && break; sleep 0.1; done
[ -f "$work/lab/lab.json" ] || { cat "$work/lab.log"; exit 1; }

labcfg="$work/lab/dbprobe.yaml"
field() { sed -n "s/^ *$1: *\"\{0,1\}\([^\" ]*\)\"\{0,1\}.*/\1/p" "$labcfg" | head -1; }
dns=$(field server); host=$(field host); port=$(field port); pwfile=$(field password_file); table=$(field table)

hz=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
printf "| interval | streams | CPU (%% of a core) | per stream | RSS (MiB) | journal per hour | per stream |\n|---|---|---|---|---|---|---|\n"
for interval in 1s 100ms; do
  for n in "${counts[@]}"; do
    cfg="$work/$interval-$n.yaml"; journal="$work/journal-$interval-$n"
    {
      printf 'run_id: sizing\ninterval: %s\ntimeout: 2s\ndns:\n  server: "%s"\ntargets:\n' "$interval" "$dns"
      for i in $(seq "$n"); do
        printf '  - {name: t%d, host: %s, port: %s, user: probe, password_file: "%s", database: dbprobe, modes: [fresh, pooled], write: {table: %s}}\n' \
          "$i" "$host" "$port" "$pwfile" "$table"
      done
      printf 'sinks:\n  journal:\n    dir: "%s"\nhttp:\n  listen: ""\n' "$journal"
    } >"$cfg"
    bin/dbprobe run --config "$cfg" >/dev/null 2>"$work/run.log" &
    pid=$!
    sleep 10 # warm-up: connections, first segment, detector state
    c0=$(cpu $pid); j0=$(du -sb "$journal" | cut -f1); t0=$(date +%s.%N)
    sleep "$secs"
    c1=$(cpu $pid); j1=$(du -sb "$journal" | cut -f1); t1=$(date +%s.%N)
    rss=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
    kill -TERM $pid; wait $pid || { cat "$work/run.log"; exit 1; }
    awk -v c="$((c1 - c0))" -v hz="$hz" -v t0="$t0" -v t1="$t1" -v j="$((j1 - j0))" -v rss="$rss" -v n="$n" -v iv="$interval" 'BEGIN {
      el = t1 - t0; core = 100 * c / hz / el; streams = 2 * n; bph = j / el * 3600
      printf "| %s | %d | %.1f %% | %.2f %% | %.0f | %.1f MiB | %.1f MiB |\n", iv, streams, core, core / streams, rss / 1024, bph / 1048576, bph / 1048576 / streams }'
  done
done
