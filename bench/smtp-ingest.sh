#!/usr/bin/env bash
# SMTP ingest benchmark: the same workload against Postcell and against a
# private Postfix instance, in one run, on this machine (127.0.0.1 only).
#
#   bench/smtp-ingest.sh [options]
#
# Options (each also settable through the environment variable shown):
#   --messages N          MESSAGES          messages per run            (2000)
#   --size S              SIZE              message size: 4k, 64k, bytes (4k)
#   --connections "A B"   CONNECTIONS       connection counts, one run each
#                                           (space or comma separated)  ("1 10 50")
#   --rate R              RATE              open loop: R messages/s arrive at a
#                                           fixed rate whatever the replies,
#                                           for DURATION seconds (R x DURATION
#                                           messages; --messages is ignored)
#   --duration S          DURATION          open-loop run length         (60)
#   --servers "A B"       SERVERS           which servers: postcell postfix
#                                           ("postcell postfix")
#   --warmup N            WARMUP            unmeasured messages per server (50)
#   --max-seconds S       MAX_SECONDS       hard bound per load run     (600)
#   --delivery-timeout S  DELIVERY_TIMEOUT  bound on waiting for Postfix to
#                                           put the messages in the Maildirs (600)
#   --work DIR            WORK              scratch directory (default: a new
#                                           mktemp -d under $TMPDIR or /tmp)
#   --results-dir DIR     RESULTS_DIR       where the JSON/Markdown go (bench/results)
#   --keep                KEEP=1            keep WORK (logs, maildirs) at the end
#   --no-build            BUILD=0           use the binaries already in target/release
#   -h, --help
#
# Writes RESULTS_DIR/smtp-ingest-DATE.json and .md (smtp-open-loop-DATE with
# --rate) and prints the Markdown table. See bench/README.md for what each
# figure means.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MESSAGES=${MESSAGES:-2000}
SIZE=${SIZE:-4k}
CONNECTIONS=${CONNECTIONS:-"1 10 50"}
RATE=${RATE:-}
DURATION=${DURATION:-60}
SERVERS=${SERVERS:-"postcell postfix"}
WARMUP=${WARMUP:-50}
MAX_SECONDS=${MAX_SECONDS:-600}
DELIVERY_TIMEOUT=${DELIVERY_TIMEOUT:-600}

USERS=10
DOMAIN=bench.test
BENCH_USER=postcellbench
PASSWORD=secret

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
    --messages) need_value "$1" $#; MESSAGES=$2; shift 2 ;;
    --size) need_value "$1" $#; SIZE=$2; shift 2 ;;
    --connections) need_value "$1" $#; CONNECTIONS=$2; shift 2 ;;
    --rate) need_value "$1" $#; RATE=$2; shift 2 ;;
    --duration) need_value "$1" $#; DURATION=$2; shift 2 ;;
    --servers | --only) need_value "$1" $#; SERVERS=$2; shift 2 ;;
    --warmup) need_value "$1" $#; WARMUP=$2; shift 2 ;;
    --max-seconds) need_value "$1" $#; MAX_SECONDS=$2; shift 2 ;;
    --delivery-timeout) need_value "$1" $#; DELIVERY_TIMEOUT=$2; shift 2 ;;
    *)
        common_option "$@" || { echo "unknown option: $1 (see --help)" >&2; exit 2; }
        shift "$SHIFT"
        ;;
    esac
done

CONNECTIONS=${CONNECTIONS//,/ }
SERVERS=${SERVERS//,/ }
for v in MESSAGES WARMUP MAX_SECONDS DELIVERY_TIMEOUT DURATION; do
    is_uint "${!v}" || { echo "$v must be a whole number, not '${!v}'" >&2; exit 2; }
done
[[ $MESSAGES -ge 1 ]] || { echo "MESSAGES must be at least 1" >&2; exit 2; }
BENCHMARK=smtp-ingest
if [[ -n $RATE ]]; then
    [[ $RATE =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v r="$RATE" 'BEGIN { exit !(r > 0) }' \
        || { echo "RATE must be a positive number of messages/s, not '$RATE'" >&2; exit 2; }
    [[ $DURATION -ge 1 ]] || { echo "DURATION must be at least 1" >&2; exit 2; }
    MESSAGES=$(awk -v r="$RATE" -v d="$DURATION" 'BEGIN { n = int(r * d); print (n < 1 ? 1 : n) }')
    # The load generator stops starting messages at the end of the duration;
    # what is in flight then gets the usual bound.
    BENCHMARK=smtp-open-loop
fi
for c in $CONNECTIONS; do
    if ! is_uint "$c" || [[ $c -lt 1 ]]; then echo "bad connection count '$c'" >&2; exit 2; fi
done
for s in $SERVERS; do
    [[ $s == postcell || $s == postfix ]] || { echo "unknown server '$s'" >&2; exit 2; }
done
has_server() { [[ " $SERVERS " == *" $1 "* ]]; }

command -v jq >/dev/null || die "jq is needed (apt-get install -y jq)"

# ---------------------------------------------------------------- scratch
make_work

POSTCELL_PID=
POSTFIX_CONF=
POSTFIX_STARTED=0
INSTALLED_POSTFIX=0

stop_postcell() {
    [[ -n $POSTCELL_PID ]] || return 0
    if kill -0 "$POSTCELL_PID" 2>/dev/null; then
        kill -TERM "$POSTCELL_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 100; i++)); do
            kill -0 "$POSTCELL_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$POSTCELL_PID" 2>/dev/null; then
            log "postcell did not stop within 10 s of SIGTERM; killing it"
            kill -KILL "$POSTCELL_PID" 2>/dev/null || true
        fi
    fi
    wait "$POSTCELL_PID" 2>/dev/null || true
    POSTCELL_PID=
}

postfix_master_pid() {
    local f=$WORK/postfix/queue/pid/master.pid
    [[ -f $f ]] && tr -d ' \n' <"$f"
}

stop_postfix() {
    [[ $POSTFIX_STARTED == 1 ]] || return 0
    postfix -c "$POSTFIX_CONF" stop >/dev/null 2>&1 || true
    local pid i
    pid=$(postfix_master_pid || true)
    if [[ -n $pid ]]; then
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "postfix master $pid still running; aborting it"
            postfix -c "$POSTFIX_CONF" abort >/dev/null 2>&1 || kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    POSTFIX_STARTED=0
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_postcell
    stop_postfix
    if [[ $INSTALLED_POSTFIX == 1 ]] && postfix status >/dev/null 2>&1; then
        # We installed postfix in this run: leave no system instance running.
        postfix stop >/dev/null 2>&1 || true
    fi
    cleanup_work
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
maildir_count() {
    find "$WORK/maildirs" -type f -path '*/new/*' 2>/dev/null | wc -l
}

recipients_file=$WORK/recipients.txt
: >"$recipients_file"
for ((i = 1; i <= USERS; i++)); do echo "user$i@$DOMAIN" >>"$recipients_file"; done

fs_type=$FS_TYPE

# ---------------------------------------------------------------- build
pkgs=(postcell-bench)
has_server postcell && pkgs+=(postcell)
build_release "${pkgs[@]}"
LOAD=$(target_binary smtp-load)
POSTCELL=
if has_server postcell; then POSTCELL=$(target_binary postcell); fi
LOAD_START=$(load_average)

# run_load NAME PORT CONNECTIONS MESSAGES OUT: one smtp-load run, JSON to OUT.
run_load() {
    local name=$1 port=$2 conns=$3 n=$4 out=$5 rate=${6:-} rc=0 open_loop=() bound=$MAX_SECONDS
    if [[ -n $rate ]]; then
        # RATE x DURATION messages: the last one is due just before DURATION.
        # The bound leaves a backlog time to drain, and is reported if hit.
        open_loop=(--rate "$rate")
        bound=$((DURATION + 60))
    fi
    "$LOAD" --target "127.0.0.1:$port" --messages "$n" --size "$SIZE" \
        --connections "$conns" --recipients-file "$recipients_file" \
        --from "loadgen@load.test" --helo load.test "${open_loop[@]}" \
        --max-seconds "$bound" --label "$name" --json >"$out" || rc=$?
    if ! jq -e .result "$out" >/dev/null 2>&1; then
        die "smtp-load against $name gave no report (exit $rc)"
    fi
    if [[ $rc -ne 0 ]]; then
        log "warning: $name, $conns connection(s): $(jq -r '.result | "\(.accepted) accepted, \(.errors) errors, \(.not_sent) not sent"' "$out")"
        jq -r '.result.error_samples[]' "$out" | sed 's/^/    /' >&2
    fi
}

RUNS=$WORK/runs.jsonl
: >"$RUNS"

# ---------------------------------------------------------------- Postcell
bench_postcell() {
    local dir=$WORK/postcell conf port c out
    log "postcell: init in $dir"
    "$POSTCELL" init --dir "$dir" --domain "$DOMAIN" >"$WORK/postcell-init.log" 2>&1 \
        || { cat "$WORK/postcell-init.log" >&2; die "postcell init failed"; }
    conf=$dir/postcell.toml
    [[ -f $conf ]] || die "postcell init did not write $conf"
    for ((i = 1; i <= USERS; i++)); do
        echo "$PASSWORD" | "$POSTCELL" --config "$conf" user add "user$i@$DOMAIN" --password-stdin \
            >>"$WORK/postcell-init.log" 2>&1 \
            || { cat "$WORK/postcell-init.log" >&2; die "postcell user add user$i failed"; }
    done
    port=$(free_port) || die "no free port"
    # In [listen]: point smtp at our port, comment out every other listener.
    awk -v port="$port" '
        /^[[:space:]]*\[/ { in_listen = ($0 ~ /^[[:space:]]*\[listen\][[:space:]]*(#.*)?$/) }
        in_listen && /^[[:space:]]*smtp[[:space:]]*=/ { print "smtp = \"127.0.0.1:" port "\""; seen = 1; next }
        in_listen && /^[[:space:]]*[A-Za-z0-9_-]+[[:space:]]*=/ { print "# (disabled by smtp-ingest.sh) " $0; next }
        { print }
        END { if (!seen) exit 3 }
    ' "$conf" >"$conf.new" || die "no smtp = line in the [listen] table of $conf"
    mv "$conf.new" "$conf"
    # The mx role checks SPF, DKIM and DMARC of every message (Postfix here does
    # none). This machine has no network: a static resolver answers from the
    # records given and sends nothing, so the checks run in full (SPF passes for
    # the load generator's domain) without waiting on DNS timeouts.
    if ! grep -q '^[[:space:]]*\[dns\]' "$conf"; then
        printf '\n[dns]\nresolver = "static"\nrecords = ["load.test TXT v=spf1 ip4:127.0.0.1 -all"]\n' >>"$conf"
    fi
    log "postcell: serving SMTP on 127.0.0.1:$port"
    "$POSTCELL" --config "$conf" serve >"$WORK/postcell.log" 2>&1 &
    POSTCELL_PID=$!
    if ! wait_port "$port" 30 "$POSTCELL_PID"; then
        tail -n 30 "$WORK/postcell.log" >&2 || true
        die "postcell did not listen on 127.0.0.1:$port within 30 s"
    fi
    if [[ $WARMUP -gt 0 ]]; then
        log "postcell: warm-up, $WARMUP messages"
        run_load postcell-warmup "$port" 1 "$WARMUP" "$WORK/postcell-warmup.json"
    fi
    for c in $CONNECTIONS; do
        out=$WORK/postcell-c$c.json
        log "postcell: $MESSAGES x $SIZE over $c connection(s)"
        run_load postcell "$port" "$c" "$MESSAGES" "$out" "$RATE"
        # 250 from Postcell means committed to the mailbox store: delivered.
        jq -c --argjson c "$c" '{server: "postcell", connections: $c,
            accepted: .result.accepted,
            acknowledged_per_second: .result.messages_per_second,
            delivered: .result.accepted,
            delivered_seconds: .result.elapsed_seconds,
            delivered_per_second: .result.messages_per_second,
            delivery_complete: true,
            load: .}' "$out" >>"$RUNS"
    done
    stop_postcell
}

# ---------------------------------------------------------------- Postfix
install_postfix() {
    log "installing postfix from Debian (No configuration: nothing starts on port 25)"
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y postfix >&2 \
        || { DEBIAN_FRONTEND=noninteractive apt-get update >&2 \
            && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y postfix >&2; }
    INSTALLED_POSTFIX=1
}

bench_postfix() {
    command -v postfix >/dev/null || install_postfix
    command -v postfix >/dev/null || die "postfix is not installed"
    [[ $EUID -eq 0 ]] || die "the Postfix half needs root (postfix start, a delivery user)"
    if ! id "$BENCH_USER" >/dev/null 2>&1; then
        log "creating system user $BENCH_USER for Maildir delivery"
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$BENCH_USER"
    fi
    local uid gid pf conf port max_c c out n0 t1 accepted want got status
    uid=$(id -u "$BENCH_USER")
    gid=$(id -g "$BENCH_USER")
    pf=$WORK/postfix
    conf=$pf/etc
    POSTFIX_CONF=$conf
    mkdir -p "$conf" "$pf/queue" "$pf/data" "$WORK/maildirs"
    chown "$uid:$gid" "$WORK/maildirs"
    chmod 755 "$pf" "$pf/queue"
    chown postfix "$pf/data"
    port=$(free_port) || die "no free port"
    max_c=1
    for c in $CONNECTIONS; do [[ $c -gt $max_c ]] && max_c=$c; done

    : >"$conf/vmailbox"
    for ((i = 1; i <= USERS; i++)); do echo "user$i@$DOMAIN user$i/" >>"$conf/vmailbox"; done

    cat >"$conf/main.cf" <<EOF
# Private Postfix instance for bench/smtp-ingest.sh: loopback only.
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
maillog_file = $pf/maillog
maillog_file_prefixes = $pf
myhostname = mx.postfix.bench.invalid
mydomain = postfix.bench.invalid
myorigin = \$myhostname
mydestination = localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = \$myhostname ESMTP
smtpd_peername_lookup = no
biff = no
append_dot_mydomain = no
alias_maps =
alias_database =
local_recipient_maps =
message_size_limit = 104857600
mailbox_size_limit = 0
virtual_mailbox_limit = 0
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_base = $WORK/maildirs
virtual_mailbox_maps = texthash:$conf/vmailbox
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
default_process_limit = $((max_c + 50 > 100 ? max_c + 50 : 100))
EOF
    # Only what this workload needs, nothing chrooted.
    cat >"$conf/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$port inet n  -       n       -       -       smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    postfix -c "$conf" check >"$pf/check.log" 2>&1 \
        || { cat "$pf/check.log" >&2; tail -n 20 "$pf/maillog" >&2 2>/dev/null; die "postfix check failed"; }
    log "postfix $(postconf -c "$conf" -h mail_version): starting a private instance on 127.0.0.1:$port"
    postfix -c "$conf" start >"$pf/start.log" 2>&1 \
        || { cat "$pf/start.log" >&2; tail -n 20 "$pf/maillog" >&2 2>/dev/null; die "postfix start failed"; }
    POSTFIX_STARTED=1
    if ! wait_port "$port" 30; then
        tail -n 30 "$pf/maillog" >&2 || true
        die "postfix did not listen on 127.0.0.1:$port within 30 s"
    fi

    # wait_delivered WANT: until WANT files are in the Maildirs' new/, bounded.
    wait_delivered() {
        local want=$1 deadline
        deadline=$(($(date +%s) + DELIVERY_TIMEOUT))
        while [[ $(maildir_count) -lt $want ]]; do
            if [[ $(date +%s) -ge $deadline ]]; then
                return 1
            fi
            sleep 0.05
        done
    }

    if [[ $WARMUP -gt 0 ]]; then
        log "postfix: warm-up, $WARMUP messages"
        n0=$(maildir_count)
        run_load postfix-warmup "$port" 1 "$WARMUP" "$WORK/postfix-warmup.json"
        accepted=$(jq .result.accepted "$WORK/postfix-warmup.json")
        wait_delivered $((n0 + accepted)) || log "warning: warm-up messages not all delivered"
    fi
    for c in $CONNECTIONS; do
        out=$WORK/postfix-c$c.json
        n0=$(maildir_count)
        log "postfix: $MESSAGES x $SIZE over $c connection(s)"
        run_load postfix "$port" "$c" "$MESSAGES" "$out" "$RATE"
        accepted=$(jq .result.accepted "$out")
        want=$((n0 + accepted))
        status=true
        if ! wait_delivered "$want"; then
            status=false
            log "warning: postfix delivered $(($(maildir_count) - n0)) of $accepted within ${DELIVERY_TIMEOUT}s"
            grep -E 'warning|error|fatal|status=(deferred|bounced)' "$pf/maillog" | tail -n 5 >&2 || true
        fi
        t1=$(now)
        got=$(($(maildir_count) - n0))
        # Delivered rate: from the load's start to the last message in a
        # Maildir (polled every 50 ms after the load ends).
        jq -c --argjson c "$c" --argjson t1 "$t1" --argjson got "$got" \
            --argjson complete "$status" '
            ($t1 - .started_unix) as $d
            | {server: "postfix", connections: $c,
               accepted: .result.accepted,
               acknowledged_per_second: .result.messages_per_second,
               delivered: $got,
               delivered_seconds: $d,
               delivered_per_second: (if $d > 0 then $got / $d else 0 end),
               delivery_complete: $complete,
               load: .}' "$out" >>"$RUNS"
        log "postfix: $(tail -n 1 "$RUNS" | jq -r '"acknowledged \(.acknowledged_per_second | floor)/s; \(.delivered) delivered to Maildir in \(.delivered_seconds * 1000 | floor) ms: \(.delivered_per_second | floor)/s"')"
    done
    stop_postfix
}

# ---------------------------------------------------------------- run
# (Called from `if`, not `&&`, so that set -e stays in force inside them.)
if has_server postcell; then bench_postcell; fi
if has_server postfix; then bench_postfix; fi

# ---------------------------------------------------------------- report
result_paths "$BENCHMARK"
json=$RESULT_JSON
md=$RESULT_MD
postfix_version=null
if has_server postfix; then
    postfix_version=$(postconf -c "$WORK/postfix/etc" -h mail_version 2>/dev/null | jq -R . || echo null)
fi
postcell_version=null
if has_server postcell; then
    postcell_version=$("$POSTCELL" --version 2>/dev/null | head -n 1 | jq -R . || echo null)
    [[ -n $postcell_version ]] || postcell_version=null
fi

jq -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg size "$SIZE" \
    --arg benchmark "$BENCHMARK" --arg rate "$RATE" --argjson duration "$DURATION" \
    --argjson messages "$MESSAGES" --argjson warmup "$WARMUP" \
    --arg load_start "$LOAD_START" --arg load_end "$(load_average)" \
    --arg fs "$fs_type" --argjson pfv "$postfix_version" --argjson pcv "$postcell_version" '
    def pick($runs; $s; $c): $runs | map(select(.server == $s and .connections == $c)) | .[0];
    def ratio($a; $b): if $a == null or $b == null or $b == 0 then null else $a / $b end;
    def figure($w; $name; $unit; $better; $pc; $pf; $note):
        ratio($pc; $pf) as $r
        | {workload: $w, figure: $name, unit: $unit, better: $better,
           postcell: $pc, peer: "postfix", postfix: $pf, ratio: $r,
           postcell_ahead: (if $r == null then null elif $better == "higher" then $r > 1 else $r < 1 end),
           note: $note};
    . as $runs
    | ($runs[0].load.config.message_bytes // null) as $bytes
    | {benchmark: $benchmark,
       date: $date,
       machine: ($runs[0].load.machine // null),
       load_average_start: $load_start,
       load_average_end: $load_end,
       filesystem: $fs,
       params: {messages: $messages, size: $size, warmup: $warmup,
                message_bytes: $bytes,
                rate: (if $rate == "" then null else ($rate | tonumber) end),
                duration_seconds: (if $rate == "" then null else $duration end),
                connections: ($runs | map(.connections) | unique)},
       versions: {postcell: $pcv, postfix: $pfv},
       runs: $runs,
       comparison: ($runs | map(.connections) | unique | map(. as $c
         | pick($runs; "postcell"; $c) as $pc | pick($runs; "postfix"; $c) as $pf
         | {connections: $c,
            postcell_per_second: $pc.delivered_per_second,
            postfix_acknowledged_per_second: $pf.acknowledged_per_second,
            postfix_delivered_per_second: $pf.delivered_per_second,
            ratio_postcell_vs_postfix_delivered: ratio($pc.delivered_per_second; $pf.delivered_per_second),
            ratio_postcell_vs_postfix_acknowledged: ratio($pc.delivered_per_second; $pf.acknowledged_per_second)}))}
    # The rows of the one table bench/run writes (the shape imap.sh uses too).
    | .figures = [(.comparison[] as $c
         | pick($runs; "postcell"; $c.connections) as $pc | pick($runs; "postfix"; $c.connections) as $pf
         | ($pc.load.result // null) as $x | ($pf.load.result // null) as $y
         | if $rate == "" then
             ("smtp-ingest \($bytes) B, \($c.connections) conn") as $w
             | figure($w; "messages/s delivered"; "1/s"; "higher"; $c.postcell_per_second; $c.postfix_delivered_per_second;
                      "Postcell 250 = committed to the mailbox; Postfix: until in the Maildir"),
               figure($w; "messages/s acknowledged"; "1/s"; "higher"; $c.postcell_per_second; $c.postfix_acknowledged_per_second;
                      "Postfix 250 = in its queue, not yet delivered"),
               figure($w; "end of DATA to 250, p50"; "ms"; "lower"; $x.latency_end_of_data_ms.p50; $y.latency_end_of_data_ms.p50; null),
               figure($w; "end of DATA to 250, p99"; "ms"; "lower"; $x.latency_end_of_data_ms.p99; $y.latency_end_of_data_ms.p99; null),
               figure($w; "errors"; "messages"; "lower"; $x.errors; $y.errors; null)
           else
             ("smtp-open-loop \($rate)/s offered, \($bytes) B, \($c.connections) conn, \($duration) s") as $w
             | figure($w; "messages/s sustained"; "1/s"; "higher"; $c.postcell_per_second; $c.postfix_delivered_per_second;
                      "accepted (Postcell) or delivered to Maildir (Postfix) over the whole run"),
               figure($w; "arrival to 250, p50"; "ms"; "lower"; $x.latency_from_arrival_ms.p50; $y.latency_from_arrival_ms.p50; null),
               figure($w; "arrival to 250, p99"; "ms"; "lower"; $x.latency_from_arrival_ms.p99; $y.latency_from_arrival_ms.p99;
                      "from the due time of each arrival: waiting for a free connection counts"),
               figure($w; "late starts"; "messages"; "lower"; $x.late_starts; $y.late_starts;
                      "arrivals that found every connection busy for more than 10 ms"),
               figure($w; "errors and not sent"; "messages"; "lower";
                      (if $x == null then null else $x.errors + $x.not_sent end);
                      (if $y == null then null else $y.errors + $y.not_sent end); null)
           end)]
    ' "$RUNS" >"$json"

jq -r '
    def f1: if . == null then "–" else (. * 10 | round / 10 | tostring) end;
    def f2: if . == null then "–" else (. * 100 | round / 100 | tostring) end;
    def lat: if . == null then "–" else "\(.load.result.latency_end_of_data_ms.p50 | f2) / \(.load.result.latency_end_of_data_ms.p99 | f2)" end;
    def tot: if . == null then "–" else "\(.load.result.latency_message_ms.p50 | f2) / \(.load.result.latency_message_ms.p99 | f2)" end;
    def arr: if . == null then "–" else "\(.load.result.latency_from_arrival_ms.p50 | f2) / \(.load.result.latency_from_arrival_ms.p99 | f2)" end;
    def late: if . == null then "–" else "\(.load.result.late_starts)" end;
    def lost: if . == null then "–" else "\(.load.result.errors + .load.result.not_sent)\(if .delivery_complete then "" else " (delivery incomplete)" end)" end;
    def errs: if . == null then "–" else "\(.load.result.errors)\(if .delivery_complete then "" else " (delivery incomplete)" end)" end;
    . as $r
    | "## SMTP \(if $r.params.rate == null then "ingest" else "open loop, \($r.params.rate) messages/s offered for \($r.params.duration_seconds) s" end): Postcell vs Postfix",
      "",
      "\($r.date) · \($r.machine.cpu_model // "unknown CPU"), \($r.machine.cores // "?") cores, \((($r.machine.memory_total_bytes // 0) / 1073741824 * 10 | round / 10)) GiB · \($r.filesystem) · Postcell \($r.versions.postcell // "–") · Postfix \($r.versions.postfix // "–") · load average \($r.load_average_start) at the start, \($r.load_average_end) at the end",
      "",
      "\($r.params.messages) messages of \($r.params.message_bytes // $r.params.size) bytes per run, 10 recipients, after a \($r.params.warmup)-message warm-up. Rates in messages/s; latencies in ms, p50 / p99.",
      "",
      (if $r.params.rate == null then
      "| connections | Postcell msg/s (250 = in mailbox) | Postfix msg/s acknowledged (250 = queued) | Postfix msg/s delivered to Maildir | **Postcell / Postfix delivered** | Postcell / Postfix acknowledged | Postcell end-of-DATA→250 | Postfix end-of-DATA→250 | Postcell per message | Postfix per message | errors Postcell / Postfix |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
      ($r.comparison[] as $c
        | ($r.runs | map(select(.server == "postcell" and .connections == $c.connections)) | first) as $pc
        | ($r.runs | map(select(.server == "postfix" and .connections == $c.connections)) | first) as $pf
        | "| \($c.connections) | \($c.postcell_per_second | f1) | \($c.postfix_acknowledged_per_second | f1) | \($c.postfix_delivered_per_second | f1) | **\($c.ratio_postcell_vs_postfix_delivered | f2)** | \($c.ratio_postcell_vs_postfix_acknowledged | f2) | \($pc | lat) | \($pf | lat) | \($pc | tot) | \($pf | tot) | \($pc | errs) / \($pf | errs) |")
      else
      "| connections | Postcell msg/s sustained (250 = in mailbox) | Postfix msg/s acknowledged | Postfix msg/s delivered to Maildir | **Postcell / Postfix delivered** | Postcell arrival→250 | Postfix arrival→250 | late starts Postcell / Postfix | errors + not sent Postcell / Postfix |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
      ($r.comparison[] as $c
        | ($r.runs | map(select(.server == "postcell" and .connections == $c.connections)) | first) as $pc
        | ($r.runs | map(select(.server == "postfix" and .connections == $c.connections)) | first) as $pf
        | "| \($c.connections) | \($c.postcell_per_second | f1) | \($c.postfix_acknowledged_per_second | f1) | \($c.postfix_delivered_per_second | f1) | **\($c.ratio_postcell_vs_postfix_delivered | f2)** | \($pc | arr) | \($pf | arr) | \($pc | late) / \($pf | late) | \($pc | lost) / \($pf | lost) |")
      end)
    ' "$json" >"$md"

echo
cat "$md"
echo
log "results: $json"
log "         $md"
