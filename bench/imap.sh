#!/usr/bin/env bash
# IMAP and POP3 benchmark: the same workloads on the same messages against
# Postcell and against a private Dovecot instance, in one run, on this machine (127.0.0.1
# only): SELECT + FETCH FLAGS of a large mailbox, an IMAP and a POP3 mix, IDLE
# memory, body SEARCH of the large mailbox, and an mbsync download of a 200 MB one.
#
#   bench/imap.sh [options]
#
# Options (each also settable through the environment variable shown):
#   --big-messages N        BIG_MESSAGES      messages in the large mailbox  (100000)
#   --users N               USERS             accounts for the mix and IDLE  (50)
#   --user-messages N       USER_MESSAGES     messages in each of them       (1000)
#   --size S                SIZE              message size: 4k, 64k, bytes   (4k)
#   --repeat N              REPEAT            measured select-fetch-flags
#                                             repetitions, and search-body
#                                             searches per word after the
#                                             first                          (10)
#   --warmup N              WARMUP            unmeasured ones before them    (1)
#   --idle-connections K    IDLE_CONNECTIONS  connections held in IDLE       (1000)
#   --clients C             CLIENTS           concurrent imap-mix clients    (50)
#   --sessions N            SESSIONS          imap-mix sessions in all       (2000)
#   --pop3-sessions N       POP3_SESSIONS     pop3-mix sessions in all       (2000)
#   --mix-rate R            MIX_RATE          then imap-mix and pop3-mix once
#                                             more, open loop: R sessions/s
#                                             offered to both servers, so that
#                                             their per-command latencies are
#                                             compared at the same load; 0: no
#                                             such run                       (10)
#   --mix-rate-sessions N   MIX_RATE_SESSIONS sessions of that run           (300)
#   --large-total S         LARGE_TOTAL       mbsync-download's mailbox: its
#                                             bytes, e.g. 200m, 20m          (200m)
#   --large-size S          LARGE_SIZE        its message size               (64k)
#   --mbsync-runs N         MBSYNC_RUNS       mbsync downloads per server    (1)
#   --workloads "A B"       WORKLOADS         which workloads, in this order
#                                             ("select-fetch-flags imap-mix
#                                             pop3-mix idle-memory search-body
#                                             mbsync-download")
#   --servers "A B"         SERVERS           which servers: postcell dovecot
#                                             ("postcell dovecot")
#   --seed-connections C    SEED_CONNECTIONS  SMTP connections loading Postcell (20)
#   --max-seconds S         MAX_SECONDS       hard bound per workload run, and on
#                                             the wait for Postcell's search
#                                             index before search-body       (900)
#   --work DIR              WORK              scratch directory (default: a new
#                                             mktemp -d under $TMPDIR or /tmp)
#   --results-dir DIR       RESULTS_DIR       where the JSON/Markdown go (bench/results)
#   --no-hibernate          DOVECOT_HIBERNATE=0  no second idle-memory run on
#                                             Dovecot with IDLE hibernation
#   --keep                  KEEP=1            keep WORK (logs, configs, maildirs)
#   --no-index-wait         INDEX_WAIT=0      start Postcell's workloads without
#                                             waiting for its search index to
#                                             catch up with the seeded mail
#   --no-build              BUILD=0           use the binaries already built
#                           PROFILE           cargo profile: release, or debug
#                                             to try the script quickly     (release)
#   -h, --help
#
# Writes RESULTS_DIR/imap-DATE.json and .md and prints the Markdown table. See
# bench/README.md for what each figure means.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

BIG_MESSAGES=${BIG_MESSAGES:-100000}
USERS=${USERS:-50}
USER_MESSAGES=${USER_MESSAGES:-1000}
SIZE=${SIZE:-4k}
REPEAT=${REPEAT:-10}
WARMUP=${WARMUP:-1}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-1000}
CLIENTS=${CLIENTS:-50}
SESSIONS=${SESSIONS:-2000}
POP3_SESSIONS=${POP3_SESSIONS:-2000}
MIX_RATE=${MIX_RATE:-10}
INDEX_WAIT=${INDEX_WAIT:-1}
MIX_RATE_SESSIONS=${MIX_RATE_SESSIONS:-300}
LARGE_TOTAL=${LARGE_TOTAL:-200m}
LARGE_SIZE=${LARGE_SIZE:-64k}
MBSYNC_RUNS=${MBSYNC_RUNS:-1}
WORKLOADS=${WORKLOADS:-"select-fetch-flags imap-mix pop3-mix idle-memory search-body mbsync-download"}
SERVERS=${SERVERS:-"postcell dovecot"}
SEED_CONNECTIONS=${SEED_CONNECTIONS:-20}
MAX_SECONDS=${MAX_SECONDS:-900}
WORK=${WORK:-}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
KEEP=${KEEP:-0}
BUILD=${BUILD:-1}
DOVECOT_HIBERNATE=${DOVECOT_HIBERNATE:-1}
PROFILE=${PROFILE:-release}

DOMAIN=bench.test
BIG_USER=big@$DOMAIN
LARGE_USER=large@$DOMAIN
BENCH_USER=postcellbench
PASSWORD=secret
# The same choice of messages for both servers.
MIX_SEED=20261122

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
    --big-messages) BIG_MESSAGES=$2; shift 2 ;;
    --users) USERS=$2; shift 2 ;;
    --user-messages) USER_MESSAGES=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --idle-connections) IDLE_CONNECTIONS=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --sessions) SESSIONS=$2; shift 2 ;;
    --pop3-sessions) POP3_SESSIONS=$2; shift 2 ;;
    --mix-rate) MIX_RATE=$2; shift 2 ;;
    --mix-rate-sessions) MIX_RATE_SESSIONS=$2; shift 2 ;;
    --large-total) LARGE_TOTAL=$2; shift 2 ;;
    --large-size) LARGE_SIZE=$2; shift 2 ;;
    --mbsync-runs) MBSYNC_RUNS=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --servers | --only) SERVERS=$2; shift 2 ;;
    --seed-connections) SEED_CONNECTIONS=$2; shift 2 ;;
    --max-seconds) MAX_SECONDS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --results-dir) RESULTS_DIR=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --no-index-wait) INDEX_WAIT=0; shift ;;
    --no-hibernate) DOVECOT_HIBERNATE=0; shift ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

WORKLOADS=${WORKLOADS//,/ }
SERVERS=${SERVERS//,/ }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in BIG_MESSAGES USERS USER_MESSAGES REPEAT WARMUP IDLE_CONNECTIONS CLIENTS SESSIONS POP3_SESSIONS MIX_RATE MIX_RATE_SESSIONS MBSYNC_RUNS SEED_CONNECTIONS MAX_SECONDS; do
    is_uint "${!v}" || { echo "$v must be a whole number, not '${!v}'" >&2; exit 2; }
done
for v in BIG_MESSAGES USERS USER_MESSAGES REPEAT IDLE_CONNECTIONS CLIENTS SESSIONS POP3_SESSIONS MIX_RATE_SESSIONS MBSYNC_RUNS SEED_CONNECTIONS MAX_SECONDS; do
    [[ ${!v} -ge 1 ]] || { echo "$v must be at least 1" >&2; exit 2; }
done
# to_bytes S: 64k, 200m, 1g, 4KiB or a byte count, in bytes.
to_bytes() {
    local s=${1,,} mult=1 n
    s=${s%ib}
    s=${s%b}
    case $s in
    *k) mult=1024 n=${s%k} ;;
    *m) mult=$((1024 * 1024)) n=${s%m} ;;
    *g) mult=$((1024 * 1024 * 1024)) n=${s%g} ;;
    *) n=$s ;;
    esac
    is_uint "$n" && [[ ${#n} -le 12 ]] || return 1
    echo $((n * mult))
}
LARGE_TOTAL_BYTES=$(to_bytes "$LARGE_TOTAL") || { echo "LARGE_TOTAL must be a size such as 200m, not '$LARGE_TOTAL'" >&2; exit 2; }
LARGE_SIZE_BYTES=$(to_bytes "$LARGE_SIZE") || { echo "LARGE_SIZE must be a size such as 64k, not '$LARGE_SIZE'" >&2; exit 2; }
[[ $LARGE_SIZE_BYTES -ge 1024 && $LARGE_SIZE_BYTES -le $((64 * 1024 * 1024)) ]] \
    || { echo "LARGE_SIZE must be between 1k and 64m" >&2; exit 2; }
# The large mailbox: as many whole messages as fit in LARGE_TOTAL (at least one).
LARGE_MESSAGES=$((LARGE_TOTAL_BYTES / LARGE_SIZE_BYTES))
[[ $LARGE_MESSAGES -ge 1 ]] || LARGE_MESSAGES=1
[[ $LARGE_MESSAGES -le 10000000 ]] || { echo "LARGE_TOTAL / LARGE_SIZE: at most 10000000 messages" >&2; exit 2; }
[[ $USER_MESSAGES -ge 20 ]] || { echo "USER_MESSAGES must be at least 20 (the mix fetches 20 envelopes)" >&2; exit 2; }
for w in $WORKLOADS; do
    case $w in
    select-fetch-flags | imap-mix | pop3-mix | idle-memory | search-body | mbsync-download) ;;
    *) echo "unknown workload '$w'" >&2; exit 2 ;;
    esac
done
for s in $SERVERS; do
    [[ $s == postcell || $s == dovecot ]] || { echo "unknown server '$s'" >&2; exit 2; }
done
has_server() { [[ " $SERVERS " == *" $1 "* ]]; }
has_workload() { [[ " $WORKLOADS " == *" $1 "* ]]; }
case $PROFILE in
release) CARGO_PROFILE=release PROFILE_DIR=release ;;
debug | dev) CARGO_PROFILE=dev PROFILE_DIR=debug ;;
*) echo "PROFILE must be release or debug, not '$PROFILE'" >&2; exit 2 ;;
esac

export PATH="$PATH:/usr/sbin:/sbin"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v jq >/dev/null || die "jq is needed (apt-get install -y jq)"
if has_server dovecot; then
    [[ $EUID -eq 0 ]] || die "the Dovecot half needs root (a private instance, a mail user)"
fi

# Every held connection is a descriptor in the generator and in the server.
NOFILE=$((IDLE_CONNECTIONS * 2 + 4096))
if [[ $(ulimit -Sn) -lt $NOFILE ]]; then
    ulimit -Hn "$NOFILE" 2>/dev/null || true
    ulimit -Sn "$NOFILE" 2>/dev/null || log "warning: cannot raise the open-file limit to $NOFILE (it is $(ulimit -Sn))"
fi

# ---------------------------------------------------------------- scratch
WORK_CREATED=0
if [[ -z $WORK ]]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/postcell-bench-imap.XXXXXX")
    WORK_CREATED=1
elif [[ ! -e $WORK ]]; then
    mkdir -p "$WORK"
    WORK_CREATED=1
fi
WORK=$(cd "$WORK" && pwd)
# Dovecot's login and mail processes must be able to reach their dirs.
chmod 755 "$WORK"
MAILDIRS=$WORK/maildirs

POSTCELL_PID=
DOVECOT_PID=
INSTALLED_DOVECOT=0
INOTIFY_LIMIT=/proc/sys/fs/inotify/max_user_instances
INOTIFY_BEFORE=

# stop_pid PID NAME: SIGTERM, wait up to 30 s, then SIGKILL.
stop_pid() {
    local pid=$1 name=$2 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    log "$name ($pid) did not stop within 30 s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
}

stop_postcell() {
    [[ -n $POSTCELL_PID ]] || return 0
    stop_pid "$POSTCELL_PID" postcell
    wait "$POSTCELL_PID" 2>/dev/null || true
    POSTCELL_PID=
}

stop_dovecot() {
    [[ -n $DOVECOT_PID ]] || return 0
    # The master stops its children (imap, imap-login, auth ...) itself.
    stop_pid "$DOVECOT_PID" "dovecot master"
    DOVECOT_PID=
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_postcell
    stop_dovecot
    if [[ -n $INOTIFY_BEFORE ]]; then
        echo "$INOTIFY_BEFORE" >"$INOTIFY_LIMIT" 2>/dev/null || true
    fi
    if [[ $KEEP == 1 ]]; then
        log "kept $WORK"
    elif [[ $WORK_CREATED == 1 ]]; then
        rm -rf "$WORK"
    else
        log "left $WORK in place (it existed before this run)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

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

# wait_port PORT SECONDS [PID]: until something listens, bounded.
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

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

users_file=$WORK/users.txt
: >"$users_file"
for ((i = 1; i <= USERS; i++)); do echo "user$i@$DOMAIN" >>"$users_file"; done
# The big mailbox always carries the search words (1 in 100 messages each), so
# that it is the same whichever workloads run.
mailbox_args=(--mailbox "$BIG_USER=$BIG_MESSAGES" --search-words "$BIG_USER")
for ((i = 1; i <= USERS; i++)); do mailbox_args+=(--mailbox "user$i@$DOMAIN=$USER_MESSAGES"); done
accounts=("$BIG_USER")
if has_workload mbsync-download; then
    mailbox_args+=(--mailbox "$LARGE_USER=$LARGE_MESSAGES:$LARGE_SIZE_BYTES")
    accounts+=("$LARGE_USER")
fi
mapfile -t -O "${#accounts[@]}" accounts <"$users_file"

fs_type=$(df -PT "$WORK" | awk 'NR == 2 { print $2 }')
if [[ $fs_type == tmpfs ]]; then
    log "warning: $WORK is on tmpfs, where fsync costs nothing; set TMPDIR or --work to a disk"
fi

# ---------------------------------------------------------------- build
if [[ $BUILD == 1 ]]; then
    pkgs=(-p postcell-bench)
    has_server postcell && pkgs+=(-p postcell)
    log "building ${pkgs[*]} ($PROFILE)"
    (cd "$ROOT" && cargo build --profile "$CARGO_PROFILE" "${pkgs[@]}") >&2
fi
[[ $PROFILE == release ]] || log "warning: $PROFILE build: the figures mean nothing"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LOAD=$TARGET_DIR/$PROFILE_DIR/imap-load
POSTCELL=$TARGET_DIR/$PROFILE_DIR/postcell
[[ -x $LOAD ]] || die "$LOAD not found (build with: cargo build --profile $PROFILE -p postcell-bench)"
if has_server postcell; then
    [[ -x $POSTCELL ]] || die "$POSTCELL not found (build with: cargo build --profile $PROFILE -p postcell)"
fi

RUNS=$WORK/runs.jsonl
: >"$RUNS"
# Set when a check fails (search hits, messages downloaded): the report is
# still written, and the script exits 1 at the end.
FAILED=0
SEED_REPORT=$WORK/seed.json
export IMAP_LOAD_PASSWORD=$PASSWORD

# seed [SMTP_PORT]: the Maildirs, and (with a port) the same files over SMTP.
seed() {
    local smtp=() rc=0
    [[ $# -gt 0 ]] && smtp=(--smtp "127.0.0.1:$1" --connections "$SEED_CONNECTIONS")
    local large=""
    has_workload mbsync-download && large=", $LARGE_MESSAGES of $LARGE_SIZE_BYTES bytes for $LARGE_USER"
    log "seeding: $BIG_MESSAGES messages for $BIG_USER, $USER_MESSAGES for each of $USERS users, $SIZE each$large${1:+; delivering them over SMTP to 127.0.0.1:$1}"
    "$LOAD" seed --maildir-root "$MAILDIRS" "${mailbox_args[@]}" --size "$SIZE" "${smtp[@]}" \
        --max-seconds 3600 --json >"$SEED_REPORT" || rc=$?
    jq -e .result "$SEED_REPORT" >/dev/null 2>&1 || die "imap-load seed gave no report (exit $rc)"
    if [[ $rc -ne 0 ]]; then
        jq -r '.error_samples[]' "$SEED_REPORT" | sed 's/^/    /' >&2
        if [[ $# -gt 0 ]] && ! jq -e '.result.smtp.delivered == .result.messages' "$SEED_REPORT" >/dev/null; then
            die "not every message was delivered to Postcell"
        fi
        log "warning: seeding had errors (retried)"
    fi
    log "seeded: $(jq -r '.result | "\(.messages) messages as Maildir files in \(.maildir_seconds * 100 | round / 100) s" + (if .smtp then "; over SMTP in \(.smtp.seconds * 100 | round / 100) s (\(.smtp.messages_per_second | round)/s)" else "" end)' "$SEED_REPORT")"
}

# run_workload SERVER VARIANT PORT PID WORKLOAD [EXTRA ARGS...]: one imap-load run.
run_workload() {
    local server=$1 variant=$2 port=$3 pid=$4 workload=$5 out rc=0
    shift 5
    out=$WORK/$server-$workload-$variant.json
    local args=(--target "127.0.0.1:$port" --server-pid "$pid" --max-seconds "$MAX_SECONDS" --io-timeout 300
        --label "$server" --json)
    case $workload in
    select-fetch-flags)
        args+=(--user "$BIG_USER" --repeat "$REPEAT" --warmup "$WARMUP" --expect-messages "$BIG_MESSAGES") ;;
    imap-mix | pop3-mix)
        local sessions=$SESSIONS
        [[ $workload == pop3-mix ]] && sessions=$POP3_SESSIONS
        # The variant fixed-rate: the same sessions offered at MIX_RATE/s.
        if [[ $variant == fixed-rate ]]; then
            sessions=$MIX_RATE_SESSIONS
            args+=(--rate "$MIX_RATE")
        fi
        args+=(--users-file "$users_file" --clients "$CLIENTS" --sessions "$sessions" --seed "$MIX_SEED") ;;
    idle-memory)
        args+=(--users-file "$users_file" --connections "$IDLE_CONNECTIONS") ;;
    search-body)
        args+=(--user "$BIG_USER" --repeat "$REPEAT" --messages "$BIG_MESSAGES" --catch-up-seconds "$MAX_SECONDS") ;;
    mbsync-download)
        local scratch=$WORK/mbsync-$server${variant:+-$variant}
        rm -rf "$scratch"
        args+=(--user "$LARGE_USER" --expect-messages "$LARGE_MESSAGES" --runs "$MBSYNC_RUNS"
            --mbsync "$MBSYNC" --work "$scratch") ;;
    esac
    log "$server: $workload${variant:+ ($variant)}; load average $(loadavg)"
    "$LOAD" "$workload" "${args[@]}" "$@" >"$out" 2>"$out.err" || rc=$?
    if ! jq -e .result "$out" >/dev/null 2>&1; then
        cat "$out.err" >&2
        die "imap-load $workload against $server gave no report (exit $rc)"
    fi
    if [[ $rc -ne 0 ]]; then
        log "warning: $server $workload: $(jq -r '.errors' "$out") errors"
        jq -r '.error_samples[]' "$out" | sed 's/^/    /' >&2
    fi
    jq -c --arg s "$server" --arg w "$workload" --arg v "$variant" --argjson rc "$rc" \
        '{server: $s, workload: $w, variant: $v, exit_status: $rc, report: .}' "$out" >>"$RUNS"
    case $workload in
    select-fetch-flags)
        log "$server: $(jq -r '.result | "SELECT p50 \(.select_ms.p50) ms, UID FETCH 1:* (FLAGS) p50 \(.fetch_ms.p50) ms"' "$out")" ;;
    imap-mix | pop3-mix)
        log "$server: $(jq -r '.result | "\(.sessions_completed) sessions, \(.sessions_per_second * 10 | round / 10) sessions/s, \(.commands_per_second | round) commands/s" + (if (.steps_left_out | length) > 0 then "; left out: \(.steps_left_out | join(", "))" else "" end)' "$out")" ;;
    idle-memory)
        log "$server: $(jq -r '.result | "IDLE \(.idle); \(.held) connections held; \((.rss_per_connection_bytes // 0) / 1024 | round) KiB RSS, \((.pss_per_connection_bytes // 0) / 1024 | round) KiB PSS per connection"' "$out")" ;;
    search-body)
        log "$server: $(jq -r 'def r: if . == null then "?" else . * 10 | round / 10 end;
            .result | (if .index_catch_up.caught_up == true then "index caught up in \(.index_catch_up_seconds | r) s; "
               elif .index_catch_up.caught_up == false then "index NOT caught up; " else "" end)
            + ([.words[] | "\(.name): \(.hits // "?") hits (\(.expected_hits) expected), cold \(.cold_ms | r) ms, p50 \(.repeat_ms.p50 | r) ms"] | join("; "))' "$out")"
        if ! jq -e '.result.hits_match' "$out" >/dev/null; then
            log "error: $server search-body: $(jq -r '[.result.words[] | select(.hits_match | not) | "\(.command) found \(.hits // "nothing") (\(.runs_failed) failed, \(.wrong_counts) wrong counts), \(.expected_hits) expected"] | join("; ")' "$out")"
            FAILED=1
        fi
        ;;
    mbsync-download)
        log "$server: $(jq -r 'def r: if . == null then "?" else . * 100 | round / 100 end;
            .result | "\(.downloads[0].messages // "?") messages, \(.mailbox_bytes // null | if . then . / 1e6 else null end | r) MB in \(.first_seconds | r) s: \(.first_megabytes_per_second | r) MB/s"' "$out")"
        if ! jq -e '.result.messages_match' "$out" >/dev/null; then
            log "error: $server mbsync-download: the downloads did not bring the $LARGE_MESSAGES messages seeded (see the errors above)"
            FAILED=1
        fi
        ;;
    esac
}

# The mbsync program, from isync (installed from Debian when missing).
MBSYNC=
find_mbsync() {
    MBSYNC=$(command -v mbsync || true)
    if [[ -z $MBSYNC ]]; then
        log "installing isync (mbsync) from Debian"
        local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
        "${apt[@]}" install -y --no-install-recommends isync >&2 \
            || { "${apt[@]}" update >&2 && "${apt[@]}" install -y --no-install-recommends isync >&2; } \
            || die "cannot install isync (mbsync)"
        MBSYNC=$(command -v mbsync) || die "mbsync is not installed"
    fi
}

# ---------------------------------------------------------------- Postcell
POSTCELL_VERSION=null
bench_postcell() {
    local dir=$WORK/postcell conf smtp_port imap_port pop3_port http_port w
    log "postcell: init in $dir"
    "$POSTCELL" init --dir "$dir" --domain "$DOMAIN" >"$WORK/postcell-init.log" 2>&1 \
        || { cat "$WORK/postcell-init.log" >&2; die "postcell init failed"; }
    conf=$dir/postcell.toml
    [[ -f $conf ]] || die "postcell init did not write $conf"
    for user in "${accounts[@]}"; do
        echo "$PASSWORD" | "$POSTCELL" --config "$conf" user add "$user" --password-stdin \
            >>"$WORK/postcell-init.log" 2>&1 \
            || { cat "$WORK/postcell-init.log" >&2; die "postcell user add $user failed"; }
    done
    smtp_port=$(free_port) || die "no free port"
    imap_port=$(free_port) || die "no free port"
    pop3_port=$(free_port) || die "no free port"
    http_port=$(free_port) || die "no free port"
    # In [listen]: smtp, imap, pop3 and http (its /metrics) on our ports, every
    # other listener commented out.
    awk -v smtp="$smtp_port" -v imap="$imap_port" -v pop3="$pop3_port" -v http="$http_port" '
        /^[[:space:]]*\[/ { in_listen = ($0 ~ /^[[:space:]]*\[listen\][[:space:]]*(#.*)?$/) }
        in_listen && /^[[:space:]]*smtp[[:space:]]*=/ {
            print "smtp = \"127.0.0.1:" smtp "\""; print "imap = \"127.0.0.1:" imap "\""
            print "pop3 = \"127.0.0.1:" pop3 "\""; print "http = \"127.0.0.1:" http "\""; seen = 1; next }
        in_listen && /^[[:space:]]*[A-Za-z0-9_-]+[[:space:]]*=/ { print "# (disabled by imap.sh) " $0; next }
        { print }
        END { if (!seen) exit 3 }
    ' "$conf" >"$conf.new" || die "no smtp = line in the [listen] table of $conf"
    mv "$conf.new" "$conf"
    cat >>"$conf" <<EOF

# bench/imap.sh: room for every IDLE connection, and the mix's clients.
[imap]
max_connections = $((IDLE_CONNECTIONS + CLIENTS + 100))
EOF
    # The mx role checks SPF, DKIM and DMARC of every seeded message. This
    # machine has no network: a static resolver answers from the records given
    # and sends nothing, so the checks run in full (SPF passes for the seed's
    # domain) without waiting on DNS timeouts (5 s each), as in smtp-ingest.sh.
    if ! grep -q '^[[:space:]]*\[dns\]' "$conf"; then
        printf '\n[dns]\nresolver = "static"\nrecords = ["load.test TXT v=spf1 ip4:127.0.0.1 -all"]\n' >>"$conf"
    fi
    log "postcell: serving SMTP on 127.0.0.1:$smtp_port, IMAP on 127.0.0.1:$imap_port"
    "$POSTCELL" --config "$conf" serve >"$WORK/postcell.log" 2>&1 &
    POSTCELL_PID=$!
    if ! wait_port "$imap_port" 30 "$POSTCELL_PID" || ! wait_port "$smtp_port" 5 "$POSTCELL_PID"; then
        tail -n 30 "$WORK/postcell.log" >&2 || true
        die "postcell did not listen on 127.0.0.1:$imap_port and :$smtp_port within 30 s"
    fi
    POSTCELL_VERSION=$("$POSTCELL" --version 2>/dev/null | head -n 1 | awk '{ print $NF }' | jq -R . || echo null)
    seed "$smtp_port"
    # Dovecot's passwd-file gets Postcell's own argon2id hashes: the same
    # password check, at the same cost, on both servers.
    sqlite3 "$dir/data/postcell.db" "SELECT name || ' ' || password_hash FROM accounts" \
        >"$WORK/postcell-hashes.txt" 2>/dev/null \
        || log "warning: cannot read the password hashes from $dir/data/postcell.db (sqlite3 missing?)"
    if [[ $INDEX_WAIT == 1 ]]; then wait_for_index "$http_port"; fi
    for w in $WORKLOADS; do
        case $w in
        pop3-mix)
            run_workload postcell "" "$pop3_port" "$POSTCELL_PID" "$w"
            if [[ $MIX_RATE -gt 0 ]]; then run_workload postcell fixed-rate "$pop3_port" "$POSTCELL_PID" "$w"; fi
            ;;
        imap-mix)
            run_workload postcell "" "$imap_port" "$POSTCELL_PID" "$w"
            if [[ $MIX_RATE -gt 0 ]]; then run_workload postcell fixed-rate "$imap_port" "$POSTCELL_PID" "$w"; fi
            ;;
        # Waits first (at most MAX_SECONDS) for postcell_store_search_pending
        # to reach 0, if /metrics shows it.
        search-body) run_workload postcell "" "$imap_port" "$POSTCELL_PID" "$w" --metrics "127.0.0.1:$http_port" ;;
        *) run_workload postcell "" "$imap_port" "$POSTCELL_PID" "$w" ;;
        esac
    done
    stop_postcell
}

# wait_for_index HTTP_PORT: waits (at most MAX_SECONDS) until Postcell's search
# index has caught up with the seeded mail (postcell_store_search_pending 0 on
# /metrics). The seeding delivers 150,000 messages in about a minute, faster than
# the indexer writes them; a workload run during the catch-up measures the two
# cores shared with the indexer, and each SEARCH of a mailbox not yet indexed
# indexes it first, which varies from run to run with how far the indexer got.
wait_for_index() {
    local port=$1 started pending
    if ! command -v curl >/dev/null; then
        log "warning: no curl: not waiting for Postcell's search index to catch up"
        return
    fi
    started=$(date +%s)
    while :; do
        pending=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null \
            | awk '$1 == "postcell_store_search_pending" { print $2 }')
        [[ $pending == 0 ]] && break
        if (($(date +%s) - started >= MAX_SECONDS)); then
            log "warning: the search index still had ${pending:-?} messages to index after $MAX_SECONDS s"
            return
        fi
        sleep 1
    done
    log "postcell: search index caught up with the seeded mail in $(($(date +%s) - started)) s"
}

# ---------------------------------------------------------------- Dovecot
# start_dovecot CONF PORT: a private master; sets DOVECOT_PID.
start_dovecot() {
    local conf=$1 port=$2 dc
    dc=$(dirname "$conf")
    log "dovecot $(dovecot --version): starting a private instance on 127.0.0.1:$port ($(basename "$conf"))"
    dovecot -c "$conf" >"$dc/start.log" 2>&1 \
        || { cat "$dc/start.log" >&2; tail -n 20 "$dc/dovecot.log" >&2 2>/dev/null; die "dovecot failed to start"; }
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s $dc/run/master.pid ]] && break
        sleep 0.1
    done
    DOVECOT_PID=$(tr -d ' \n' <"$dc/run/master.pid" 2>/dev/null || true)
    [[ -n $DOVECOT_PID ]] || die "dovecot wrote no master.pid"
    if ! wait_port "$port" 30 "$DOVECOT_PID"; then
        tail -n 30 "$dc/dovecot.log" >&2 || true
        die "dovecot did not listen on 127.0.0.1:$port within 30 s"
    fi
}

install_dovecot() {
    log "installing dovecot-imapd and dovecot-pop3d from Debian (without starting the system instance)"
    # Debian's invoke-rc.d asks policy-rc.d whether it may start a service;
    # 101 means no. Only while we install, and only if there is none already.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=1
    fi
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
    "${apt[@]}" install -y --no-install-recommends dovecot-imapd dovecot-pop3d >&2 \
        || { "${apt[@]}" update >&2 && "${apt[@]}" install -y --no-install-recommends dovecot-imapd dovecot-pop3d >&2; } \
        || { [[ $own_policy == 1 ]] && rm -f "$policy"; die "cannot install dovecot-imapd and dovecot-pop3d"; }
    [[ $own_policy == 1 ]] && rm -f "$policy"
    INSTALLED_DOVECOT=1
}

DOVECOT_VERSION=null
DOVECOT_PASSWORDS=null
bench_dovecot() {
    if ! command -v dovecot >/dev/null || { has_workload pop3-mix && [[ ! -x /usr/lib/dovecot/pop3 ]]; }; then
        install_dovecot
    fi
    command -v dovecot >/dev/null || die "dovecot is not installed"
    if [[ $INSTALLED_DOVECOT == 1 ]] && doveadm service status >/dev/null 2>&1; then
        # In case an init system started the system instance anyway.
        doveadm stop >/dev/null 2>&1 || true
    fi
    if ! id "$BENCH_USER" >/dev/null 2>&1; then
        log "creating system user $BENCH_USER for the Maildirs"
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$BENCH_USER"
    fi
    local uid gid dc conf port user hash w clients processes
    uid=$(id -u "$BENCH_USER")
    gid=$(id -g "$BENCH_USER")
    dc=$WORK/dovecot
    conf=$dc/dovecot.conf
    mkdir -p "$dc/run" "$dc/state"
    chown -R "$uid:$gid" "$MAILDIRS"
    port=$(free_port) || die "no free port"
    # POP3 only when pop3-mix runs (dovecot-pop3d may be missing otherwise),
    # tuned the same way as IMAP.
    local pop3_port="" pop3_protocol="" pop3_services=""
    if has_workload pop3-mix; then
        pop3_port=$(free_port) || die "no free port"
        pop3_protocol="protocol pop3 {
  mail_max_userip_connections = $((CLIENTS + 100))
}"
        pop3_services="service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $pop3_port
  }
  inet_listener pop3s {
    port = 0
  }
  service_count = 0
  process_min_avail = $(nproc)
  client_limit = $((CLIENTS + 100))
}
service pop3 {
  service_count = 100
}"
    fi

    # The same accounts and password as Postcell's; its argon2id hashes when
    # it ran (Dovecot reads the same PHC strings), else doveadm's own.
    : >"$dc/users"
    DOVECOT_PASSWORDS='"argon2id hashes copied from Postcell (same parameters)"'
    for user in "${accounts[@]}"; do
        hash=$(awk -v u="$user" '$1 == u { print $2 }' "$WORK/postcell-hashes.txt" 2>/dev/null || true)
        if [[ -z $hash ]]; then
            hash=$(doveadm pw -s ARGON2ID -p "$PASSWORD" | sed 's/^{ARGON2ID}//')
            DOVECOT_PASSWORDS='"argon2id hashes from doveadm pw (its default parameters)"'
        fi
        echo "$user:{ARGON2ID}$hash:$uid:$gid::$MAILDIRS/${user%@*}::" >>"$dc/users"
    done
    chmod 640 "$dc/users"
    chgrp dovecot "$dc/users" 2>/dev/null || true
    hash=$(head -n 1 "$dc/users" | cut -d: -f2)
    doveadm pw -t "$hash" -p "$PASSWORD" >/dev/null 2>&1 || die "dovecot does not accept the hash $hash"

    clients=$((IDLE_CONNECTIONS + CLIENTS + 100))
    processes=$((IDLE_CONNECTIONS + CLIENTS + 100))
    # Each idling imap process (and imap-hibernate) watches its mailbox with
    # an inotify instance, all under one user: without enough of them Dovecot
    # falls back to polling and cannot hibernate, as its log says. Raised for
    # this run only, as Dovecot's warning asks.
    local inotify
    inotify=$(cat "$INOTIFY_LIMIT" 2>/dev/null || echo 0)
    if [[ $inotify -lt $((processes + 256)) ]]; then
        if echo $((processes + 256)) >"$INOTIFY_LIMIT" 2>/dev/null; then
            INOTIFY_BEFORE=$inotify
            log "raised fs.inotify.max_user_instances from $inotify to $((processes + 256)) for this run"
        else
            log "warning: fs.inotify.max_user_instances is $inotify: Dovecot will poll instead of using inotify"
        fi
    fi
    cat >"$conf" <<EOF
# Private Dovecot instance for bench/imap.sh: loopback only, plain IMAP,
# the Maildirs that imap-load seed wrote. Settings not named here are
# Dovecot's defaults (no conf.d is read).
instance_name = postcell-bench
base_dir = $dc/run
state_dir = $dc/state
log_path = $dc/dovecot.log
protocols = imap${pop3_port:+ pop3}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=ARGON2ID $dc/users
}
userdb {
  driver = passwd-file
  args = $dc/users
}
first_valid_uid = $uid
first_valid_gid = $gid
mail_location = maildir:$MAILDIRS/%n
# Only this Dovecot writes these Maildirs: no need to rescan cur/ on every
# sync (Dovecot's advice for such setups).
maildir_very_dirty_syncs = yes
# Room for every IDLE connection: one imap process each, and the user/IP limit.
default_process_limit = $processes
default_client_limit = $((processes * 4))
protocol imap {
  mail_max_userip_connections = $clients
}
$pop3_protocol
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
  # "High-performance mode": long-lived login processes, as Dovecot's
  # performance tuning guide recommends for busy servers.
  service_count = 0
  process_min_avail = $(nproc)
  client_limit = $clients
}
service imap {
  process_limit = $processes
  # Reuse an imap process for up to 100 sessions instead of forking one
  # per session (every account has the same system user here).
  service_count = 100
}
$pop3_services
EOF
    DOVECOT_VERSION=$(dovecot --version | awk '{ print $1 }' | jq -R .)
    start_dovecot "$conf" "$port"
    for w in $WORKLOADS; do
        if [[ $w == pop3-mix ]]; then
            run_workload dovecot "" "$pop3_port" "$DOVECOT_PID" "$w"
            if [[ $MIX_RATE -gt 0 ]]; then run_workload dovecot fixed-rate "$pop3_port" "$DOVECOT_PID" "$w"; fi
            continue
        fi
        run_workload dovecot "" "$port" "$DOVECOT_PID" "$w"
        if [[ $w == imap-mix ]]; then
            # If Postcell left steps out (unsupported), run Dovecot once more
            # without them, so that one ratio compares the same sessions.
            local left_out skip=()
            left_out=$(jq -r 'select(.server == "postcell" and .workload == "imap-mix") | .report.result.steps_left_out[]' "$RUNS")
            for s in $left_out; do skip+=(--skip "${s//_/-}"); done
            if [[ ${#skip[@]} -gt 0 ]]; then
                run_workload dovecot same-steps-as-postcell "$port" "$DOVECOT_PID" imap-mix "${skip[@]}"
            fi
            if [[ $MIX_RATE -gt 0 ]]; then run_workload dovecot fixed-rate "$port" "$DOVECOT_PID" imap-mix "${skip[@]}"; fi
        fi
    done
    stop_dovecot
    if has_workload idle-memory && [[ $DOVECOT_HIBERNATE == 1 ]]; then
        # Dovecot's own answer to many idle clients: after
        # imap_hibernate_timeout an IDLE connection leaves its imap process
        # for the one shared imap-hibernate process. Off by default; the
        # settings are those of Dovecot's example 10-master.conf.
        cat "$conf" - >"$dc/dovecot-hibernate.conf" <<'EOF'
# IDLE hibernation (only for the idle-memory run "hibernate").
imap_hibernate_timeout = 5s
service imap {
  # One session per process again (the default), so that a process whose
  # connection went into hibernation exits instead of waiting for another.
  service_count = 1
  unix_listener imap-master {
    user = $default_internal_user
  }
  extra_groups = $default_internal_group
}
service imap-hibernate {
  unix_listener imap-hibernate {
    mode = 0660
    group = $default_internal_group
  }
}
EOF
        start_dovecot "$dc/dovecot-hibernate.conf" "$port"
        # Longer than the hibernation timeout, so that every connection has moved.
        run_workload dovecot hibernate "$port" "$DOVECOT_PID" idle-memory --settle-seconds 15
        stop_dovecot
    fi
    grep -iE 'warning|error|fatal' "$dc/dovecot.log" | grep -v 'Killed with signal 15' | sort | uniq -c \
        | sort -rn | head -n 5 | sed 's/^/    dovecot log: /' >&2 || true
}

# ---------------------------------------------------------------- run
# (Called from `if`, not `&&`, so that set -e stays in force inside them.)
if has_workload mbsync-download; then find_mbsync; fi
log "load average at start: $(loadavg) ($(nproc) cores)"
if has_server postcell; then
    bench_postcell
else
    seed
fi
if has_server dovecot; then bench_dovecot; fi

# ---------------------------------------------------------------- report
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RESULTS_DIR"
json=$RESULTS_DIR/imap-$stamp.json
md=$RESULTS_DIR/imap-$stamp.md

jq -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg fs "$fs_type" \
    --arg size "$SIZE" --argjson big "$BIG_MESSAGES" --argjson users "$USERS" \
    --argjson user_messages "$USER_MESSAGES" --argjson repeat "$REPEAT" --argjson warmup "$WARMUP" \
    --argjson idle "$IDLE_CONNECTIONS" --argjson clients "$CLIENTS" --argjson sessions "$SESSIONS" \
    --argjson pop3_sessions "$POP3_SESSIONS" \
    --argjson mix_rate "$MIX_RATE" --argjson mix_rate_sessions "$MIX_RATE_SESSIONS" \
    --argjson large_messages "$(has_workload mbsync-download && echo "$LARGE_MESSAGES" || echo null)" \
    --argjson large_size "$LARGE_SIZE_BYTES" --argjson mbsync_runs "$MBSYNC_RUNS" \
    --argjson pcv "$POSTCELL_VERSION" --argjson dcv "$DOVECOT_VERSION" \
    --argjson dcpw "$DOVECOT_PASSWORDS" --arg loadend "$(loadavg)" \
    --slurpfile seed "$SEED_REPORT" -f "$BENCH_DIR/imap-report.jq" "$RUNS" >"$json"

jq -r -f "$BENCH_DIR/imap-table.jq" "$json" >"$md"

echo
cat "$md"
echo
log "results: $json"
log "         $md"
[[ $FAILED == 0 ]] || die "a check failed (search hits or messages downloaded): see \"checks\" in $json"
