# Shell code shared by bench/run and bench/smtp-ingest.sh. Source it after
# setting -euo pipefail; it defines functions and a few variables, runs nothing.
#
#   BENCH_DIR, ROOT        the bench/ folder and the repository root
#   log, die               messages on stderr with the time
#   is_uint, need_value    argument checks
#   common_option ARGS...  the options every script takes (see below)
#   make_work              the scratch directory WORK, removed by cleanup_work
#   build_release PKG...   cargo build --release, unless BUILD=0
#   target_binary NAME     the path of a release binary, checked
#   machine_json           the machine and its load, as one JSON object
#   result_paths NAME      sets STAMP, RESULT_JSON, RESULT_MD under RESULTS_DIR
#   port_open, free_port, wait_port, now

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"

WORK=${WORK:-}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
KEEP=${KEEP:-0}
BUILD=${BUILD:-1}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# need_value OPTION ARGC: an option that takes a value must have one.
need_value() {
    [[ $2 -ge 2 ]] || { echo "$1 needs a value (see --help)" >&2; exit 2; }
}

# common_option "$@": the options every bench script takes. Sets SHIFT to the
# number of arguments used and returns 0, or returns 1 for an option it does
# not know. The caller's `usage` function answers --help.
#   --work DIR  --results-dir DIR  --keep  --no-build  -h | --help
common_option() {
    SHIFT=1
    case "$1" in
    --work) need_value "$1" $#; WORK=$2; SHIFT=2 ;;
    --results-dir) need_value "$1" $#; RESULTS_DIR=$2; SHIFT=2 ;;
    --keep) KEEP=1 ;;
    --no-build) BUILD=0 ;;
    -h | --help) usage; exit 0 ;;
    *) return 1 ;;
    esac
}

# make_work: WORK, created (a new mktemp -d under $TMPDIR or /tmp) if not given.
# WORK_CREATED=1 when this run made it, so that cleanup_work may remove it.
make_work() {
    WORK_CREATED=0
    if [[ -z $WORK ]]; then
        WORK=$(mktemp -d "${TMPDIR:-/tmp}/postcell-bench.XXXXXX")
        WORK_CREATED=1
    elif [[ ! -e $WORK ]]; then
        mkdir -p "$WORK"
        WORK_CREATED=1
    fi
    WORK=$(cd "$WORK" && pwd)
    # Peer daemons (Postfix, Dovecot) and their delivery user must reach it.
    chmod 755 "$WORK"
    FS_TYPE=$(df -PT "$WORK" | awk 'NR == 2 { print $2 }')
    if [[ $FS_TYPE == tmpfs ]]; then
        log "warning: $WORK is on tmpfs, where fsync costs nothing; set TMPDIR or --work to a disk"
    fi
}

# cleanup_work: removes WORK unless KEEP=1 or it existed before the run.
cleanup_work() {
    [[ -n ${WORK:-} ]] || return 0
    if [[ $KEEP == 1 ]]; then
        log "kept $WORK"
    elif [[ ${WORK_CREATED:-0} == 1 ]]; then
        rm -rf "$WORK"
    else
        log "left $WORK in place (it existed before this run)"
    fi
}

# build_release PKG...: cargo build --release -p PKG..., unless BUILD=0.
build_release() {
    [[ $BUILD == 1 ]] || return 0
    local args=() p
    for p in "$@"; do args+=(-p "$p"); done
    log "building $* (release)"
    (cd "$ROOT" && cargo build --release "${args[@]}") >&2
}

# target_binary NAME: prints target/release/NAME, or dies if it is not built.
target_binary() {
    local path=${CARGO_TARGET_DIR:-$ROOT/target}/release/$1
    [[ -x $path ]] || die "$path not found (build with: cargo build --release)"
    echo "$path"
}

# machine_json: CPU, cores, memory, kernel, load average and date, from /proc.
machine_json() {
    local cpu cores mem kernel load
    cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
    cores=$(nproc 2>/dev/null || echo 0)
    mem=$(awk '/^MemTotal:/ { print $2 * 1024; exit }' /proc/meminfo 2>/dev/null || echo 0)
    kernel=$(uname -r)
    load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || true)
    jq -n --arg cpu "${cpu:-unknown}" --argjson cores "${cores:-0}" --argjson mem "${mem:-0}" \
        --arg kernel "$kernel" --arg load "$load" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        '{cpu_model: $cpu, cores: $cores, memory_total_bytes: $mem, kernel: $kernel,
          load_average: $load, date: $date}'
}

# load_average: the 1, 5 and 15 minute load averages.
load_average() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown; }

# result_paths NAME: STAMP (UTC), RESULT_JSON and RESULT_MD in RESULTS_DIR.
result_paths() {
    STAMP=$(date -u +%Y%m%dT%H%M%SZ)
    mkdir -p "$RESULTS_DIR"
    RESULT_JSON=$RESULTS_DIR/$1-$STAMP.json
    RESULT_MD=$RESULTS_DIR/$1-$STAMP.md
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$(shuf -i 20000-59999 -n 1)
        if ! port_open "$p" && { ! command -v ss >/dev/null || [[ -z $(ss -Hltn "sport = :$p") ]]; }; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# wait_port PORT SECONDS [PID]: until something listens, bounded; fails early
# if PID exits.
wait_port() {
    local port=$1 secs=$2 pid=${3:-} i
    for ((i = 0; i < secs * 10; i++)); do
        port_open "$port" && return 0
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

now() { date +%s.%N; }
