#!/bin/bash
#
# check-kernel.sh - run snisplice on another kernel, in a qemu VM.
#
#   scripts/check-kernel.sh [KERNEL_PACKAGE] [INTEGRATION_FILTER]
#   e.g. scripts/check-kernel.sh linux-image-6.1.0-47-amd64 '*/*'
#
# Downloads the Debian kernel package (apt-get download), builds a small
# initramfs (busybox-static and the package's own virtio and 9p modules),
# boots it in qemu (TCG when there is no /dev/kvm: slow, minutes) with this
# machine's / shared read-only over 9p, and chroots into it to run, against
# the build in this checkout:
#   - the release binary routing real TLS clients (curl, openssl s_client)
#     to an openssl s_server backend;
#   - 200 idle relayed connections: the thread count must not grow and no
#     io_uring io-wq thread (iou-wrk) may appear;
#   - the integration suite (build/asan/integration_tests driving the
#     release binary, one test per run), the tests whose suite/name match
#     the bash glob INTEGRATION_FILTER (extglob: '@(limits|wakeups)/*';
#     default '*/*', about 25 s a test under TCG; '' skips them).
# Prints a summary and exits non-zero if any check failed. Results and
# logs stay in $CHECK_KERNEL_WORK (default /tmp/snisplice-kernel/PACKAGE).
#
# Needs root (apt-get, and qemu's 9p export of /). Not part of `make test`:
# far too slow. The "-cloud-amd64" Debian kernels have no 9p: use the plain
# "-amd64" one of the same version (the same source and io_uring).
#
# Owns: its work directory and the qemu process it starts. Never: writes to
# the checkout or anything outside the work directory (the VM sees / read-only).
set -euo pipefail

MODULES_IN_ORDER="virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p"
SMOKE_PORT=13100
BACKEND_PORT=13101
IDLE_PROXY_PORT=13102
IDLE_BACKEND_PORT=13103
IDLE_CONNECTIONS=200

check_kernel_repo() { cd "$(dirname "$0")/.." && pwd; }

# ---------------------------------------------------------------- host side

host_prepare_tools() {
    local missing=""
    command -v qemu-system-x86_64 >/dev/null || missing="$missing qemu-system-x86"
    [ -x /bin/busybox ] || missing="$missing busybox-static"
    if [ -n "$missing" ]; then
        apt-get install -y $missing >/dev/null
    fi
    file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || {
        echo "check-kernel: /bin/busybox is not static (apt-get install busybox-static)" >&2
        exit 2
    }
}

host_fetch_kernel() {
    local package=$1 work=$2
    if [ ! -d "$work/kernel/boot" ]; then
        mkdir -p "$work/download"
        (cd "$work/download" && apt-get download "$package" 2>&1 | grep -v unsandboxed || true)
        local deb
        deb=$(ls "$work/download/${package}"_*.deb 2>/dev/null | head -n 1)
        [ -n "$deb" ] || { echo "check-kernel: apt-get download $package failed" >&2; exit 2; }
        rm -rf "$work/kernel.tmp"
        dpkg-deb -x "$deb" "$work/kernel.tmp"
        mv "$work/kernel.tmp" "$work/kernel"
    fi
    grep -q '^CONFIG_9P_FS=[ym]' "$work"/kernel/boot/config-* || {
        echo "check-kernel: $package has no 9p file system (a -cloud kernel?): use the plain -amd64 one" >&2
        exit 2
    }
}

host_build_initramfs() {
    local work=$1 root="$1/initramfs"
    rm -rf "$root" && mkdir -p "$root"/{bin,dev,proc,sys,host,modules}
    cp /bin/busybox "$root/bin/busybox"
    local module path
    for module in $MODULES_IN_ORDER; do
        path=$(find "$work"/kernel/lib/modules -name "$module.ko*" | head -n 1)
        [ -n "$path" ] || continue # built in
        case "$path" in
            *.ko.xz) xz -dc "$path" >"$root/modules/$module.ko" ;;
            *.ko.zst) zstd -qdc "$path" >"$root/modules/$module.ko" ;;
            *) cp "$path" "$root/modules/$module.ko" ;;
        esac
    done
    cat >"$root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in $MODULES_IN_ORDER; do
    [ -f /modules/\$module.ko ] && insmod /modules/\$module.ko
done
options=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o \$options,ro hostroot /host || { echo "check-kernel: cannot mount the host's /"; poweroff -f; }
mount -t tmpfs tmp /host/tmp
mount -t tmpfs run /host/run
mkdir /host/tmp/results
mount -t 9p -o \$options results /host/tmp/results
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts
mount -t tmpfs shm /host/dev/shm
chroot /host /bin/bash /tmp/results/check-kernel.sh --guest /tmp/results
sync
poweroff -f
EOF
    chmod +x "$root/init"
    (cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initramfs.gz"
}

host_boot() {
    local work=$1 accel=tcg
    [ -w /dev/kvm ] && accel=kvm
    local cpu=max
    echo "check-kernel: booting $(ls "$work"/kernel/boot/vmlinuz-*) ($accel); console in $work/console.log"
    timeout "${CHECK_KERNEL_TIMEOUT:-5400}" nice -n 10 qemu-system-x86_64 \
        -machine pc,accel=$accel -cpu $cpu -smp 2 -m 2G -nographic -no-reboot \
        -kernel "$(ls "$work"/kernel/boot/vmlinuz-* | head -n 1)" -initrd "$work/initramfs.gz" \
        -append "console=ttyS0 panic=-1 quiet" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
        -virtfs local,path="$work/results",mount_tag=results,security_model=none \
        -net none </dev/null >"$work/console.log" 2>&1 || true
}

host_main() {
    local package=${1:-linux-image-6.1.0-47-amd64}
    local filter=${2-'*/*'}
    [ "$(id -u)" = 0 ] || { echo "check-kernel: run as root" >&2; exit 2; }
    local repo work
    repo=$(check_kernel_repo)
    for binary in build/snisplice build/asan/integration_tests build/signal_at_open.so build/no_ipv6.so build/fail_call.so; do
        [ -e "$repo/$binary" ] || { echo "check-kernel: $binary missing: run make $binary first" >&2; exit 2; }
    done
    work=${CHECK_KERNEL_WORK:-/tmp/snisplice-kernel/$package}
    mkdir -p "$work"
    host_prepare_tools
    host_fetch_kernel "$package" "$work"
    host_build_initramfs "$work"
    rm -rf "$work/results" && mkdir -p "$work/results"
    printf '%s\n' "$filter" >"$work/results/filter"
    printf '%s\n' "$repo" >"$work/results/repo"
    # The VM runs a copy: bash reads a script as it goes, and an edit of the
    # checkout during the run would change it mid-way.
    cp "$0" "$work/results/check-kernel.sh"
    host_boot "$work"
    if [ ! -f "$work/results/summary" ]; then
        echo "check-kernel: the VM left no summary; last console lines:" >&2
        tail -n 30 "$work/console.log" >&2
        exit 1
    fi
    cat "$work/results/summary"
    if [ ! -f "$work/results/complete" ]; then
        echo "FAIL the VM stopped before every check ran (timeout? see $work/console.log)"
        exit 1
    fi
    grep -q '^FAIL' "$work/results/summary" && exit 1
    exit 0
}

# ---------------------------------------------------------------- guest side

guest_record() { # guest_record RESULTS PASS|FAIL|INFO TEXT
    printf '%-4s %s\n' "$2" "$3" | tee -a "$1/summary"
}

guest_wait_for_port() {
    local port=$1 tries=0
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        tries=$((tries + 1))
        [ $tries -lt 600 ] || return 1
        sleep 0.1
    done
}

guest_write_config() { # guest_write_config FILE LISTEN_PORT ROUTES...
    local file=$1 port=$2
    shift 2
    {
        printf '[global]\nworkers = auto\n\n[listen]\naddress = 127.0.0.1:%s\n\n[routes]\n' "$port"
        printf '%s\n' "$@"
    } >"$file"
}

guest_smoke() {
    local results=$1 repo=$2 scratch=/tmp/smoke
    mkdir -p $scratch
    openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=kernel-check -keyout $scratch/k.pem \
        -out $scratch/c.pem -days 1 2>/dev/null
    (cd $scratch && exec openssl s_server -accept 127.0.0.1:$BACKEND_PORT -cert c.pem -key k.pem -WWW -quiet) \
        >$scratch/s_server.log 2>&1 &
    local backend=$!
    guest_write_config $scratch/snisplice.ini $SMOKE_PORT "kernel.check = 127.0.0.1:$BACKEND_PORT"
    "$repo/build/snisplice" -v -c $scratch/snisplice.ini >"$results/smoke-snisplice.log" 2>&1 &
    local proxy=$!
    if ! guest_wait_for_port $SMOKE_PORT || ! guest_wait_for_port $BACKEND_PORT; then
        guest_record "$results" FAIL "smoke: snisplice or the backend did not start"
    else
        if curl -sk --max-time 60 --connect-to kernel.check:443:127.0.0.1:$SMOKE_PORT \
            https://kernel.check/c.pem -o $scratch/fetched.pem && cmp -s $scratch/c.pem $scratch/fetched.pem; then
            guest_record "$results" PASS "smoke: curl fetched the backend's file through snisplice"
        else
            guest_record "$results" FAIL "smoke: curl through snisplice"
        fi
        if openssl s_client -connect 127.0.0.1:$SMOKE_PORT -servername kernel.check </dev/null 2>/dev/null |
            grep -q 'subject=CN *= *kernel-check'; then
            guest_record "$results" PASS "smoke: openssl s_client saw the backend's certificate"
        else
            guest_record "$results" FAIL "smoke: openssl s_client through snisplice"
        fi
    fi
    kill -TERM $proxy 2>/dev/null || true
    wait $proxy && guest_record "$results" PASS "smoke: SIGTERM exits 0" ||
        guest_record "$results" FAIL "smoke: snisplice exited $?"
    kill $backend 2>/dev/null || true
    wait $backend 2>/dev/null || true
    grep -E 'warn|error|io_uring on this kernel' "$results/smoke-snisplice.log" | sed 's/^/INFO smoke log: /' >>"$results/summary" || true
}

# What the fallbacks cost in system calls: setsockopt(2) calls per
# connection (io_uring sets them where the kernel can, Linux 6.7+).
guest_setsockopt_count() {
    local results=$1 repo=$2 scratch=/tmp/smoke connections=20
    command -v strace >/dev/null || { guest_record "$results" INFO "no strace: setsockopt not counted"; return 0; }
    (cd $scratch && exec openssl s_server -accept 127.0.0.1:$BACKEND_PORT -cert c.pem -key k.pem -WWW -quiet) \
        >/dev/null 2>&1 &
    local backend=$!
    strace -f -qq -e trace=setsockopt -o $scratch/strace.log "$repo/build/snisplice" -c $scratch/snisplice.ini \
        >/dev/null 2>&1 &
    local tracer=$!
    guest_wait_for_port $SMOKE_PORT
    guest_wait_for_port $BACKEND_PORT
    sleep 1
    local before after _
    before=$(grep -c 'setsockopt(' $scratch/strace.log)
    for _ in $(seq $connections); do
        curl -sk --max-time 60 --connect-to kernel.check:443:127.0.0.1:$SMOKE_PORT \
            https://kernel.check/c.pem -o /dev/null
    done
    sleep 1
    after=$(grep -c 'setsockopt(' $scratch/strace.log)
    guest_record "$results" INFO "setsockopt(2) calls per connection: $(((after - before) / connections))"
    # strace itself would detach on SIGTERM and leave the proxy running.
    kill -TERM "$(pgrep -P $tracer)" $backend 2>/dev/null || true
    wait $tracer $backend 2>/dev/null || true
}

# 200 relayed connections that then sit idle: the count of the proxy's
# threads, and of io_uring's io-wq threads (iou-wrk) among them.
guest_idle_threads() {
    local results=$1 repo=$2 scratch=/tmp/idle
    mkdir -p $scratch
    guest_write_config $scratch/snisplice.ini $IDLE_PROXY_PORT "default = 127.0.0.1:$IDLE_BACKEND_PORT"
    "$repo/build/snisplice" -c $scratch/snisplice.ini >"$results/idle-snisplice.log" 2>&1 &
    local proxy=$!
    guest_wait_for_port $IDLE_PROXY_PORT || true
    local verdict
    verdict=$(python3 - "$proxy" $IDLE_PROXY_PORT $IDLE_BACKEND_PORT $IDLE_CONNECTIONS <<'EOF'
import os, socket, ssl, sys, threading, time
pid, proxy_port, backend_port, count = (int(a) for a in sys.argv[1:])

def threads():
    names = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/comm") as f:
            names.append(f.read().strip())
    return len(names), sum(n.startswith("iou-wrk") for n in names)

# The backend accepts and holds: every connection reaches it, then idles.
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", backend_port))
server.listen(1024)
held = []
def backend():
    while True:
        conn, _ = server.accept()
        conn.recv(65536)
        held.append(conn)
threading.Thread(target=backend, daemon=True).start()

# A real ClientHello, from Python's own TLS stack.
context = ssl.create_default_context()
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = context.wrap_bio(incoming, outgoing, server_hostname="idle.check")
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = outgoing.read()

before = threads()
clients = []
for _ in range(count):
    client = socket.create_connection(("127.0.0.1", proxy_port), timeout=60)
    client.sendall(hello)
    clients.append(client)
deadline = time.time() + 120
while len(held) < count and time.time() < deadline:
    time.sleep(0.2)
time.sleep(2)
idle = threads()
print(f"{len(held)}/{count} relayed; threads {before[0]} -> {idle[0]}; iou-wrk {before[1]} -> {idle[1]}")
ok = len(held) == count and idle[0] == before[0] and idle[1] == 0
sys.exit(0 if ok else 1)
EOF
    ) && guest_record "$results" PASS "idle: $verdict" || guest_record "$results" FAIL "idle: ${verdict:-python failed}"
    kill -INT $proxy 2>/dev/null || true
    kill -INT $proxy 2>/dev/null || true
    wait $proxy 2>/dev/null || true
}

# One criterion run per test: under TCG the runner itself has died
# ("Could not spawn test instance: Protocol error") and taken the tests
# after it along; one run each keeps every verdict.
guest_integration() {
    local results=$1 repo=$2 filter=$3
    [ -n "$filter" ] || return 0
    cd "$repo" || return 1
    shopt -s extglob # a filter such as '@(limits|wakeups)/*'
    local tests suite="" line name passed=0 failed=0 failed_names=""
    tests=$(./build/asan/integration_tests --list 2>&1 | while IFS= read -r line; do
        case "$line" in
            *": "*" test"*) suite=${line%%:*} ;;
            ?*" "?*) echo "$suite/${line##* }" ;; # "├── name", or "|-- name" without UTF-8
        esac
    done)
    : >"$results/integration.log"
    for name in $tests; do
        # shellcheck disable=SC2254 # the filter is a glob on purpose
        case "$name" in $filter) ;; *) continue ;; esac
        if SNISPLICE_BIN="$repo/build/snisplice" LSAN_OPTIONS=suppressions=$repo/tests/lsan.supp timeout 900 \
            ./build/asan/integration_tests --jobs 1 --filter "$name" >>"$results/integration.log" 2>&1; then
            passed=$((passed + 1))
            echo "PASS $name" >>"$results/tests"
        else
            failed=$((failed + 1))
            failed_names="$failed_names $name"
            echo "FAIL $name" >>"$results/tests"
            guest_record "$results" INFO "integration: $name failed (integration.log)"
        fi
    done
    if [ $((passed + failed)) = 0 ]; then
        guest_record "$results" FAIL "integration ($filter): no test ran (integration.log)"
    elif [ $failed = 0 ]; then
        guest_record "$results" PASS "integration ($filter): $passed passed"
    else
        guest_record "$results" FAIL "integration ($filter): $passed passed, $failed failed:$failed_names"
    fi
}

guest_main() {
    set +e # every check runs and records its own verdict
    local results=$1 repo filter
    repo=$(cat "$results/repo")
    filter=$(cat "$results/filter")
    : >"$results/summary"
    ulimit -n 20000
    ip link set lo up
    guest_record "$results" INFO "kernel $(uname -r), $(nproc) CPUs"
    guest_smoke "$results" "$repo"
    guest_setsockopt_count "$results" "$repo"
    guest_idle_threads "$results" "$repo"
    guest_integration "$results" "$repo" "$filter"
    : >"$results/complete"
    sync
}

if [ "${1:-}" = --guest ]; then
    guest_main "$2"
else
    host_main "$@"
fi
