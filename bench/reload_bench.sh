#!/usr/bin/env bash
# Reload with 100,000 routes while connections keep coming: how long each
# SIGHUP takes (snisplice logs "reloaded ... in N ms") and whether any
# connection failed. Proxy pinned to CPU 0 (its main thread shares that CPU
# with the busy worker), load generator and backend to CPU 1.
#   bench/reload_bench.sh [ROUTES] [RELOADS]
#   SNISPLICE_BIN=path: measure that binary instead of build/snisplice
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUTES=${1:-100000}
RELOADS=${2:-10}
OUT=$ROOT/build/bench
TMP=$(mktemp -d /tmp/snisplice-reload.XXXXXX)
trap 'kill $PP $BP 2>/dev/null; rm -rf "$TMP"' EXIT
BIN=${SNISPLICE_BIN:-}
if [[ -z $BIN ]]; then
    make -s -C "$ROOT" build/snisplice >&2
    BIN=$ROOT/build/snisplice
fi
for p in backend loadgen; do
    [[ -x $OUT/$p ]] || gcc -O2 -Wall -pthread -o "$OUT/$p" "$ROOT/bench/$p.c"
done
python3 - "$ROUTES" > "$TMP/big.ini" <<'PY'
import sys
n = int(sys.argv[1])
print("[global]\nworkers = 1\n[listen]\naddress = 127.0.0.1:17110\n[routes]")
for i in range(n):
    k = i % 20
    if k < 16: print(f"svc{i:05d}.tenant{i%997:03d}.example.net = u{i%50}")
    elif k < 19: print(f"*.apps{i:05d}.cluster{i%61:02d}.example.org = u{i%50}")
    else: print(f".site{i:05d}.example.com = u{i%50}")
print("default = u0")
for u in range(50):
    print(f"[upstream u{u}]\nserver = 127.0.0.1:17111")
PY
start=$(date +%s%N)
"$BIN" -t -c "$TMP/big.ini" >/dev/null 2>&1
echo "check (-t, whole process) with $ROUTES routes: $(( ($(date +%s%N) - start) / 1000000 )) ms"
taskset -c 1 "$OUT/backend" -p 17111 -t 1 >/dev/null 2>&1 & BP=$!
taskset -c 0 "$BIN" -c "$TMP/big.ini" 2>"$TMP/proxy.log" & PP=$!
sleep 0.5
DURATION=$(( RELOADS * 3 / 10 + 2 ))
taskset -c 1 "$OUT/loadgen" --threads 1 --target 127.0.0.1:17110 \
    --hello "$ROOT/tests/vectors/clienthello/chromium156_matrix.exceptionerror.io.bin" \
    --mode cps --concurrency 20 --duration "$DURATION" --size 1024 > "$TMP/load.json" &
LG=$!
sleep 0.5
for ((i = 0; i < RELOADS; i++)); do kill -HUP "$PP"; sleep 0.3; done
wait "$LG"
echo "connections during the reloads: $(jq -c '{connections,errors,conn_per_s}' "$TMP/load.json")"
grep -o "reloaded .* in [0-9.]* ms" "$TMP/proxy.log" | sed 's/.* in /reload: /'
