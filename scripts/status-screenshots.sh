#!/bin/sh
# Screenshots of dbprobe's status page during a lab switchover, at laptop
# (1400 px) and phone (400 px) widths, into docs/. Needs chromium
# (apt-get install chromium) and mariadbd.
#
#   scripts/status-screenshots.sh
set -eu
cd "$(dirname "$0")/.."
go build -o bin/dbprobe ./cmd/dbprobe
dir=$(mktemp -d)
port=${PORT:-18306}
url="http://127.0.0.1:$port/"
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

bin/dbprobe lab up --dir "$dir/lab" --http "127.0.0.1:$port" >"$dir/lab.log" 2>&1 &
pids="$!"
until [ -f "$dir/lab/lab.json" ]; do sleep 0.2; done
bin/dbprobe run --no-tty --config "$dir/lab/dbprobe.yaml" >"$dir/run.log" 2>&1 &
pids="$! $pids"
until curl -fs "${url}-/ready" >/dev/null 2>&1; do sleep 0.2; done
sleep 3

shot() { # name width height
	chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$dir/chromium-$1" --hide-scrollbars --window-size="$2,$3" \
		--screenshot="docs/$1.png" "$url" 2>/dev/null
}

bin/dbprobe lab switchover --dir "$dir/lab" --hold 8s --dns-delay 8s >"$dir/switchover.log" 2>&1 &
pids="$! $pids"
sleep 6 # in progress: blue read-only, logins refused, connections dropped
shot status-1400-switchover 1400 1400 &
shot status-400-switchover 400 2400
wait $!
sleep 14 # after the DNS move: fresh on green, pooled stale on old blue
shot status-400-after 400 2400
shot status-1400-after 1400 1400
echo "screenshots in docs/status-*.png"
