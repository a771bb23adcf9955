# bench/imap.sh: the Markdown table of a result written by imap-report.jq.

def num: if . == null then "–"
  elif type == "number" then
    (if . >= 100 then (. * 10 | round / 10) elif . >= 1 then (. * 100 | round / 100) else (. * 1000 | round / 1000) end | tostring)
  else tostring end;
def ratio: if . == null then "–" else (. * 100 | round / 100 | tostring) end;
def mark: if .postcell_ahead == true then " (Postcell ahead)" elif .postcell_ahead == false then " (Dovecot ahead)" else "" end;
def better: if .better == "lower" then "lower" elif .better == "higher" then "higher" else "" end;
def load: if . == null then "?" else map(. * 100 | round / 100 | tostring) | join(" ") end;
def procs: if . == null then "–" else to_entries | map("\(.key) ×\(.value.processes)") | join(", ") end;

. as $r
| ($r.runs | map(select(.server == "dovecot" and .workload == "idle-memory")) | first) as $id
| ($r.runs | map(select(.server == "postcell" and .workload == "idle-memory")) | first) as $ip
| "## IMAP and POP3: Postcell vs Dovecot",
  "",
  "\($r.date) · \($r.machine.cpu_model // "unknown CPU"), \($r.machine.cores // "?") cores, \((($r.machine.memory_total_bytes // 0) / 1073741824 * 10 | round / 10)) GiB · \($r.filesystem) · Postcell \($r.versions.postcell // "–") · Dovecot \($r.versions.dovecot // "–") · load average at the end \($r.load_average_end)",
  "",
  "Mailboxes: `big@bench.test` with \($r.params.big_messages) messages (select-fetch-flags, search-body\(if $r.params.search_words then ": 1 in 100 with \"xylophone\" in a plain-text body, another 1 in 100 with \"会議室\" in a base64 UTF-8 body" else "" end)), \($r.params.users) accounts with \($r.params.user_messages) each (imap-mix, pop3-mix, idle-memory); \($r.params.size) messages"
    + (if $r.params.large_messages then "; `large@bench.test` with \($r.params.large_messages) messages of \($r.params.large_size_bytes) bytes (mbsync-download)" else "" end)
    + (if $r.seed then ", generated once: written as Maildir files (Dovecot's) in \($r.seed.result.maildir_seconds | num) s"
         + (if $r.seed.result.smtp then ", and the same files delivered to Postcell over SMTP (its mx listener, \($r.seed.config.connections) connections) in \($r.seed.result.smtp.seconds | num) s (\($r.seed.result.smtp.messages_per_second | num) messages/s)" else "" end)
       else "" end) + ".",
  "select-fetch-flags: \($r.params.select_fetch_repeat) measured repetitions after \($r.params.select_fetch_warmup) unmeasured, each a new connection. imap-mix: \($r.params.mix_clients) clients, \($r.params.mix_sessions) sessions, after one unmeasured pass over every mailbox. pop3-mix: \($r.params.mix_clients) clients, \($r.params.pop3_sessions // "–") sessions (USER/PASS, STAT, UIDL, 3 × RETR, QUIT), client c always on account c. \(if ($r.params.mix_rate // 0) > 0 then "Then each mix once more, open loop: \($r.params.mix_rate_sessions) sessions offered at \($r.params.mix_rate)/s to each server (the same load on both, so that their step latencies compare). " else "" end)idle-memory: \($r.params.idle_connections) connections. search-body: for each word, one search then \($r.params.search_repeat // "–") more, each on a new connection (LOGIN, SELECT untimed; the SEARCH timed to its tagged OK). mbsync-download: \($r.params.mbsync_runs // "–") run(s) of mbsync into an empty Maildir. Dovecot passwords: \($r.dovecot_passwords // "–").",
  "",
  "Ratio = Postcell / Dovecot. Where lower is better, a ratio below 1 means Postcell is ahead; where higher is better, above 1.",
  "",
  "| workload | figure | better | Postcell | Dovecot | Postcell / Dovecot | note |",
  "|---|---|---|---:|---:|---:|---|",
  ($r.figures[]
    | "| \(.workload) | \(.figure)\(if .unit != "" then " (\(.unit))" else "" end) | \(better) | \(.postcell | num) | \(.dovecot | num) | \(.ratio | ratio)\(mark) | \(.note // "") |"),
  "",
  (if ($r.checks // []) | length > 0 then
     "Checks (\(if $r.ok then "all passed" else "FAILED: the script exits 1" end)):",
     "",
     "| server | workload | check | expected | got | |",
     "|---|---|---|---:|---|---|",
     ($r.checks[] | "| \(.server) | \(.workload) | \(.check) | \(.expected) | \(.got | if type == "array" then map(tostring) | join(", ") else tostring end) | \(if .ok then "ok" else "**FAILED**" end) |"),
     ""
   else empty end),
  (if $id != null then
     "Dovecot's memory is the sum over all its processes (\($id.report.result.memory_held.by_name | procs) with the connections held); Postcell's is its one process. PSS divides each shared page among the processes sharing it; RSS counts it in each."
   else empty end),
  "",
  "Conditions of each run (the machine is shared: other work raises the load average and the figures' noise):",
  "",
  "| server | workload | variant | elapsed (s) | imap-load CPU (s) | server CPU (s) | load average start → end | errors |",
  "|---|---|---|---:|---:|---:|---|---:|",
  ($r.conditions[]
    | "| \(.server) | \(.workload) | \(if .variant == "" then "–" else .variant end) | \(.elapsed_seconds | num) | \(.generator_cpu_seconds | num) | \(.server_cpu_seconds | num) | \(.load_average_start | load) → \(.load_average_end | load) | \(.errors) |")
