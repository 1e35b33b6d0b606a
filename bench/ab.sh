#!/usr/bin/env bash
# ab.sh - paired comparison of two snisplice builds on short connections.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [CONCURRENCY=50] [PAIRS=10] [SECONDS=2]
#
# Runs the two builds alternately (OLD NEW, then NEW OLD, ...), each pinned
# to CPU 0 with a fresh process, the load generator and backend on CPU 1,
# and prints the proxy CPU per connection (utime+stime / connections) of
# each run and NEW/OLD per pair. The median of the per-pair ratios is what
# to quote: this machine drifts between a fast and a slow mode over minutes,
# and a ratio of two runs seconds apart cancels most of that drift, which
# medians of separate runs do not. For side-by-side numbers with the peers,
# use bench/run.sh (CANDIDATE=...).
#
# OLD_GLOBALS / NEW_GLOBALS (optional): extra [global] lines for one side's
# config, to compare one build with a setting off and on
# (NEW_GLOBALS='max_connections_per_client = 1000' bench/ab.sh B B).
# OLD_UPSTREAM / NEW_UPSTREAM: the same for the [upstream] section
# (NEW_UPSTREAM='balance = client_address' bench/ab.sh B B).
set -euo pipefail

OLD=$(readlink -f "$1") NEW=$(readlink -f "$2")
CONCURRENCY=${3:-50} PAIRS=${4:-10} SECONDS_PER_RUN=${5:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/build/bench
HELLO=${SNISPLICE_SHARED:-$ROOT/../shared}/clienthello/chromium156_matrix.exceptionerror.io.bin
PROXY_PORT=18301 BACKEND_PORT=18300

mkdir -p "$OUT"
for p in backend loadgen; do
    [[ -x $OUT/$p && $OUT/$p -nt $ROOT/bench/$p.c ]] ||
        gcc -O2 -g -Wall -Wextra -pthread -o "$OUT/$p" "$ROOT/bench/$p.c"
done
TMPD=$(mktemp -d)
trap 'kill $BACKEND_PID 2>/dev/null; rm -rf "$TMPD"' EXIT
write_config() {
    cat > "$1" <<EOF
[global]
workers = 1
$2
[listen]
address = 127.0.0.1:$PROXY_PORT
[routes]
default = backend
[upstream backend]
server = 127.0.0.1:$BACKEND_PORT
$3
EOF
}
write_config "$TMPD/old.ini" "${OLD_GLOBALS:-}" "${OLD_UPSTREAM:-}"
write_config "$TMPD/new.ini" "${NEW_GLOBALS:-}" "${NEW_UPSTREAM:-}"
taskset -c 1 "$OUT/backend" -p "$BACKEND_PORT" -t 1 > /dev/null 2>&1 &
BACKEND_PID=$!
sleep 0.3
TICK=$(getconf CLK_TCK)

# One run of one build: prints its CPU microseconds per connection.
cpu_per_connection() {
    taskset -c 0 "$1" -c "$2" 2> /dev/null &
    local pid=$!
    sleep 0.3
    local before after result connections
    before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    result=$(taskset -c 1 "$OUT/loadgen" --target "127.0.0.1:$PROXY_PORT" --hello "$HELLO" \
             --mode cps --concurrency "$CONCURRENCY" --duration "$SECONDS_PER_RUN")
    after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill "$pid"
    wait "$pid" 2> /dev/null || true
    connections=$(jq -r 'if .errors == 0 then .connections else 0 end' <<< "$result")
    (( connections > 0 )) || { echo "run with errors: $result" >&2; exit 1; }
    awk -v t="$((after - before))" -v hz="$TICK" -v n="$connections" \
        'BEGIN { printf "%.1f", t / hz * 1e6 / n }'
}

ratios=()
for pair in $(seq "$PAIRS"); do
    if (( pair % 2 )); then
        old=$(cpu_per_connection "$OLD" "$TMPD/old.ini"); new=$(cpu_per_connection "$NEW" "$TMPD/new.ini")
    else
        new=$(cpu_per_connection "$NEW" "$TMPD/new.ini"); old=$(cpu_per_connection "$OLD" "$TMPD/old.ini")
    fi
    ratio=$(awk -v a="$old" -v b="$new" 'BEGIN { printf "%.3f", b / a }')
    ratios+=("$ratio")
    echo "pair $pair: old $old us/conn, new $new us/conn, new/old $ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n |
    awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
                              printf "c%s, %d pairs: median new/old %.3f (min %.3f, max %.3f)\n",
                                     c, NR, m, v[1], v[NR] }' c="$CONCURRENCY"
