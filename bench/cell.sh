#!/usr/bin/env bash
# Cell benchmark: SMTP delivery throughput and the 50-client IMAP mix against
# one Postcell node and against three nodes sharing one PostgreSQL, on this
# machine (127.0.0.1 only). The PostgreSQL is a private one, started by this
# script on a free port in a temporary folder, from /usr/lib/postgresql/*/bin.
#
#   bench/cell.sh [options]
#
# Options (each also settable through the environment variable shown):
#   --nodes "A B"           LAYOUTS           node counts, one layout each ("1 3")
#   --messages N            MESSAGES          SMTP messages per run (2000)
#   --size S                SIZE              message size (4k)
#   --connections C         CONNECTIONS       SMTP connections, spread over the nodes (50)
#   --users N               USERS             accounts (50)
#   --user-messages N       USER_MESSAGES     messages seeded per account for the mix (200)
#   --clients N             CLIENTS           IMAP mix clients, sessions spread over the nodes (50)
#   --sessions N            SESSIONS          IMAP mix sessions (1000)
#   --mix-seed N            MIX_SEED          seed of the mix's choices (20261201)
#   --max-seconds S         MAX_SECONDS       hard bound per load run (600)
#   --pg-bin DIR            PG_BIN            PostgreSQL programs (newest /usr/lib/postgresql/*/bin)
#   --work DIR              WORK              scratch directory (default: mktemp -d)
#   --results-dir DIR       RESULTS_DIR       where the JSON/Markdown go (bench/results)
#   --keep                  KEEP=1            keep WORK (logs, configs) at the end
#   --no-build              BUILD=0           use the binaries already built
#                           PROFILE           cargo profile: release, or debug (figures
#                                             then mean nothing; to try the script)
#   -h, --help
#
# Writes RESULTS_DIR/cell-DATE.json and .md and prints the Markdown table.
# See bench/README.md ("cell.sh") for what each figure means.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LAYOUTS=${LAYOUTS:-"1 3"}
MESSAGES=${MESSAGES:-2000}
SIZE=${SIZE:-4k}
CONNECTIONS=${CONNECTIONS:-50}
USERS=${USERS:-50}
USER_MESSAGES=${USER_MESSAGES:-200}
CLIENTS=${CLIENTS:-50}
SESSIONS=${SESSIONS:-1000}
MIX_SEED=${MIX_SEED:-20261201}
MAX_SECONDS=${MAX_SECONDS:-600}
PG_BIN=${PG_BIN:-}
PROFILE=${PROFILE:-release}

DOMAIN=bench.test
PASSWORD=secret

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
    --nodes) LAYOUTS=$2; shift 2 ;;
    --messages) MESSAGES=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --users) USERS=$2; shift 2 ;;
    --user-messages) USER_MESSAGES=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --sessions) SESSIONS=$2; shift 2 ;;
    --mix-seed) MIX_SEED=$2; shift 2 ;;
    --max-seconds) MAX_SECONDS=$2; shift 2 ;;
    --pg-bin) PG_BIN=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --results-dir) RESULTS_DIR=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

LAYOUTS=${LAYOUTS//,/ }
case $PROFILE in
release) CARGO_PROFILE=release PROFILE_DIR=release ;;
debug | dev) CARGO_PROFILE=dev PROFILE_DIR=debug ;;
*) echo "PROFILE must be release or debug, not '$PROFILE'" >&2; exit 2 ;;
esac
for v in MESSAGES CONNECTIONS USERS USER_MESSAGES CLIENTS SESSIONS MIX_SEED MAX_SECONDS; do
    is_uint "${!v}" || { echo "$v must be a whole number, not '${!v}'" >&2; exit 2; }
done
for n in $LAYOUTS; do
    if ! is_uint "$n" || [[ $n -lt 1 || $n -gt 9 ]]; then echo "bad node count '$n' (1 to 9)" >&2; exit 2; fi
done
[[ $MESSAGES -ge 1 && $USERS -ge 1 && $USER_MESSAGES -ge 20 ]] \
    || { echo "need MESSAGES >= 1, USERS >= 1, USER_MESSAGES >= 20 (the mix fetches 20 envelopes)" >&2; exit 2; }


command -v jq >/dev/null || die "jq is needed (apt-get install -y jq)"
if [[ -z $PG_BIN ]]; then
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
[[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl ]] || die "no PostgreSQL programs in '$PG_BIN' (apt-get install -y postgresql, or --pg-bin)"

# ---------------------------------------------------------------- scratch
WORK_CREATED=0
if [[ -z $WORK ]]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/postcell-cell-bench.XXXXXX")
    WORK_CREATED=1
elif [[ ! -e $WORK ]]; then
    mkdir -p "$WORK"
    WORK_CREATED=1
fi
WORK=$(cd "$WORK" && pwd)
chmod 755 "$WORK"

# initdb and postgres refuse to run as root: they run as the postgres user then.
AS_PG=()
if [[ $EUID -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' system user for the database"
    AS_PG=(runuser -u postgres --)
fi

PG_DATA=$WORK/pg/data
PG_SOCK=$WORK/pg/sock
PG_PORT=
PG_STARTED=0
NODE_PIDS=()

stop_nodes() {
    local pid i
    for pid in "${NODE_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${NODE_PIDS[@]}"; do
        for ((i = 0; i < 200; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "node $pid did not stop within 20 s of SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    NODE_PIDS=()
}

stop_pg() {
    [[ $PG_STARTED == 1 ]] || return 0
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 >/dev/null 2>&1 || true
    PG_STARTED=0
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_nodes
    stop_pg
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


# ---------------------------------------------------------------- build
if [[ $BUILD == 1 ]]; then
    log "building postcell and postcell-bench ($PROFILE)"
    (cd "$ROOT" && cargo build --profile "$CARGO_PROFILE" -p postcell -p postcell-bench) >&2
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
POSTCELL=$TARGET_DIR/$PROFILE_DIR/postcell
SMTP_LOAD=$TARGET_DIR/$PROFILE_DIR/smtp-load
IMAP_LOAD=$TARGET_DIR/$PROFILE_DIR/imap-load
for b in "$POSTCELL" "$SMTP_LOAD" "$IMAP_LOAD"; do
    [[ -x $b ]] || die "$b not found (cargo build --profile $CARGO_PROFILE -p postcell -p postcell-bench)"
done
[[ $PROFILE == release ]] || log "warning: $PROFILE build: the figures mean nothing"
export IMAP_LOAD_PASSWORD=$PASSWORD

# ---------------------------------------------------------------- PostgreSQL
# As a production cell would run it: fsync on (the tests turn it off; a
# benchmark must not), synchronous_commit on, everything else as shipped but
# the connection limit (every node's pool of 20, the change-feed listeners,
# the command line).
start_pg() {
    mkdir -p "$PG_DATA" "$PG_SOCK"
    chmod 700 "$PG_DATA"
    [[ ${#AS_PG[@]} -gt 0 ]] && chown postgres "$PG_DATA" "$PG_SOCK" "$WORK/pg"
    "${AS_PG[@]}" "$PG_BIN/initdb" -A trust -U postgres -E UTF8 --locale=C -D "$PG_DATA" \
        >"$WORK/pg-initdb.log" 2>&1 || { cat "$WORK/pg-initdb.log" >&2; die "initdb failed"; }
    local attempt
    for attempt in 1 2 3 4 5; do
        PG_PORT=$(free_port) || die "no free port"
        if "${AS_PG[@]}" "$PG_BIN/pg_ctl" start -w -t 60 -D "$PG_DATA" -l "$WORK/pg/server.log" \
            -o "-p $PG_PORT -k $PG_SOCK -c listen_addresses=127.0.0.1 -c max_connections=300" \
            >/dev/null 2>&1; then
            PG_STARTED=1
            log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
            return 0
        fi
    done
    tail -n 20 "$WORK/pg/server.log" >&2 || true
    die "PostgreSQL did not start"
}
psql_pg() { "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }

start_pg
PG_VERSION=$("$PG_BIN/postgres" --version | awk '{print $3}')

users_file=$WORK/users.txt
: >"$users_file"
mailbox_args=()
for ((i = 1; i <= USERS; i++)); do
    echo "user$i@$DOMAIN" >>"$users_file"
    mailbox_args+=(--mailbox "user$i@$DOMAIN=$USER_MESSAGES")
done

RUNS=$WORK/runs.jsonl
: >"$RUNS"

# bench_layout N: a fresh database, N nodes on it, the seed, the SMTP run and
# the IMAP mix; one line in $RUNS.
bench_layout() {
    local n=$1 db=cell$1 dir=$WORK/cell$1 i url smtp_targets=() imap_targets=() pids=()
    local smtp_ports=() imap_ports=() http_ports=()
    log "== $n node(s) on one PostgreSQL =="
    psql_pg -c "CREATE DATABASE $db" postgres >/dev/null || die "CREATE DATABASE $db failed"
    url="postgres://postgres@127.0.0.1:$PG_PORT/$db"
    mkdir -p "$dir/blobs"
    for ((i = 1; i <= n; i++)); do
        local node=$dir/node-$i
        "$POSTCELL" init --dir "$node" --domain "$DOMAIN" --hostname "node$i.$DOMAIN" \
            >"$dir/init-$i.log" 2>&1 || { cat "$dir/init-$i.log" >&2; die "postcell init failed"; }
        smtp_ports[i]=$(free_port) || die "no free port"
        imap_ports[i]=$(free_port) || die "no free port"
        http_ports[i]=$(free_port) || die "no free port"
        # Every node as the cell docs describe: the same store, its own id and
        # listeners; no relay (nothing here leaves the machine), static DNS, no
        # sender verification (loopback senders have no SPF to check).
        cat >"$node/postcell.toml" <<EOF
[node]
id = "node-$i"
hostname = "node$i.$DOMAIN"

[store]
backend = "postgres"
url = "$url"
blobs = "folder"
blob_dir = "$dir/blobs"

[listen]
smtp = "127.0.0.1:${smtp_ports[i]}"
imap = "127.0.0.1:${imap_ports[i]}"
http = "127.0.0.1:${http_ports[i]}"

[imap]
max_connections = $((CLIENTS + 100))

[dns]
resolver = "static"

[mx]
verify = false

[relay]
enabled = false

[log]
level = "warn"
EOF
        smtp_targets+=(--target "127.0.0.1:${smtp_ports[i]}")
        imap_targets+=(--target "127.0.0.1:${imap_ports[i]}")
    done
    local first=$dir/node-1/postcell.toml
    "$POSTCELL" --config "$first" domain add "$DOMAIN" >>"$dir/init-1.log" 2>&1 \
        || { cat "$dir/init-1.log" >&2; die "domain add failed"; }
    log "adding $USERS accounts"
    for ((i = 1; i <= USERS; i++)); do
        echo "$PASSWORD" | "$POSTCELL" --config "$first" user add "user$i@$DOMAIN" --password-stdin \
            >>"$dir/init-1.log" 2>&1 || { cat "$dir/init-1.log" >&2; die "user add user$i failed"; }
    done
    for ((i = 1; i <= n; i++)); do
        "$POSTCELL" --config "$dir/node-$i/postcell.toml" serve >"$dir/node-$i.log" 2>&1 &
        NODE_PIDS+=($!)
        pids+=(--server-pid "$!")
    done
    for ((i = 1; i <= n; i++)); do
        wait_port "${smtp_ports[i]}" 60 "${NODE_PIDS[i - 1]}" && wait_port "${imap_ports[i]}" 60 \
            || { tail -n 30 "$dir/node-$i.log" >&2; die "node $i did not listen"; }
    done

    # The mix's mailboxes, delivered over SMTP through the first node.
    local seed=$dir/seed.json rc=0
    log "seeding $USERS x $USER_MESSAGES messages through node 1; load average $(load_average)"
    "$IMAP_LOAD" seed --maildir-root "$dir/maildirs" "${mailbox_args[@]}" --size "$SIZE" \
        --smtp "127.0.0.1:${smtp_ports[1]}" --connections 20 --max-seconds 3600 --json >"$seed" || rc=$?
    jq -e '.result.smtp.delivered == .result.messages' "$seed" >/dev/null 2>&1 \
        || die "seeding failed (exit $rc)"
    rm -rf "$dir/maildirs"

    # The mix first: smtp-load's messages carry subjects like the seed's, and the
    # mix's SEARCH must find exactly one message.
    local smtp_out=$dir/smtp.json mix_out=$dir/mix.json
    rc=0
    log "IMAP mix: $CLIENTS clients, $SESSIONS sessions spread over $n node(s); load average $(load_average)"
    "$IMAP_LOAD" imap-mix "${imap_targets[@]}" --users-file "$users_file" --clients "$CLIENTS" \
        --sessions "$SESSIONS" --seed "$MIX_SEED" "${pids[@]}" --max-seconds "$MAX_SECONDS" \
        --io-timeout 300 --label "cell-$n" --json >"$mix_out" 2>"$mix_out.err" || rc=$?
    jq -e .result "$mix_out" >/dev/null 2>&1 || { cat "$mix_out.err" >&2; die "imap-load gave no report (exit $rc)"; }
    [[ $rc -eq 0 ]] || log "warning: imap-mix: $(jq -r '.errors' "$mix_out") errors"
    log "IMAP mix: $(jq -r '.result.sessions_per_second | . * 10 | round / 10' "$mix_out") sessions/s"

    rc=0
    local smtp_load_before smtp_load_after
    smtp_load_before=$(load_average)
    log "SMTP: $MESSAGES x $SIZE over $CONNECTIONS connections spread over $n node(s); load average $(load_average)"
    "$SMTP_LOAD" "${smtp_targets[@]}" --messages "$MESSAGES" --size "$SIZE" \
        --connections "$CONNECTIONS" --recipients-file "$users_file" --from loadgen@load.test \
        --helo load.test --max-seconds "$MAX_SECONDS" --label "cell-$n" --json >"$smtp_out" || rc=$?
    smtp_load_after=$(load_average)
    jq -e .result "$smtp_out" >/dev/null 2>&1 || die "smtp-load gave no report (exit $rc)"
    [[ $rc -eq 0 ]] || log "warning: smtp-load: $(jq -r '.result | "\(.accepted) accepted, \(.errors) errors"' "$smtp_out")"
    log "SMTP: $(jq -r '.result.messages_per_second | . * 10 | round / 10' "$smtp_out") messages/s"

    # Every node took its share (a node that served nothing would fake a layout).
    local per_node
    local since
    since=$(jq '.started_unix | floor' "$smtp_out")
    per_node=$(psql_pg -At -F '=' -c "SELECT node, COUNT(*) FROM delivery_log WHERE status = 'delivered' AND at >= $since GROUP BY node ORDER BY node" "$db" | tr '\n' ' ')
    log "deliveries per node: $per_node"
    stop_nodes
    jq -c -n --argjson nodes "$n" --arg per_node "$per_node" \
        --arg smtp_load "$smtp_load_before → $smtp_load_after" \
        --slurpfile smtp "$smtp_out" --slurpfile mix "$mix_out" --slurpfile seed "$seed" \
        '{nodes: $nodes, deliveries_per_node: $per_node, smtp_load_average: $smtp_load,
          smtp: $smtp[0], mix: $mix[0], seed: $seed[0]}' >>"$RUNS"
}

STARTED_LOAD=$(load_average)
for n in $LAYOUTS; do
    bench_layout "$n"
done
ENDED_LOAD=$(load_average)

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RESULTS_DIR"
json=$RESULTS_DIR/cell-$stamp.json
md=$RESULTS_DIR/cell-$stamp.md
jq -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg pg "$PG_VERSION" --arg profile "$PROFILE" \
    --arg load_start "$STARTED_LOAD" --arg load_end "$ENDED_LOAD" \
    --arg fs "$(df -PT "$WORK" | awk 'NR == 2 { print $2 }')" '
    def figures: {
        nodes,
        smtp_messages_per_second: .smtp.result.messages_per_second,
        smtp_accepted: .smtp.result.accepted,
        smtp_errors: .smtp.result.errors,
        smtp_end_of_data_p50_ms: .smtp.result.latency_end_of_data_ms.p50,
        smtp_end_of_data_p99_ms: .smtp.result.latency_end_of_data_ms.p99,
        smtp_load_average,
        mix_sessions_per_second: .mix.result.sessions_per_second,
        mix_commands_per_second: .mix.result.commands_per_second,
        mix_errors: .mix.errors,
        mix_session_p50_ms: .mix.result.session_ms.p50,
        mix_session_p99_ms: .mix.result.session_ms.p99,
        mix_load_average_start: .mix.load_average_start,
        mix_load_average_end: .mix.load_average_end,
        mix_server_cpu_seconds: .mix.server.cpu_seconds,
        deliveries_per_node
    };
    (map(figures)) as $f
    | ($f | map(select(.nodes == 1)) | first) as $one
    | ($f | map(select(.nodes != 1)) | last) as $many
    | {
        benchmark: "cell",
        date: $date,
        profile: $profile,
        machine: .[0].smtp.machine,
        filesystem: $fs,
        postgresql: $pg,
        load_average_start: $load_start,
        load_average_end: $load_end,
        layouts: $f,
        scaling: (if $one and $many then {
            nodes: $many.nodes,
            smtp: ($many.smtp_messages_per_second / $one.smtp_messages_per_second),
            imap_mix: ($many.mix_sessions_per_second / $one.mix_sessions_per_second)
        } else null end),
        runs: .
    }' "$RUNS" >"$json"

jq -r '
    def r1: . * 10 | round / 10;
    def r2: . * 100 | round / 100;
    "# Cell benchmark, \(.date)\n",
    "\(.machine.cpu_model), \(.machine.cores) cores, \(.machine.memory_total_bytes / 1073741824 | r1) GiB · \(.filesystem) · PostgreSQL \(.postgresql) (private, fsync on) · \(.profile) build · load average at the start \(.load_average_start), at the end \(.load_average_end)\n",
    "SMTP: \(.runs[0].smtp.config.messages) messages of \(.runs[0].smtp.config.size_bytes) bytes over \(.runs[0].smtp.config.connections) connections spread evenly over the nodes; 250 means committed to the mailbox. IMAP mix: \(.runs[0].mix.config.clients // "?") clients, sessions spread evenly over the nodes (LOGIN, SELECT, 20 envelopes, 5 bodies, STORE, SEARCH, LOGOUT). Every node, the load generators and PostgreSQL share the same machine.\n",
    "| nodes | SMTP msg/s | SMTP end-of-DATA p50 / p99 ms | IMAP mix sessions/s | commands/s | session p50 / p99 ms | errors (SMTP, IMAP) | load average during the mix | during SMTP | deliveries per node (SMTP run) |",
    "|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    (.layouts[] | "| \(.nodes) | \(.smtp_messages_per_second | r1) | \(.smtp_end_of_data_p50_ms | r1) / \(.smtp_end_of_data_p99_ms | r1) | \(.mix_sessions_per_second | r1) | \(.mix_commands_per_second | r1) | \(.mix_session_p50_ms | r1) / \(.mix_session_p99_ms | r1) | \(.smtp_errors), \(.mix_errors) | \(.mix_load_average_start // [] | map(r2) | join(" ")) → \(.mix_load_average_end // [] | map(r2) | join(" ")) | \(.smtp_load_average) | \(.deliveries_per_node) |"),
    "",
    (if .scaling then "Scaling, \(.scaling.nodes) nodes / 1 node: SMTP \(.scaling.smtp | r2), IMAP mix \(.scaling.imap_mix | r2)." else "" end)
' "$json" >"$md"

cat "$md"
log "wrote $json and $md"
