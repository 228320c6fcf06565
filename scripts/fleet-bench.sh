#!/usr/bin/env bash
# Measures dbprobe at fleet scale against one local MariaDB, beside a minimal
# Go prober doing the same work (resolve, connect or reuse, one SELECT, one
# upsert): CPU per probe, peak RSS (VmHWM), RSS, live heap and goroutine
# stacks at the end, schedule lag p50/p99, the ticks of answering targets
# that ran no probe, and the 1-minute load average at the end of each case
# (the machine may be shared).
# Each case runs in its own process so that peak RSS is its own.
# docs/benchmarks.md#fleet has the results.
#   usage: scripts/fleet-bench.sh [SECONDS]   (measured seconds per case, default 15)
set -euo pipefail
secs=${1:-15}
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/daemon.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" ./daemon/
printf "| case | prober | probes | CPU per probe | peak RSS | RSS at end | live heap | stacks | lag p50 | lag p99 | lost ticks | load (1 min) |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n"
run() { # name prober streams mode interval hang [warm-up [GOMEMLIMIT]]
  local out
  out=$(cd daemon && FLEET_PROBER=$2 FLEET_STREAMS=$3 FLEET_MODE=$4 FLEET_INTERVAL=$5 FLEET_HANG=$6 FLEET_SECONDS=$secs \
    FLEET_WARMUP=${7:-5s} env ${8:+GOMEMLIMIT=$8} \
    "$bin" -test.run '^$' -test.bench '^BenchmarkFleet$' -test.benchtime 1x 2>&1 | grep '^BenchmarkFleet')
  awk -v name="$1" -v prober="$2" '{
    for (i = 1; i < NF; i++) v[$(i+1)] = $i
    lost = ("lost-ticks" in v) ? sprintf("%d", v["lost-ticks"]) : "n/a"
    printf "| %s | %s | %d | %.0f µs | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.2f ms | %.2f ms | %s | %.2f |\n", name, prober, v["probes"], v["cpu-us/probe"],
      v["peak-rss-MiB"], v["rss-MiB"], v["heap-live-MiB"], v["stacks-MiB"], v["lag-p50-ms"], v["lag-p99-ms"], lost, v["load1-x100"] / 100 }' <<<"$out"
}
for p in dbprobe minimal; do
  run "1000 fresh at 1s" $p 1000 fresh 1s 0
  run "1000 pooled at 1s" $p 1000 pooled 1s 0
  run "1000 fresh at 1s, 10% hang" $p 1000 fresh 1s 10
done
run "1000 fresh at 1s, GOMEMLIMIT=56MiB" dbprobe 1000 fresh 1s 0 5s 56MiB
run "1000 pooled at 1s, GOMEMLIMIT=56MiB" dbprobe 1000 pooled 1s 0 5s 56MiB
# At 10 s a 5 s warm-up measures the first interval, in which every stream
# builds its state; a 15 s one measures the steady state.
for w in 5s 15s; do
  run "10000 fresh at 10s, $w warm-up" dbprobe 10000 fresh 10s 0 $w
  run "10000 fresh at 10s, $w warm-up" minimal 10000 fresh 10s 0 $w
done
