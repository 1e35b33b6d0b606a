#!/usr/bin/env bash
# bench/netpath.sh - snisplice, nginx and a direct connection over an
# emulated wide-area path (delay, jitter, loss, reordering, a bottleneck
# rate, MTU 1500 or 1280), the client in a network namespace.
#
# The path is bench/netpath_emu.c (two TUN devices; this kernel has no
# sch_netem). Backend (bench/backend.c), snisplice and nginx stay on the
# host: backend on 0.0.0.0:13400, snisplice on 10.238.0.1:13410, nginx on
# 10.238.0.1:13411; the proxies reach the backend over loopback. The
# client (bench/loadgen.c, or bench/netpath_ttfb.py) runs in namespace
# snp-client at 10.238.0.2. Needs root.
#
#   bench/netpath.sh bulk  "EMU ARGS" SIZE REPS    bulk-down then bulk-up, one connection, per peer
#   bench/netpath.sh short "EMU ARGS" SIZE REPS    time to first byte and to the end of a SIZE reply
#   bench/netpath.sh shell "EMU ARGS"              set everything up and wait (Ctrl-C tears down)
#
# EMU ARGS are netpath_emu's (--delay MS one-way, --jitter, --loss, --reorder,
# --rate MBIT, --queue-ms); MTU=1280 in the environment changes the MTU,
# PEERS="direct snisplice nginx" the peers (snisplice-b: a second binary,
# SNISPLICE_B_BIN, on port 13412, for A/B runs), MODES="bulk-down bulk-up" the bulk modes, SNISPLICE_BIN the binary,
# SS=1 samples `ss -tin` on the host every second during bulk runs.
# One JSON line per run on stdout (loadgen's, with "peer" and "path" added)
# and medians per peer at the end ("errors" there adds loadgen's errors and
# the sockets left open a second after a run).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/build/bench
NS=snp-client
HOST_IP=10.238.0.1
CLIENT_IP=10.238.0.2
BACKEND_PORT=13400
MTU=${MTU:-1500}
PEERS=${PEERS:-"direct snisplice nginx"}
SNISPLICE_BIN=${SNISPLICE_BIN:-$ROOT/build/snisplice}
HELLO=${HELLO:-$ROOT/../shared/clienthello/chromium156_matrix.exceptionerror.io.bin}
TMPD=$(mktemp -d /tmp/netpath.XXXXXX)
PIDS=()

log() { echo "netpath: $*" >&2; }

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ -f $TMPD/nginx.pid ]] && kill "$(cat "$TMPD/nginx.pid")" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build() {
    mkdir -p "$OUT"
    for p in backend loadgen netpath_emu; do
        if [[ ! -x $OUT/$p || $ROOT/bench/$p.c -nt $OUT/$p ]]; then
            gcc -O2 -g -Wall -Wextra -pthread -o "$OUT/$p" "$ROOT/bench/$p.c"
        fi
    done
    [[ -x $SNISPLICE_BIN ]] || make -s -C "$ROOT" build/snisplice >&2
}

port_of() {
    case $1 in
    direct) echo $BACKEND_PORT ;;
    snisplice) echo 13410 ;;
    nginx) echo 13411 ;;
    snisplice-b) echo 13412 ;;
    esac
}

start_peers() {
    "$OUT/backend" -p $BACKEND_PORT -t 2 -a 0.0.0.0 >"$TMPD/backend.log" 2>&1 &
    PIDS+=($!)
    sed -e "s/127.0.0.1:@PORT@/$HOST_IP:13410/" -e "s/@BACKEND@/$BACKEND_PORT/" -e "s/@WORKERS@/2/" \
        "$ROOT/bench/peers/snisplice.ini.in" >"$TMPD/snisplice.ini"
    sed -e "s/13410/13412/" "$TMPD/snisplice.ini" >"$TMPD/snisplice-b.ini"
    # The listen address exists only once the path is up: snisplice and
    # nginx start after it (path_up).
    sed -e "s/127.0.0.1:@PORT@/$HOST_IP:13411/" -e "s/@BACKEND@/$BACKEND_PORT/" -e "s/@WORKERS@/2/" \
        -e "s#@DIR@#$TMPD#" "$ROOT/bench/peers/nginx.conf.in" >"$TMPD/nginx.conf"
}

# path_up EMU ARGS...: namespace, emulator, addresses, then the proxies.
path_up() {
    ip netns add "$NS"
    "$OUT/netpath_emu" --netns "$NS" "$@" 2>"$TMPD/emu.log" &
    EMU_PID=$!
    PIDS+=($EMU_PID)
    for _ in $(seq 50); do grep -q ready "$TMPD/emu.log" 2>/dev/null && break; sleep 0.1; done
    grep -q ready "$TMPD/emu.log" || { cat "$TMPD/emu.log" >&2; exit 1; }
    ip link set snp-h mtu "$MTU" txqueuelen 10000 up
    ip addr add $HOST_IP peer $CLIENT_IP dev snp-h
    ip -n "$NS" link set lo up
    # The client may send and receive a whole bandwidth-delay product
    # (1 Gbit/s x 100 ms = 12.5 MB): only the host's own limits (and the
    # proxies') are under test. tcp_[rw]mem are per namespace.
    ip netns exec "$NS" sysctl -qw net.ipv4.tcp_wmem="4096 16384 33554432" net.ipv4.tcp_rmem="4096 131072 33554432"
    ip -n "$NS" link set snp-c mtu "$MTU" txqueuelen 10000 up
    ip -n "$NS" addr add $CLIENT_IP peer $HOST_IP dev snp-c
    ip -n "$NS" route add default dev snp-c
    if [[ " $PEERS " == *" snisplice "* ]]; then
        "$SNISPLICE_BIN" -c "$TMPD/snisplice.ini" 2>"$TMPD/snisplice.log" &
        PIDS+=($!)
    fi
    if [[ " $PEERS " == *" snisplice-b "* ]]; then
        "${SNISPLICE_B_BIN:?snisplice-b needs SNISPLICE_B_BIN}" -c "$TMPD/snisplice-b.ini" 2>"$TMPD/snisplice-b.log" &
        PIDS+=($!)
    fi
    if [[ " $PEERS " == *" nginx "* ]]; then
        nginx -c "$TMPD/nginx.conf" -g "daemon on; master_process on;" 2>>"$TMPD/nginx-start.log"
    fi
    # Wait for every peer to listen (a loaded machine starts them slowly).
    local peer
    for peer in $PEERS; do
        for _ in $(seq 100); do
            ss -ltnH "( sport = :$(port_of "$peer") )" | grep -q . && break
            sleep 0.1
        done
    done
}

ss_sampler() {
    while sleep 1; do
        echo "== $(date +%T.%N)"
        ss -tin "( sport = :13410 or sport = :13411 or sport = :13412 or sport = :$BACKEND_PORT or dport = :$BACKEND_PORT )" 2>/dev/null
    done >>"$TMPD/ss.log"
}

run_bulk() {
    local path=$1 size=$2 reps=$3
    for rep in $(seq "$reps"); do
        for mode in ${MODES:-bulk-down bulk-up}; do
            for peer in $PEERS; do
                local sampler=
                if [[ ${SS:-0} == 1 ]]; then echo "== $peer $mode $rep" >>"$TMPD/ss.log"; ss_sampler & sampler=$!; fi
                local line
                line=$(ip netns exec "$NS" "$OUT/loadgen" --target $HOST_IP:"$(port_of "$peer")" --hello "$HELLO" \
                    --mode $mode --concurrency 1 --size "$size" --timeout 30) || line='{"errors":-1}'
                [[ -n $sampler ]] && { kill "$sampler"; wait "$sampler" 2>/dev/null || true; }
                echo "{\"peer\":\"$peer\",\"path\":\"$path\",\"rep\":$rep,\"left_open\":$(left_open),${line#\{}"
            done
        done
    done
}

# Sockets of the proxies or the backend still open (in any state but
# TIME-WAIT) a second after the client finished: a relay that missed a
# half-close or an end of stream leaves its connection here.
left_open() {
    sleep 1
    ss -tanH state all "( sport = :13410 or sport = :13411 or sport = :13412 or sport = :$BACKEND_PORT or dport = :$BACKEND_PORT )" \
        | grep -vcE "^(LISTEN|TIME-WAIT)" || true
}

run_short() {
    local path=$1 size=$2 reps=$3
    for rep in $(seq "$reps"); do
        for peer in $PEERS; do
            local line
            line=$(ip netns exec "$NS" python3 "$ROOT/bench/netpath_ttfb.py" $HOST_IP "$(port_of "$peer")" "$HELLO" "$size") \
                || line='{"errors":-1}'
            echo "{\"peer\":\"$peer\",\"path\":\"$path\",\"rep\":$rep,${line#\{}"
        done
    done
}

medians() {
    python3 -c '
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
keys = {}
for r in rows:
    keys.setdefault((r.get("mode", "short"), r["peer"]), []).append(r)
for (mode, peer), rs in keys.items():
    errs = sum(r.get("errors", 0) for r in rs) + sum(r.get("left_open", 0) for r in rs)
    if "gbps" in rs[0]:
        v = sorted(r.get("gbps", 0) * 1000 for r in rs)
        print(f"{mode:10} {peer:10} Mbit/s median {st.median(v):7.1f}  runs {[round(x) for x in v]}  errors {errs}")
    else:
        c, fb, e = (st.median(r.get(k, 0) for r in rs) for k in ("connect_ms", "first_byte_ms", "end_ms"))
        print(f"{mode:10} {peer:10} connect {c:6.1f} ms  first byte {fb:6.1f} ms  end {e:6.1f} ms  (medians of {len(rs)})  errors {errs}")
' "$1" >&2
}

main() {
    [[ $(id -u) == 0 ]] || { log "needs root (network namespaces)"; exit 1; }
    local what=${1:?bulk, short or shell} emu=${2:-}
    build
    start_peers
    # shellcheck disable=SC2086
    path_up $emu
    log "path: $emu MTU $MTU; peers: $PEERS"
    case $what in
    bulk) run_bulk "$emu mtu $MTU" "${3:-256m}" "${4:-3}" | tee "$TMPD/results.jsonl"; medians "$TMPD/results.jsonl" ;;
    short) run_short "$emu mtu $MTU" "${3:-1024}" "${4:-5}" | tee "$TMPD/results.jsonl"; medians "$TMPD/results.jsonl" ;;
    shell) log "up; Ctrl-C to tear down"; while sleep 3600; do :; done ;;
    *) log "unknown command $what"; exit 2 ;;
    esac
    [[ -f $TMPD/ss.log ]] && cp "$TMPD/ss.log" "$OUT/netpath-ss.log" && log "ss samples in $OUT/netpath-ss.log"
    kill -TERM "$EMU_PID"; wait "$EMU_PID" 2>/dev/null || true
    grep -h "netpath_emu:" "$TMPD/emu.log" >&2 || true
    grep -hiE "error|warn" "$TMPD"/snisplice*.log "$TMPD/nginx-error.log" 2>/dev/null | head -20 >&2 || true
}

main "$@"
