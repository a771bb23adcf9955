# bench/imap.sh: the result of one run, from the imap-load reports it
# collected (one JSON object per line: server, workload, variant, report).
#
# Each figure says which direction is better ("lower" or "higher") and gives
# ratio = Postcell / Dovecot: with "lower" a ratio below 1 means Postcell is
# ahead, with "higher" a ratio above 1 does.

def run($s; $w; $v): map(select(.server == $s and .workload == $w and .variant == $v)) | first;
def ratio($a; $b): if ($a | type) == "number" and ($b | type) == "number" and $b != 0 then $a / $b else null end;
def ahead($r; $better):
  if $r == null then null elif $better == "lower" then $r < 1 elif $better == "higher" then $r > 1 else null end;
def fig($w; $name; $unit; $better; $pc; $dc; $note):
  ratio($pc; $dc) as $r
  | {workload: $w, figure: $name, unit: $unit, better: $better,
     postcell: $pc, dovecot: $dc, ratio: $r, postcell_ahead: ahead($r; $better), note: $note};
# A figure whose Postcell side is not comparable: no ratio.
def fig_apart($w; $name; $unit; $better; $pc; $dc; $note):
  {workload: $w, figure: $name, unit: $unit, better: $better,
   postcell: $pc, dovecot: $dc, ratio: null, postcell_ahead: null, note: $note};
def mib: if . == null then null else . / 1048576 end;
def kib: if . == null then null else . / 1024 end;
def per_ms($n): if . == null or $n == null or $n == 0 then null else . / $n * 1000 end;
def per($n): if . == null or $n == null or $n == 0 then null else . / $n end;
def mb: if . == null then null else . / 1000000 end;
# search-body: the result of one word on one server.
def word($name): if . == null then null else (.words // []) | map(select(.name == $name)) | first end;
# A mix run at a fixed rate (variant fixed-rate) on both servers: what each
# sustained, how many sessions started late, and the latency of each step.
def at_rate($w; $p_run; $d_run; $steps):
  ($p_run.report.result) as $p | ($d_run.report.result) as $d
  | ($p_run.report.config.rate // $d_run.report.config.rate) as $rate
  | "\($w) at \($rate)/s offered" as $title
  | fig($title; "sessions/s sustained"; "1/s"; "higher"; $p.sessions_per_second; $d.sessions_per_second;
        "open loop: session i due at start + i / \($rate), whatever the answers"),
    fig($title; "late starts"; "sessions"; "lower"; $p.late_starts; $d.late_starts;
        "sessions that found every client busy for more than 10 ms"),
    fig($title; "whole session p50"; "ms"; "lower"; $p.session_ms.p50; $d.session_ms.p50; null),
    fig($title; "whole session p99"; "ms"; "lower"; $p.session_ms.p99; $d.session_ms.p99; null),
    ($steps[] as $c
     | select($p.latency_ms[$c] != null or $d.latency_ms[$c] != null)
     | fig($title; "\($c) p50"; "ms"; "lower"; $p.latency_ms[$c].p50; $d.latency_ms[$c].p50; null),
       fig($title; "\($c) p99"; "ms"; "lower"; $p.latency_ms[$c].p99; $d.latency_ms[$c].p99; null)),
    fig($title; "server CPU per session"; "ms"; "lower";
        ($p_run.report.server.cpu_seconds | per_ms($p.sessions_completed));
        ($d_run.report.server.cpu_seconds | per_ms($d.sessions_completed)); "the whole run: background work too, over fewer sessions than the closed loop");

. as $runs
| ($runs | run("postcell"; "select-fetch-flags"; "")) as $sp
| ($runs | run("dovecot"; "select-fetch-flags"; "")) as $sd
| ($runs | run("postcell"; "imap-mix"; "")) as $mp
| ($runs | run("dovecot"; "imap-mix"; "")) as $md_full
| (($runs | run("dovecot"; "imap-mix"; "same-steps-as-postcell")) // $md_full) as $md
| ($runs | run("postcell"; "idle-memory"; "")) as $ip
| ($runs | run("dovecot"; "idle-memory"; "")) as $id
| ($runs | run("dovecot"; "idle-memory"; "hibernate")) as $ih
| ($runs | run("postcell"; "pop3-mix"; "")) as $pp
| ($runs | run("dovecot"; "pop3-mix"; "")) as $pd
| ($runs | run("postcell"; "imap-mix"; "fixed-rate")) as $mrp
| ($runs | run("dovecot"; "imap-mix"; "fixed-rate")) as $mrd
| ($runs | run("postcell"; "pop3-mix"; "fixed-rate")) as $prp
| ($runs | run("dovecot"; "pop3-mix"; "fixed-rate")) as $prd
| ($runs | run("postcell"; "search-body"; "")) as $bp
| ($runs | run("dovecot"; "search-body"; "")) as $bd
| ($runs | run("postcell"; "mbsync-download"; "")) as $dp
| ($runs | run("dovecot"; "mbsync-download"; "")) as $dd
# What a run must have got right: the hits of each search, the messages of
# each download. A failed check makes imap.sh exit 1.
| [ ($runs[] | select(.workload == "search-body") | .server as $s
      | .report.result.words[]
      | {server: $s, workload: "search-body", check: "hits of \(.command)",
         expected: .expected_hits, got: .hits, ok: .hits_match}),
    ($runs[] | select(.workload == "mbsync-download") | .server as $s
      | .report as $r
      | {server: $s, workload: "mbsync-download", check: "messages in the mailbox, and in the local Maildir after each download",
         expected: $r.config.expect_messages,
         got: ([$r.result.server_messages] + ($r.result.downloads | map(.messages))),
         ok: $r.result.messages_match})
  ] as $checks
| ($mp.report.result.steps_left_out // []) as $left_out
| (if ($left_out | length) > 0 and $md != $md_full
   then "both without \($left_out | join(", ")), which Postcell does not serve yet"
   else null end) as $same_steps
| ($ip.report.result.idle // null) as $pc_idle
| ($id.report.result.idle // null) as $dc_idle
| (if $pc_idle != null and $pc_idle != "supported"
   then "IDLE \($pc_idle) on Postcell (\($ip.report.result.idle_refusal // "")): its \($ip.report.result.held) connections were held selected, not idling; not comparable"
   else null end) as $pc_no_idle
| (if $dc_idle != null and $dc_idle != "supported" then "IDLE \($dc_idle) on Dovecot" else null end) as $dc_no_idle
| {
    benchmark: "imap",
    date: $date,
    machine: ($runs[0].report.machine // $seed[0].machine // null),
    filesystem: $fs,
    load_average_end: $loadend,
    params: {
      big_messages: $big, users: $users, user_messages: $user_messages, size: $size,
      select_fetch_repeat: $repeat, select_fetch_warmup: $warmup,
      idle_connections: $idle, mix_clients: $clients, mix_sessions: $sessions,
      pop3_sessions: $pop3_sessions,
      mix_rate: $mix_rate, mix_rate_sessions: $mix_rate_sessions,
      search_repeat: $repeat,
      search_words: ($seed[0].result.search_words // null),
      large_messages: $large_messages, large_size_bytes: $large_size, mbsync_runs: $mbsync_runs
    },
    versions: {postcell: $pcv, dovecot: $dcv},
    dovecot_passwords: $dcpw,
    seed: ($seed[0] // null),
    ok: ($checks | all(.ok)),
    checks: $checks,
    figures: ([
      if $sp != null or $sd != null then
        ($sp.report.result) as $p | ($sd.report.result) as $d
        | fig("select-fetch-flags"; "SELECT p50"; "ms"; "lower"; $p.select_ms.p50; $d.select_ms.p50; null),
          fig("select-fetch-flags"; "SELECT p99"; "ms"; "lower"; $p.select_ms.p99; $d.select_ms.p99; null),
          fig("select-fetch-flags"; "UID FETCH 1:* (FLAGS) p50"; "ms"; "lower"; $p.fetch_ms.p50; $d.fetch_ms.p50; null),
          fig("select-fetch-flags"; "UID FETCH 1:* (FLAGS) p99"; "ms"; "lower"; $p.fetch_ms.p99; $d.fetch_ms.p99; null),
          fig("select-fetch-flags"; "SELECT + FETCH p50"; "ms"; "lower"; $p.select_plus_fetch_ms.p50; $d.select_plus_fetch_ms.p50; null),
          fig("select-fetch-flags"; "SELECT + FETCH p99"; "ms"; "lower"; $p.select_plus_fetch_ms.p99; $d.select_plus_fetch_ms.p99; null),
          fig("select-fetch-flags"; "server CPU per repetition"; "ms"; "lower";
              ($sp.report.server.cpu_seconds | per_ms($p.repetitions_ok));
              ($sd.report.server.cpu_seconds | per_ms($d.repetitions_ok)); "login, SELECT, FETCH, LOGOUT")
      else empty end,
      if $mp != null or $md != null then
        ($mp.report.result) as $p | ($md.report.result) as $d | ($md_full.report.result) as $f
        | fig("imap-mix"; "sessions/s"; "1/s"; "higher"; $p.sessions_per_second; $d.sessions_per_second; $same_steps),
          fig("imap-mix"; "commands/s"; "1/s"; "higher"; $p.commands_per_second; $d.commands_per_second; $same_steps),
          fig("imap-mix"; "whole session p50"; "ms"; "lower"; $p.session_ms.p50; $d.session_ms.p50; $same_steps),
          fig("imap-mix"; "whole session p99"; "ms"; "lower"; $p.session_ms.p99; $d.session_ms.p99; $same_steps),
          (["connect", "login", "select", "fetch_envelope", "fetch_body", "store", "search", "logout"][] as $c
           | if ($left_out | index($c)) != null then
               fig_apart("imap-mix"; "\($c) p50"; "ms"; "lower"; null; $f.latency_ms[$c].p50;
                 "Postcell: \($p.unsupported[$c] // "left out"); Dovecot's figure is from the run with every step"),
               fig_apart("imap-mix"; "\($c) p99"; "ms"; "lower"; null; $f.latency_ms[$c].p99; null)
             else
               fig("imap-mix"; "\($c) p50"; "ms"; "lower"; $p.latency_ms[$c].p50; $d.latency_ms[$c].p50; null),
               fig("imap-mix"; "\($c) p99"; "ms"; "lower"; $p.latency_ms[$c].p99; $d.latency_ms[$c].p99; null)
             end),
          fig("imap-mix"; "server CPU per session"; "ms"; "lower";
              ($mp.report.server.cpu_seconds | per_ms($p.sessions_completed));
              ($md.report.server.cpu_seconds | per_ms($d.sessions_completed)); $same_steps),
          (if $same_steps != null then
             fig_apart("imap-mix"; "sessions/s, Dovecot with every step"; "1/s"; "higher"; null; $f.sessions_per_second; "the full mix, ENVELOPE included")
           else empty end)
      else empty end,
      if $ip != null or $id != null then
        ($ip.report.result) as $p | ($id.report.result) as $d
        | ($p.held // null) as $k
        | fig_apart("idle-memory"; "IDLE"; ""; ""; $p.idle; $d.idle;
            ([$pc_no_idle, $dc_no_idle] | map(select(. != null)) | join("; ") | if . == "" then null else . end)),
          fig_apart("idle-memory"; "connections held"; ""; ""; $p.held; $d.held; null),
          fig("idle-memory"; "server memory before, PSS"; "MiB"; "lower"; ($p.memory_before.pss_bytes | mib); ($d.memory_before.pss_bytes | mib); "after the other workloads"),
          (if $pc_no_idle == null and $dc_no_idle == null then
             fig("idle-memory"; "server memory with the connections, PSS"; "MiB"; "lower"; ($p.memory_held.pss_bytes | mib); ($d.memory_held.pss_bytes | mib); null),
             fig("idle-memory"; "per IDLE connection, PSS"; "KiB"; "lower"; ($p.pss_per_connection_bytes | kib); ($d.pss_per_connection_bytes | kib); null),
             fig("idle-memory"; "per IDLE connection, RSS"; "KiB"; "lower"; ($p.rss_per_connection_bytes | kib); ($d.rss_per_connection_bytes | kib); "RSS sums count shared pages once per process"),
             (if $ih != null then
                fig("idle-memory"; "per IDLE connection, PSS, Dovecot with IDLE hibernation"; "KiB"; "lower"; ($p.pss_per_connection_bytes | kib); ($ih.report.result.pss_per_connection_bytes | kib); "imap_hibernate_timeout = 5s (off by default)")
              else empty end)
           else
             fig_apart("idle-memory"; "server memory with the connections, PSS"; "MiB"; "lower"; ($p.memory_held.pss_bytes | mib); ($d.memory_held.pss_bytes | mib); $pc_no_idle // $dc_no_idle),
             fig_apart("idle-memory"; "per connection, PSS"; "KiB"; "lower"; ($p.pss_per_connection_bytes | kib); ($d.pss_per_connection_bytes | kib); $pc_no_idle // $dc_no_idle),
             fig_apart("idle-memory"; "per connection, RSS"; "KiB"; "lower"; ($p.rss_per_connection_bytes | kib); ($d.rss_per_connection_bytes | kib); "RSS sums count shared pages once per process"),
             (if $ih != null then
                fig_apart("idle-memory"; "per connection, PSS, Dovecot with IDLE hibernation"; "KiB"; "lower"; ($p.pss_per_connection_bytes | kib); ($ih.report.result.pss_per_connection_bytes | kib); "imap_hibernate_timeout = 5s (off by default)\(if $ih.report.result.idle != "supported" then "; IDLE \($ih.report.result.idle)" else "" end)")
              else empty end)
           end),
          fig("idle-memory"; "server memory after closing them, PSS"; "MiB"; "lower"; ($p.memory_after_close.pss_bytes | mib); ($d.memory_after_close.pss_bytes | mib); "what stays allocated once the connections are gone")
      else empty end,
      if $pp != null or $pd != null then
        ($pp.report.result) as $p | ($pd.report.result) as $d
        | fig("pop3-mix"; "sessions/s"; "1/s"; "higher"; $p.sessions_per_second; $d.sessions_per_second; null),
          fig("pop3-mix"; "whole session p50"; "ms"; "lower"; $p.session_ms.p50; $d.session_ms.p50; null),
          fig("pop3-mix"; "whole session p99"; "ms"; "lower"; $p.session_ms.p99; $d.session_ms.p99; null),
          (["connect", "login", "stat", "uidl", "retr", "quit"][] as $c
           | fig("pop3-mix"; "\($c) p50"; "ms"; "lower"; $p.latency_ms[$c].p50; $d.latency_ms[$c].p50; null),
             fig("pop3-mix"; "\($c) p99"; "ms"; "lower"; $p.latency_ms[$c].p99; $d.latency_ms[$c].p99; null)),
          fig("pop3-mix"; "server CPU per session"; "ms"; "lower";
              ($pp.report.server.cpu_seconds | per_ms($p.sessions_completed));
              ($pd.report.server.cpu_seconds | per_ms($d.sessions_completed)); null)
      else empty end,
      if $mrp != null or $mrd != null then
        at_rate("imap-mix"; $mrp; $mrd; ["connect", "login", "select", "fetch_envelope", "fetch_body", "store", "search", "logout"])
      else empty end,
      if $prp != null or $prd != null then
        at_rate("pop3-mix"; $prp; $prd; ["connect", "login", "stat", "uidl", "retr", "quit"])
      else empty end,
      if $bp != null or $bd != null then
        ($bp.report.result) as $p | ($bd.report.result) as $d
        | ($p.index_catch_up // null) as $c
        | fig_apart("search-body"; "index catch-up before the searches"; "s"; "lower"; $p.index_catch_up_seconds; null;
            if $bp == null then null
            elif $c.present == true and $c.caught_up == true then "until postcell_store_search_pending was 0 (\($c.pending_at_start) pending at the start)"
            elif $c.present == true then "NOT caught up: \($c.pending_at_end) still pending after \($c.waited_seconds | . * 10 | round / 10) s"
            elif $c.present == false then "postcell_store_search_pending not on /metrics: no wait"
            else "no wait" end),
          (["english", "japanese"][] as $name
           | ($p | word($name)) as $pw | ($d | word($name)) as $dw
           | (if $name == "english" then "BODY xylophone" else "CHARSET UTF-8 BODY 会議室" end) as $what
           | fig("search-body"; "\($what), first search"; "ms"; "lower"; $pw.cold_ms; $dw.cold_ms;
               "cold: the first search for the word" + (if $dw != null then "; Dovecot without fts reads every message" else "" end)),
             fig("search-body"; "\($what) p50"; "ms"; "lower"; $pw.repeat_ms.p50; $dw.repeat_ms.p50; "of the \($repeat) searches after the first"),
             fig("search-body"; "\($what) p90"; "ms"; "lower"; $pw.repeat_ms.p90; $dw.repeat_ms.p90; null),
             fig_apart("search-body"; "\($what) hits"; ""; ""; $pw.hits; $dw.hits;
               "expected \(($pw // $dw).expected_hits)"
               + ([(if $pw != null and ($pw.hits_match | not) then "Postcell" else empty end),
                   (if $dw != null and ($dw.hits_match | not) then "Dovecot" else empty end)]
                  | if length > 0 then ": MISMATCH on \(join(" and "))" else ", found by every search" end)
               + (if $name == "japanese" and $pw.literal != null and $dw.literal != null and $pw.literal != $dw.literal
                  then "; literal \($pw.literal) on Postcell, \($dw.literal) on Dovecot"
                  elif $name == "japanese" and ($pw // $dw).literal != null then "; \(($pw // $dw).literal) literal"
                  else "" end))),
          fig("search-body"; "server CPU per search"; "ms"; "lower";
              ($bp.report.server.cpu_seconds | per_ms($p.words // [] | map(.runs_ok) | add));
              ($bd.report.server.cpu_seconds | per_ms($d.words // [] | map(.runs_ok) | add)); "login, CAPABILITY, SELECT, SEARCH, LOGOUT")
      else empty end,
      if $dp != null or $dd != null then
        ($dp.report.result) as $p | ($dd.report.result) as $d
        | fig("mbsync-download"; "download time"; "s"; "lower"; $p.first_seconds; $d.first_seconds;
            "the first run, into an empty Maildir: mbsync start to exit"),
          fig("mbsync-download"; "throughput"; "MB/s"; "higher"; $p.first_megabytes_per_second; $d.first_megabytes_per_second;
            "mailbox bytes / download time, 1 MB = 10^6 bytes"),
          (if $mbsync_runs > 1 then
             fig("mbsync-download"; "download time, median of \($mbsync_runs)"; "s"; "lower"; $p.seconds.p50; $d.seconds.p50; null),
             fig("mbsync-download"; "throughput, median of \($mbsync_runs)"; "MB/s"; "higher"; $p.median_megabytes_per_second; $d.median_megabytes_per_second; null)
           else empty end),
          fig_apart("mbsync-download"; "mailbox"; "MB"; ""; ($p.mailbox_bytes | mb); ($d.mailbox_bytes | mb);
            "sum of RFC822.SIZE; Postcell's messages also hold the trace headers it added at delivery"),
          fig_apart("mbsync-download"; "messages downloaded"; ""; ""; $p.downloads[0].messages; $d.downloads[0].messages;
            "expected \(($dp // $dd).report.config.expect_messages)"
            + ([(if $dp != null and ($p.messages_match | not) then "Postcell" else empty end),
                (if $dd != null and ($d.messages_match | not) then "Dovecot" else empty end)]
               | if length > 0 then ": MISMATCH on \(join(" and "))" else "" end)),
          fig("mbsync-download"; "server CPU per download"; "s"; "lower";
              ($dp.report.server.cpu_seconds | per($p.runs_ok)); ($dd.report.server.cpu_seconds | per($d.runs_ok)); null),
          fig_apart("mbsync-download"; "mbsync CPU per download"; "s"; "lower";
              ($p.downloads // [] | map(.mbsync_cpu_seconds) | add | per($p.runs_ok));
              ($d.downloads // [] | map(.mbsync_cpu_seconds) | add | per($d.runs_ok)); "the client's own CPU, for the record")
      else empty end
    ]),
    conditions: [$runs[] | {
      server, workload, variant, exit_status,
      elapsed_seconds: .report.elapsed_seconds,
      generator_cpu_seconds: .report.generator_cpu_seconds,
      server_cpu_seconds: (.report.server.cpu_seconds // null),
      load_average_start: .report.load_average_start,
      load_average_end: .report.load_average_end,
      errors: .report.errors
    }],
    runs: $runs
  }
