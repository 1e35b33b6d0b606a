#!/usr/bin/env bash
# snisplice benchmark: snisplice vs nginx (stream+ssl_preread), haproxy (splice
# and no-splice), sniproxy, and no proxy at all ("direct"), on loopback.
#
#   bench/run.sh            full run (3 reps, ~10 min)
#   bench/run.sh --quick    3 reps, short durations (~2 min)
#   bench/run.sh --smoke    1 rep, direct + snisplice only, ~20 s; exits
#                           non-zero on any error (used by `make test`)
# Env: WORKERS=1 (default; proxies pinned to CPU 0, loadgen+backend to CPU 1)
#      WORKERS=2 (no pinning), REPS=N, PROXIES="direct snisplice ...",
#      SNISPLICE_SHARED (ClientHello captures in $SNISPLICE_SHARED/clienthello),
#      RESULTS_DIR (default bench/results; build/bench/smoke for --smoke)
#      ONLY="bulk_down bulk_up" (a subset of the scenarios, for experiments)
#      CANDIDATE=/path/to/snisplice: an experiment build measured beside
#      build/snisplice as one more row, "candidate" (never a "peer")
# Results: bench/results/latest.{md,json} + one PNG per scenario
#          (--smoke writes to build/bench/smoke/ instead).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
OUT=$ROOT/build/bench
HELLO_DIR=${SNISPLICE_SHARED:-$ROOT/../shared}/clienthello
HELLO_CHROME=$HELLO_DIR/chromium156_matrix.exceptionerror.io.bin
HELLO_CURL=$HELLO_DIR/curl_openssl3.0_matrix.exceptionerror.io.bin

PROFILE=full
for a in "$@"; do
    case $a in
    --quick) PROFILE=quick ;;
    --smoke) PROFILE=smoke ;;
    --full) PROFILE=full ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
    esac
done

WORKERS=${WORKERS:-1}
case $PROFILE in
full)  REPS=${REPS:-3}; D_CPS=3;   D_LAT=5; BULK=1g;   IDLE_N=2000; RESDIR=${RESULTS_DIR:-$BENCH/results} ;;
quick) REPS=${REPS:-3}; D_CPS=0.5; D_LAT=1; BULK=256m; IDLE_N=2000; RESDIR=${RESULTS_DIR:-$BENCH/results} ;;
smoke) REPS=${REPS:-1}; D_CPS=0.5; D_LAT=1; BULK=64m;  IDLE_N=500;  RESDIR=${RESULTS_DIR:-$OUT/smoke} ;;
esac
if [[ $PROFILE == smoke ]]; then
    PROXIES=${PROXIES:-"direct snisplice"}
else
    PROXIES=${PROXIES:-"direct snisplice nginx haproxy haproxy-nosplice sniproxy"}
fi
RATE=200
BACKEND_PORT=18000
declare -A PORT=([direct]=18000 [snisplice]=18101 [nginx]=18102 [haproxy]=18103
                 [haproxy-nosplice]=18104 [sniproxy]=18105 [candidate]=18106)
if [[ -n ${CANDIDATE:-} ]]; then
    [[ -x $CANDIDATE ]] || { echo "CANDIDATE=$CANDIDATE is not an executable" >&2; exit 1; }
    CANDIDATE=$(readlink -f "$CANDIDATE")
    PROXIES="$PROXIES candidate"
fi

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[[ -r $HELLO_CHROME && -r $HELLO_CURL ]] || die "ClientHello captures not found in $HELLO_DIR"

if [[ $WORKERS == 1 ]]; then
    PIN_PROXY=(taskset -c 0); PIN_LOAD=(taskset -c 1)
else
    PIN_PROXY=(); PIN_LOAD=()
fi

# ---------------------------------------------------------------- build
mkdir -p "$OUT" "$RESDIR"
for p in backend loadgen syscall_cost; do
    if [[ ! -x $OUT/$p || $BENCH/$p.c -nt $OUT/$p || $BENCH/pattern.h -nt $OUT/$p ]]; then
        gcc -O2 -g -Wall -Wextra -pthread -o "$OUT/$p" "$BENCH/$p.c"
    fi
done
[[ -x $ROOT/build/snisplice ]] || make -s -C "$ROOT" build/snisplice >&2

# ---------------------------------------------------------------- peers
need_pkgs=()
if [[ $PROFILE != smoke ]]; then
    command -v nginx >/dev/null && [[ -e /usr/lib/nginx/modules/ngx_stream_module.so ]] \
        || need_pkgs+=(nginx-light libnginx-mod-stream)
    command -v haproxy >/dev/null || need_pkgs+=(haproxy)
    command -v sniproxy >/dev/null || need_pkgs+=(sniproxy)
    command -v gnuplot >/dev/null || need_pkgs+=(gnuplot-nox)
    if ((${#need_pkgs[@]})); then
        log "installing ${need_pkgs[*]}"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}") >&2 \
            || log "WARNING: apt-get install failed; missing peers are skipped"
    fi
    # Stop the distribution's own instances (never ours: they run from $TMPD).
    systemctl stop nginx haproxy sniproxy 2>/dev/null || true
    for svc in nginx haproxy sniproxy; do service "$svc" stop >/dev/null 2>&1 || true; done
    for name in nginx haproxy sniproxy; do
        for pid in $(pgrep -x "$name" || true); do
            grep -qa snisplice-bench "/proc/$pid/cmdline" 2>/dev/null || kill "$pid" 2>/dev/null || true
        done
    done
fi
avail=()
for p in $PROXIES; do
    case $p in
    nginx) [[ -e /usr/lib/nginx/modules/ngx_stream_module.so ]] && command -v nginx >/dev/null ;;
    haproxy|haproxy-nosplice) command -v haproxy >/dev/null ;;
    sniproxy) command -v sniproxy >/dev/null ;;
    *) true ;;
    esac && avail+=("$p") || log "WARNING: $p not available, skipped"
done
PROXIES="${avail[*]}"

# ---------------------------------------------------------------- processes
TMPD=$(mktemp -d /tmp/snisplice-bench.XXXXXX)
declare -A PID=()
BACKEND_PID=""
LOADGEN_BG=""
cleanup() {
    local rc=$?
    set +e
    [[ -n $LOADGEN_BG ]] && kill "$LOADGEN_BG" 2>/dev/null
    for p in "${!PID[@]}"; do stop_proxy "$p"; done
    if [[ -n $BACKEND_PID ]]; then kill "$BACKEND_PID" 2>/dev/null; wait "$BACKEND_PID" 2>/dev/null; fi
    if ((rc != 0)) && [[ -d $TMPD ]]; then
        log "logs kept in $TMPD"
    else
        rm -rf "$TMPD"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_listening() { [[ -n $(ss -ltnH "sport = :$1" 2>/dev/null) ]]; }
wait_port() { # port pid
    local i
    for ((i = 0; i < 500; i++)); do
        port_listening "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.01
    done
    return 1
}
wait_port_free() {
    local i
    for ((i = 0; i < 300; i++)); do port_listening "$1" || return 0; sleep 0.01; done
    return 1
}

render() { # template out port
    sed -e "s|@PORT@|$3|g" -e "s|@BACKEND@|$BACKEND_PORT|g" -e "s|@WORKERS@|$WORKERS|g" \
        -e "s|@DIR@|$TMPD|g" -e "s|@USER@|$(id -un)|g" "$1" > "$2"
}

start_proxy() {
    local p=$1 port=${PORT[$1]} conf
    [[ $p == direct ]] && return 0
    wait_port_free "$port" || die "port $port busy"
    case $p in
    snisplice|candidate)
        local binary=$ROOT/build/snisplice
        [[ $p == candidate ]] && binary=$CANDIDATE
        conf=$TMPD/$p.ini; render "$BENCH/peers/snisplice.ini.in" "$conf" "$port"
        setsid "${PIN_PROXY[@]}" "$binary" -c "$conf" 2>>"$TMPD/$p.log" &
        ;;
    nginx)
        conf=$TMPD/nginx.conf; render "$BENCH/peers/nginx.conf.in" "$conf" "$port"
        setsid "${PIN_PROXY[@]}" nginx -p "$TMPD" -e "$TMPD/nginx-error.log" -c "$conf" -g 'daemon off;' \
            2>>"$TMPD/nginx.log" &
        ;;
    haproxy|haproxy-nosplice)
        conf=$TMPD/$p.cfg; render "$BENCH/peers/$p.cfg.in" "$conf" "$port"
        setsid "${PIN_PROXY[@]}" haproxy -f "$conf" -db 2>>"$TMPD/$p.log" &
        ;;
    sniproxy)
        conf=$TMPD/sniproxy.conf; render "$BENCH/peers/sniproxy.conf.in" "$conf" "$port"
        setsid "${PIN_PROXY[@]}" sniproxy -f -c "$conf" 2>>"$TMPD/sniproxy.log" &
        ;;
    esac
    PID[$p]=$!
    wait_port "$port" "${PID[$p]}" || { tail -n 5 "$TMPD"/*.log >&2 || true; die "$p did not start"; }
}

stop_proxy() {
    local p=$1 pid=${PID[$1]:-} i
    [[ -z $pid ]] && return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "PID[$p]"
}

proxy_pids() { # main pid and all descendants
    local p=${PID[$1]:-} q
    [[ -z $p ]] && return 0
    local todo=("$p")
    while ((${#todo[@]})); do
        q=${todo[0]}; todo=("${todo[@]:1}")
        [[ -d /proc/$q ]] || continue
        echo "$q"
        todo+=($(pgrep -P "$q" || true))
    done
}
# utime+stime (clock ticks) summed over the proxy's processes
proxy_ticks() {
    local t=0 pid s
    for pid in $(proxy_pids "$1"); do
        s=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        set -- $s
        t=$((t + ${12} + ${13}))
    done
    echo "$t"
}
# context switches (voluntary + involuntary) summed over every thread of the
# proxy: a proxy that sleeps and wakes per event pays for it in kernel CPU
proxy_switches() {
    local t=0 pid f
    for pid in $(proxy_pids "$1"); do
        for f in /proc/"$pid"/task/*/status; do
            t=$((t + $(awk '/ctxt_switches:/ {s += $2} END {print s + 0}' "$f" 2>/dev/null || echo 0)))
        done
    done
    echo "$t"
}
proxy_status_sum() { # proxy field (VmRSS|Threads)
    local t=0 pid v
    for pid in $(proxy_pids "$1"); do
        v=$(awk -v f="$2:" '$1 == f {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
proxy_fds() {
    local t=0 pid
    for pid in $(proxy_pids "$1"); do t=$((t + $(ls "/proc/$pid/fd" 2>/dev/null | wc -l))); done
    echo "$t"
}
iou_wrk() { ps -eLo comm | grep -c '^iou-wrk' || true; }
alive() { [[ $1 == direct ]] || kill -0 "${PID[$1]:-0}" 2>/dev/null; }

CLK_TCK=$(getconf CLK_TCK)
RUNS=$TMPD/runs.jsonl
: > "$RUNS"
NFAIL=0

loadgen() { timeout 300 "${PIN_LOAD[@]}" "$OUT/loadgen" --threads "$WORKERS" "$@"; }

# record scenario proxy rep loadgen_json rc extra_json
record() {
    local sc=$1 p=$2 rep=$3 lj=$4 rc=$5 extra=$6 ok=true
    [[ -z $lj ]] && lj='{"errors":-1}'
    if ((rc != 0)) || ! jq -e '.errors == 0' <<<"$lj" >/dev/null 2>&1 || ! alive "$p"; then
        ok=false; NFAIL=$((NFAIL + 1))
        log "FAILED: $sc $p rep $rep rc=$rc alive=$(alive "$p" && echo yes || echo no) $lj"
    fi
    printf '{"scenario":"%s","proxy":"%s","rep":%d,"ok":%s,"loadgen":%s,%s}\n' \
        "$sc" "$p" "$rep" "$ok" "$lj" "$extra" >> "$RUNS"
    if ! alive "$p"; then stop_proxy "$p"; start_proxy "$p"; fi
}

# run_load scenario proxy rep loadgen-args...: cps/latency/bulk
run_load() {
    local sc=$1 p=$2 rep=$3; shift 3
    local t0 t1 s0 s1 lj rc=0
    t0=$(proxy_ticks "$p"); s0=$(proxy_switches "$p")
    lj=$(loadgen --target "127.0.0.1:${PORT[$p]}" "$@" 2>>"$TMPD/loadgen.err") || rc=$?
    t1=$(proxy_ticks "$p"); s1=$(proxy_switches "$p")
    record "$sc" "$p" "$rep" "$lj" "$rc" "\"cpu_ticks\":$((t1 - t0)),\"clk_tck\":$CLK_TCK,\"context_switches\":$((s1 - s0))"
    log "$sc $p rep $rep: $(jq -c '{connections,errors,conn_per_s,p50_us,p99_us,gbps}' <<<"$lj" 2>/dev/null)"
}

run_idle() {
    local sc=$1 p=$2 rep=$3
    stop_proxy "$p"; start_proxy "$p"
    sleep 0.2
    local rss0 fd0 th0 io0 rss1 fd1 th1 io1 lj rc=0 i out=$TMPD/idle.out
    rss0=$(proxy_status_sum "$p" VmRSS); fd0=$(proxy_fds "$p"); th0=$(proxy_status_sum "$p" Threads); io0=$(iou_wrk)
    : > "$out"
    # not through the loadgen() wrapper: $! must be loadgen itself (taskset execs)
    "${PIN_LOAD[@]}" "$OUT/loadgen" --threads "$WORKERS" --target "127.0.0.1:${PORT[$p]}" \
        --hello "$HELLO_CHROME" --mode idle --connections "$IDLE_N" --duration 60 \
        > "$out" 2>>"$TMPD/loadgen.err" &
    LOADGEN_BG=$!
    for ((i = 0; i < 3000; i++)); do
        grep -q '"ready"' "$out" && break
        kill -0 "$LOADGEN_BG" 2>/dev/null || break
        sleep 0.01
    done
    sleep 0.3
    rss1=$(proxy_status_sum "$p" VmRSS); fd1=$(proxy_fds "$p"); th1=$(proxy_status_sum "$p" Threads); io1=$(iou_wrk)
    kill -TERM "$LOADGEN_BG" 2>/dev/null || true
    wait "$LOADGEN_BG" || rc=$?
    LOADGEN_BG=""
    grep -q '"ready"' "$out" || rc=99
    lj=$(grep -v '"ready"' "$out" | tail -1 || true)
    record "$sc" "$p" "$rep" "$lj" "$rc" \
        "\"rss_kib_before\":$rss0,\"rss_kib_with\":$rss1,\"fds_before\":$fd0,\"fds_with\":$fd1,\"threads_before\":$th0,\"threads_with\":$th1,\"iou_wrk_before\":$io0,\"iou_wrk_with\":$io1,\"idle_connections\":$IDLE_N"
    log "$sc $p rep $rep: rss +$((rss1 - rss0)) KiB, fds +$((fd1 - fd0)), threads $th0->$th1, iou-wrk $io0->$io1, $(jq -c '{errors}' <<<"$lj" 2>/dev/null)"
}

# ---------------------------------------------------------------- run
log "profile=$PROFILE workers=$WORKERS reps=$REPS proxies: $PROXIES"
# How busy is the machine before we start? (the bench may share it with other jobs)
cpu_busy_idle() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat; }
read -r b0 i0 < <(cpu_busy_idle); sleep 1; read -r b1 i1 < <(cpu_busy_idle)
SYSCALL_NS=$("${PIN_PROXY[@]}" "$OUT/syscall_cost")
BUSY_BEFORE=$(( (b1 - b0) * 100 / ((b1 - b0) + (i1 - i0) > 0 ? (b1 - b0) + (i1 - i0) : 1) ))
OTHERS=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 5 {printf "%s %s%%; ", $2, $1}' | head -c 300)
((BUSY_BEFORE > 10)) && log "WARNING: machine already ${BUSY_BEFORE}% busy before the bench (${OTHERS}); results will be noisy"
setsid "${PIN_LOAD[@]}" "$OUT/backend" -p "$BACKEND_PORT" -t "$WORKERS" > "$TMPD/backend.out" 2>&1 &
BACKEND_PID=$!
wait_port "$BACKEND_PORT" "$BACKEND_PID" || die "backend did not start"
for p in $PROXIES; do start_proxy "$p"; done
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

SCENARIOS=(cps_c1 cps_c50 cps_c500 cps_curl_c50 latency bulk_down bulk_up idle)
[[ $PROFILE == smoke ]] && SCENARIOS=(cps_c1 cps_c50 cps_curl_c50 latency bulk_down bulk_up idle)
[[ -n ${ONLY:-} ]] && read -r -a SCENARIOS <<<"$ONLY"
for sc in "${SCENARIOS[@]}"; do
    for ((rep = 1; rep <= REPS; rep++)); do
        for p in $PROXIES; do
            case $sc in
            cps_c1)       run_load "$sc" "$p" "$rep" --hello "$HELLO_CHROME" --mode cps --concurrency 1 --duration "$D_CPS" --size 1024 ;;
            cps_c50)      run_load "$sc" "$p" "$rep" --hello "$HELLO_CHROME" --mode cps --concurrency 50 --duration "$D_CPS" --size 1024 ;;
            cps_c500)     run_load "$sc" "$p" "$rep" --hello "$HELLO_CHROME" --mode cps --concurrency 500 --duration "$D_CPS" --size 1024 ;;
            cps_curl_c50) run_load "$sc" "$p" "$rep" --hello "$HELLO_CURL" --mode cps --concurrency 50 --duration "$D_CPS" --size 1024 ;;
            latency)      run_load "$sc" "$p" "$rep" --hello "$HELLO_CHROME" --mode rate --rate "$RATE" --duration "$D_LAT" --size 1024 ;;
            bulk_down)    run_load "$sc" "$p" "$rep" --hello "$HELLO_CHROME" --mode bulk-down --concurrency 2 --size "$BULK" --timeout 30 ;;
            bulk_up)      run_load "$sc" "$p" "$rep" --hello "$HELLO_CHROME" --mode bulk-up --concurrency 2 --size "$BULK" --timeout 30 ;;
            idle)         [[ $p == direct ]] || run_idle "$sc" "$p" "$rep" ;;
            esac
        done
    done
done
T_END=$(date +%s)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
for p in $PROXIES; do stop_proxy "$p"; done
kill "$BACKEND_PID" 2>/dev/null || true; wait "$BACKEND_PID" 2>/dev/null || true
BACKEND_PID=""
log "backend counters: $(cat "$TMPD/backend.out")"

# ---------------------------------------------------------------- report
versions() {
    echo "snisplice $(cat "$ROOT/VERSION" 2>/dev/null)"
    [[ " $PROXIES " == *" nginx "* ]] && nginx -v 2>&1 | head -1
    [[ " $PROXIES " == *" haproxy"* ]] && haproxy -v 2>&1 | head -1
    [[ " $PROXIES " == *" sniproxy "* ]] && sniproxy -V 2>&1 | head -1
    true
}
jq -n --arg profile "$PROFILE" --arg workers "$WORKERS" --arg reps "$REPS" \
    --arg nproc "$(nproc)" --arg kernel "$(uname -r)" --arg syscall_ns "$SYSCALL_NS" \
    --arg cpu "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
    --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg d_cps "$D_CPS" --arg d_lat "$D_LAT" \
    --arg bulk "$BULK" --arg idle_n "$IDLE_N" --arg rate "$RATE" --arg wall "$((T_END - T_START))" \
    --arg versions "$(versions)" --arg proxies "$PROXIES" \
    --arg load_start "$LOAD_START" --arg load_end "$LOAD_END" --arg others "$OTHERS" --arg busy "$BUSY_BEFORE" \
    --slurpfile runs "$RUNS" \
    '{machine:{nproc:$nproc,kernel:$kernel,cpu:$cpu,date:$date,syscall_ns:($syscall_ns|tonumber)},
      load:{loadavg_start:$load_start,loadavg_end:$load_end,busy_processes_at_start:$others,cpu_busy_pct_before:($busy|tonumber)},
      settings:{profile:$profile,workers:($workers|tonumber),reps:($reps|tonumber),cps_duration_s:$d_cps,
                latency_duration_s:$d_lat,latency_rate:($rate|tonumber),bulk_size:$bulk,
                idle_connections:($idle_n|tonumber),wall_s:($wall|tonumber),
                pinning:(if $workers=="1" then "proxy on CPU 0, loadgen+backend on CPU 1" else "none" end),
                proxies:($proxies|split(" "))},
      versions:($versions|split("\n")), runs:$runs}' > "$RESDIR/latest.json"
python3 "$BENCH/report.py" "$RESDIR/latest.json" "$RESDIR"
# A full run into bench/results is what the README quotes.
if [[ $PROFILE == full && $RESDIR == "$BENCH/results" && -z ${ONLY:-} && -z ${CANDIDATE:-} ]]; then
    python3 "$BENCH/readme_summary.py" "$RESDIR/latest.md"
fi
log "results: $RESDIR/latest.md ($NFAIL failed runs, $((T_END - T_START)) s)"
if ((NFAIL > 0)); then
    [[ $PROFILE == smoke ]] && { cat "$TMPD"/*.log >&2 2>/dev/null || true; exit 1; }
    log "WARNING: $NFAIL runs FAILED (see table)"
fi
exit 0
