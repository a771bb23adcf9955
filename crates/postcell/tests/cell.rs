//! Cell tests: one real PostgreSQL, three `postcell serve` nodes on 127.0.0.2, .3 and
//! .4 sharing one blob folder (the harness is `postcell_testkit::cell`), and real
//! clients: a node killed with SIGKILL under SMTP load, the POP3 maildrop lease across
//! nodes, a drain, a database outage, once-per-cell jobs, and HAProxy in front of the
//! cell with health checks on /readyz and the PROXY protocol.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cell::{
    Smtp, accepted, account, assert_uids_and_quota, cell, readyz, send, status_line,
    stored_message_ids,
};
use postcell_testkit::cell::{Cell, PASSWORD, Service, eventually};

/// POP3 USER/PASS; the reply to PASS.
fn pop3_login(addr: SocketAddr, user: &str) -> (BufReader<TcpStream>, String) {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("+OK"), "greeting {line:?}");
    let command = |reader: &mut BufReader<TcpStream>, text: &str| {
        reader
            .get_mut()
            .write_all(format!("{text}\r\n").as_bytes())
            .unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    };
    let user_reply = command(&mut reader, &format!("USER {user}"));
    assert!(user_reply.starts_with("+OK"), "{user_reply}");
    let pass = command(&mut reader, &format!("PASS {PASSWORD}"));
    (reader, pass)
}

fn pop3_command(reader: &mut BufReader<TcpStream>, text: &str) -> String {
    reader
        .get_mut()
        .write_all(format!("{text}\r\n").as_bytes())
        .unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

#[test]
fn smtp_deliveries_over_three_nodes_survive_a_sigkill_of_one() {
    const THREADS: usize = 6;
    const PER_THREAD: usize = 40;
    let mut cell = cell(|_| {});
    for i in 0..5 {
        cell.add_user(&account(i));
    }
    let addrs: Vec<SocketAddr> = (0..3).map(|i| cell.node(i).addr(Service::Smtp)).collect();
    // (message id, acknowledged, node index)
    let attempts: Arc<Mutex<Vec<(String, bool, usize)>>> = Arc::default();
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (addrs, attempts, acknowledged) =
                (addrs.clone(), attempts.clone(), acknowledged.clone());
            std::thread::spawn(move || {
                for k in 0..PER_THREAD {
                    let to = account(k % 5);
                    // A client whose node fails tries the next one, as a sending MTA
                    // tries the next MX, each time under a new Message-ID.
                    for attempt in 0..6 {
                        let node = (t + k + attempt) % 3;
                        let id = format!("cell-{t}-{k}-{attempt}@load.example.net");
                        let reply = send(addrs[node], &to, &id);
                        let ok = reply.as_deref().is_ok_and(accepted);
                        attempts.lock().unwrap().push((id, ok, node));
                        if ok {
                            acknowledged.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(60), || acknowledged
            .load(Ordering::SeqCst)
            >= THREADS * PER_THREAD / 3),
        "the load did not get going:\n{}",
        cell.logs()
    );
    cell.node_mut(1).kill();
    for thread in threads {
        thread.join().expect("a client thread panicked");
    }
    let attempts = attempts.lock().unwrap();
    let stored = stored_message_ids(&cell);
    let acked: Vec<&(String, bool, usize)> = attempts.iter().filter(|a| a.1).collect();
    assert_eq!(
        acked.len(),
        THREADS * PER_THREAD,
        "some messages never got a 250"
    );
    assert!(
        acked.iter().any(|a| a.2 == 1),
        "node B acknowledged nothing before it died"
    );
    for (id, ok, node) in attempts.iter() {
        let count = stored.get(id.as_str()).copied().unwrap_or(0);
        if *ok {
            assert_eq!(
                count, 1,
                "{id} got 250 from node {node} and is stored {count} times"
            );
        } else {
            assert!(count <= 1, "{id} is stored {count} times");
        }
    }
    assert_uids_and_quota(&cell);
    // Any surviving node shows the same maildrop.
    for user in [account(0), account(3)] {
        let expected: usize = cell
            .sql(&format!(
                "SELECT COUNT(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
                 JOIN accounts a ON a.id = b.account_id WHERE a.name = '{user}'"
            ))
            .trim()
            .parse()
            .unwrap();
        for node in [0, 2] {
            let (mut pop, pass) = pop3_login(cell.node(node).addr(Service::Pop3), &user);
            assert!(pass.starts_with("+OK"), "{pass}");
            let stat = pop3_command(&mut pop, "STAT");
            assert!(
                stat.starts_with(&format!("+OK {expected} ")),
                "node {node}: {stat}, expected {expected} messages"
            );
            pop3_command(&mut pop, "QUIT");
        }
    }
    // Three missed one-second heartbeats make it down, not stopped.
    assert!(
        eventually(Duration::from_secs(6), || status_line(&cell, "node-b")
            .contains("\tDOWN\t")),
        "{}",
        status_line(&cell, "node-b")
    );
}

#[test]
fn the_pop3_maildrop_lease_holds_across_nodes_and_expires_with_its_node() {
    let mut cell = cell(|_| {});
    cell.add_user(&account(0));
    let to = account(0);
    assert!(accepted(
        &send(cell.node(1).addr(Service::Smtp), &to, "m1@x").unwrap()
    ));
    let (mut on_a, pass) = pop3_login(cell.node(0).addr(Service::Pop3), &to);
    assert!(pass.starts_with("+OK"), "{pass}");
    let (_, on_c) = pop3_login(cell.node(2).addr(Service::Pop3), &to);
    assert!(on_c.starts_with("-ERR [IN-USE]"), "{on_c}");
    assert!(pop3_command(&mut on_a, "STAT").starts_with("+OK 1 "));
    cell.node_mut(0).kill();
    // Nothing released the lock: it is still node A's session's until it expires.
    let holder = cell.sql("SELECT owner FROM leases WHERE name LIKE 'pop3:maildrop:%'");
    assert!(holder.starts_with("node-a:"), "{holder}");
    let killed = Instant::now();
    let mut logged_in = None;
    while killed.elapsed() < Duration::from_secs(15) {
        let (mut pop, pass) = pop3_login(cell.node(2).addr(Service::Pop3), &to);
        if pass.starts_with("+OK") {
            assert!(pop3_command(&mut pop, "STAT").starts_with("+OK 1 "));
            pop3_command(&mut pop, "QUIT");
            logged_in = Some(killed.elapsed());
            break;
        }
        assert!(pass.starts_with("-ERR [IN-USE]"), "{pass}");
        std::thread::sleep(Duration::from_millis(250));
    }
    let after = logged_in.expect("node C never got the maildrop after node A died");
    // The lease is 3 s; the rest is headroom for logins on a busy machine (each one an
    // argon2 check), still far below the default lease of a minute.
    assert!(after <= Duration::from_secs(10), "took {after:?}");
}

#[test]
fn a_drained_node_fails_readyz_refuses_new_connections_and_finishes_its_sessions() {
    let mut cell = cell(|_| {});
    cell.add_user(&account(0));
    let to = account(0);
    let b_smtp = cell.node(1).addr(Service::Smtp);
    assert_eq!(readyz(&cell, 1), 200);
    assert_eq!(
        cell.node(1).http_get("/healthz").unwrap(),
        (200, "ok\n".to_owned())
    );
    // A message half sent to B, and an idle POP3 session on B.
    let mut open = Smtp::connect(b_smtp).unwrap();
    open.begin(&to, "in-flight@x").unwrap().unwrap();
    let (mut idle_pop, pass) = pop3_login(cell.node(1).addr(Service::Pop3), &to);
    assert!(pass.starts_with("+OK"), "{pass}");

    // Drained from node A's command line, through the store.
    let out = cell.node(0).cli_ok(&["drain", "node-b"]);
    assert!(out.contains("asked node node-b to drain"), "{out}");
    let asked = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || readyz(&cell, 1) == 503),
        "/readyz of node B does not fail:\n{}",
        cell.node(1).log_text()
    );
    let (_, why) = cell.node(1).http_get("/readyz").unwrap();
    assert!(why.contains("draining (postcell drain)"), "{why}");
    assert!(status_line(&cell, "node-b").contains("\tdraining\t"));
    // Deliveries go on through the other nodes.
    for (i, node) in [0, 2].into_iter().enumerate() {
        let reply = send(
            cell.node(node).addr(Service::Smtp),
            &to,
            &format!("during-{i}@x"),
        );
        assert!(accepted(&reply.unwrap()));
    }
    // After the announce time B's listeners are closed: a new connection is refused.
    assert!(
        eventually(Duration::from_secs(10), || TcpStream::connect_timeout(
            &b_smtp,
            Duration::from_secs(1)
        )
        .is_err()),
        "node B still accepts connections"
    );
    assert!(
        asked.elapsed() >= Duration::from_secs(2),
        "listeners closed before the announce time"
    );
    // The idle session was told to go; the open one finishes its message.
    let mut line = String::new();
    idle_pop.read_line(&mut line).unwrap();
    assert_eq!(line, "-ERR [SYS/TEMP] Server shutting down\r\n");
    let reply = open.end().unwrap();
    assert!(accepted(&reply), "{reply}");
    let _ = open.command("QUIT");
    drop(open);
    let status = cell.node_mut(1).wait_exit(Duration::from_secs(20));
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "node B did not exit cleanly after its drain:\n{}",
        cell.node(1).log_text()
    );
    // Its session's maildrop lease went with it, and a new session anywhere may lock.
    assert_eq!(
        cell.sql("SELECT COUNT(*) FROM leases WHERE owner LIKE 'node-b%'")
            .trim(),
        "0"
    );
    let (_, pass) = pop3_login(cell.node(2).addr(Service::Pop3), &to);
    assert!(pass.starts_with("+OK"), "{pass}");
    assert!(status_line(&cell, "node-b").contains("\tstopped\t"));
    let stored = stored_message_ids(&cell);
    for id in ["in-flight@x", "during-0@x", "during-1@x"] {
        assert_eq!(stored.get(id), Some(&1), "{id}");
    }
    assert_eq!(readyz(&cell, 0), 200);

    // SIGUSR1 does the same on node C.
    cell.node(2).signal(libc::SIGUSR1);
    assert!(eventually(Duration::from_secs(5), || readyz(&cell, 2) == 503));
    assert_eq!(
        cell.node_mut(2)
            .wait_exit(Duration::from_secs(20))
            .map(|s| s.code()),
        Some(Some(0))
    );
    // A drained node that starts again is back in rotation.
    cell.node_mut(1).spawn();
    assert!(eventually(Duration::from_secs(10), || readyz(&cell, 1) == 200));
    assert!(status_line(&cell, "node-b").contains("\tup\t"));
    // `drain --wait` returns once the node has stopped cleanly.
    let out = cell
        .node(0)
        .cli_ok(&["drain", "node-b", "--wait", "--timeout", "60s"]);
    assert!(out.ends_with("node node-b has stopped\n"), "{out}");
    assert_eq!(
        cell.node_mut(1)
            .wait_exit(Duration::from_secs(10))
            .map(|s| s.code()),
        Some(Some(0))
    );
    let unknown = cell.node(0).cli(&["drain", "node-z"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no node \"node-z\" in this cell"));
    let again = cell.node(0).cli(&["drain", "node-b"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already stopped"));
}

/// One message sent during the outage test: Message-ID, reply (or error), node, when
/// the reply came.
type Outcome = (String, String, usize, Instant);

#[test]
fn a_database_outage_gives_temporary_failures_and_everyone_recovers() {
    let mut cell = cell(|_| {});
    cell.add_user(&account(0));
    let to = account(0);
    let addrs: Vec<SocketAddr> = (0..3).map(|i| cell.node(i).addr(Service::Smtp)).collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let (addrs, stop, outcomes, to) =
                (addrs.clone(), stop.clone(), outcomes.clone(), to.clone());
            std::thread::spawn(move || {
                let mut k = 0;
                while !stop.load(Ordering::SeqCst) {
                    let node = (t + k) % 3;
                    let id = format!("outage-{t}-{k}@x");
                    let reply = match send(addrs[node], &to, &id) {
                        Ok(reply) => reply,
                        Err(e) => format!("error: {e}"),
                    };
                    outcomes
                        .lock()
                        .unwrap()
                        .push((id, reply, node, Instant::now()));
                    k += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    cell.pg().stop().unwrap();
    let stopped_at = Instant::now();
    // While the database is away, no node is ready, and POP3 says try later.
    assert!(
        eventually(Duration::from_secs(8), || (0..3)
            .all(|i| readyz(&cell, i) == 503)),
        "/readyz does not fail during the outage"
    );
    let (_, pass) = pop3_login(cell.node(2).addr(Service::Pop3), &to);
    assert!(pass.starts_with("-ERR [SYS/TEMP]"), "{pass}");
    let wait = Duration::from_secs(10).saturating_sub(stopped_at.elapsed());
    std::thread::sleep(wait);
    cell.pg().start_again().unwrap();
    let restarted = Instant::now();
    assert!(
        eventually(Duration::from_secs(20), || (0..3)
            .all(|i| readyz(&cell, i) == 200)),
        "nodes not ready again after the outage:\n{}",
        cell.logs()
    );
    eprintln!(
        "all nodes ready {:?} after PostgreSQL came back",
        restarted.elapsed()
    );
    // Every node acknowledges mail again, without a restart.
    assert!(
        eventually(Duration::from_secs(30), || {
            let outcomes = outcomes.lock().unwrap();
            (0..3).all(|node| {
                outcomes
                    .iter()
                    .any(|o| o.2 == node && o.3 > restarted && accepted(&o.1))
            })
        }),
        "not every node acknowledges mail again:\n{}",
        cell.logs()
    );
    eprintln!(
        "every node acknowledging mail {:?} after PostgreSQL came back",
        restarted.elapsed()
    );
    stop.store(true, Ordering::SeqCst);
    for thread in threads {
        thread.join().unwrap();
    }
    let outcomes = outcomes.lock().unwrap();
    let during: Vec<&String> = outcomes
        .iter()
        .filter(|o| o.3 > stopped_at + Duration::from_secs(1) && o.3 < restarted)
        .map(|o| &o.1)
        .collect();
    assert!(!during.is_empty());
    for reply in &during {
        // A temporary failure: never a 250, a permanent refusal or a dropped connection.
        assert!(
            reply.starts_with("451 4.3.0"),
            "reply during the outage: {reply}"
        );
    }
    let stored = stored_message_ids(&cell);
    for (id, reply, node, _) in outcomes.iter() {
        let count = stored.get(id.as_str()).copied().unwrap_or(0);
        if accepted(reply) {
            assert_eq!(
                count, 1,
                "{id} got 250 from node {node} but is stored {count} times"
            );
        } else {
            assert!(count <= 1, "{id}");
        }
    }
    assert_uids_and_quota(&cell);
    for i in 0..3 {
        assert!(
            cell.node_mut(i).is_running(),
            "node {i} did not survive the outage"
        );
    }
    // Each node's next heartbeat after the outage marks it up again (1 s heartbeats;
    // the bound leaves room for its store connections to come back first).
    for id in ["node-a", "node-b", "node-c"] {
        assert!(
            eventually(Duration::from_secs(10), || status_line(&cell, id)
                .contains("\tup\t")),
            "{}",
            status_line(&cell, id)
        );
    }
}

#[test]
fn once_per_cell_jobs_run_on_one_node_and_move_when_it_dies() {
    let mut cell = cell(|o| {
        o.extra_config = "[maintenance]\nblob_gc_interval = \"1s\"\nexpiry_interval = \"1s\"\n\
                          blob_grace = \"2s\"\n"
            .into();
    });
    cell.add_user(&account(0));
    // A blob nothing refers to, as a crash between blob and commit leaves, in the
    // shared folder: collected by whichever node runs the job.
    let orphan = cell
        .blob_dir()
        .join("ab/cd/abcd000000000000000000000000000000000000000000000000000000000000");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"orphan").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&orphan)
        .unwrap()
        .set_modified(old)
        .unwrap();
    assert!(accepted(
        &send(cell.node(0).addr(Service::Smtp), &account(0), "kept@x").unwrap()
    ));
    let holder = |cell: &Cell| {
        cell.sql("SELECT owner FROM leases WHERE name = 'job:blob-gc'")
            .trim()
            .to_owned()
    };
    assert!(eventually(Duration::from_secs(10), || !holder(&cell).is_empty()));
    assert!(
        eventually(Duration::from_secs(15), || !orphan.exists()
            && !cell
                .blob_dir()
                .join("quarantine")
                .join(orphan.file_name().unwrap())
                .exists()),
        "the orphan blob was not collected:\n{}",
        cell.logs()
    );
    let first = holder(&cell);
    let index = cell.nodes().iter().position(|n| n.id == first).unwrap();
    cell.node_mut(index).kill();
    let killed_ms: i64 = cell
        .sql("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
        .trim()
        .parse()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(15), || {
            let h = holder(&cell);
            !h.is_empty() && h != first
        }),
        "the job did not move after {first} died"
    );
    let second = holder(&cell);
    assert!(
        eventually(Duration::from_secs(10), || {
            !cell
            .sql(&format!(
                "SELECT id FROM job_runs WHERE job = 'blob-gc' AND node = '{second}' AND started_ms > {killed_ms}"
            ))
            .trim()
            .is_empty()
        }),
        "{second} does not run the job"
    );
    // Never two runs of one job at once: each run starts after the previous one ended
    // (the dead node's last run may have no end).
    let runs = cell.sql(
        "SELECT job, node, started_ms, COALESCE(finished_ms, -1) FROM job_runs ORDER BY job, started_ms",
    );
    let mut previous: HashMap<String, (String, i64)> = HashMap::new();
    let mut nodes_seen: HashSet<String> = HashSet::new();
    for row in runs.lines() {
        let f: Vec<&str> = row.split('|').collect();
        let (job, node, started, finished) = (
            f[0],
            f[1],
            f[2].parse::<i64>().unwrap(),
            f[3].parse::<i64>().unwrap(),
        );
        nodes_seen.insert(node.to_owned());
        if let Some((previous_node, previous_end)) = previous.get(job)
            && *previous_end >= 0
        {
            assert!(
                started >= *previous_end,
                "{job}: {node} started at {started} while {previous_node} ran until {previous_end}"
            );
        }
        previous.insert(job.to_owned(), (node.to_owned(), finished));
    }
    assert!(nodes_seen.len() >= 2, "{runs}");
    // The message's blob is still there; every node sampled its metrics.
    let (mut pop, pass) = pop3_login(
        cell.node(if index == 0 { 1 } else { 0 })
            .addr(Service::Pop3),
        &account(0),
    );
    assert!(pass.starts_with("+OK"), "{pass}");
    assert!(pop3_command(&mut pop, "RETR 1").starts_with("+OK"));
    drop(pop);
    let sampled = cell.sql("SELECT DISTINCT node FROM metric_samples ORDER BY node");
    assert_eq!(sampled.lines().count(), 3, "{sampled}");
    let status = cell.node(0).cli_ok(&["status"]);
    assert!(status.contains("job blob-gc\tlast run on "), "{status}");

    // A second process with a running node's id refuses to start (its own ports, the
    // same id).
    let live = &cell.node(if index == 0 { 1 } else { 0 }).id;
    let twin = tempfile::tempdir().unwrap();
    let twin_config = twin.path().join("postcell.toml");
    std::fs::write(
        &twin_config,
        format!(
            "[node]\nid = \"{live}\"\n[store]\nbackend = \"postgres\"\nurl = \"{}\"\n\
             blobs = \"database\"\n[cell]\nheartbeat = \"1s\"\njobs = false\n",
            cell.database_url()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(common::postcell_bin())
        .arg("--config")
        .arg(&twin_config)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is in use by another running process"),
        "{err}"
    );
}

/// HAProxy, the load balancer of the operator docs, in front of the cell: it checks
/// `/readyz`, sends PROXY v2 for SMTP and v1 for POP3, and the nodes see the clients'
/// own addresses. A drained node leaves HAProxy's rotation before it closes.
#[test]
fn haproxy_in_front_of_the_cell_keeps_client_addresses_and_follows_readyz() {
    let haproxy = postcell_testkit::expect_tool("haproxy");
    let mut cell = cell(|o| {
        for i in 0..3 {
            o.listen_overrides.push((
                i,
                Service::Smtp,
                "{ address = \"ADDR\", proxy_protocol = true, trusted_proxies = [\"127.0.0.1\"] }"
                    .into(),
            ));
            o.listen_overrides.push((
                i,
                Service::Pop3,
                "{ address = \"ADDR\", proxy_protocol = true, trusted_proxies = [\"127.0.0.1/32\"] }".into(),
            ));
        }
    });
    cell.add_user(&account(0));
    let (smtp_front, pop3_front) = (postcell_testkit::free_port(), postcell_testkit::free_port());
    let mut servers_smtp = String::new();
    let mut servers_pop3 = String::new();
    for node in cell.nodes() {
        let check = node.addr(Service::Http).port();
        servers_smtp.push_str(&format!(
            "    server {} {} send-proxy-v2 check port {check} inter 300ms fall 1 rise 2\n",
            node.id,
            node.addr(Service::Smtp)
        ));
        servers_pop3.push_str(&format!(
            "    server {} {} send-proxy check port {check} inter 300ms fall 1 rise 2\n",
            node.id,
            node.addr(Service::Pop3)
        ));
    }
    let config = format!(
        "global\n    maxconn 200\n\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n\n\
         frontend smtp\n    bind 127.0.0.1:{smtp_front}\n    default_backend cell_smtp\n\n\
         backend cell_smtp\n    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n{servers_smtp}\n\
         frontend pop3\n    bind 127.0.0.1:{pop3_front}\n    default_backend cell_pop3\n\n\
         backend cell_pop3\n    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n{servers_pop3}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    let _haproxy = postcell_testkit::ChildGuard::spawn(
        std::process::Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("haproxy.log")).unwrap()),
    )
    .unwrap();
    postcell_testkit::wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], smtp_front)),
        Duration::from_secs(10),
    )
    .unwrap();
    // Let HAProxy's checks see every node up.
    std::thread::sleep(Duration::from_secs(2));

    // Python's smtplib and poplib from 127.0.0.9: the nodes must see that address.
    let script = r#"
import poplib, smtplib, sys
smtp_port, pop3_port, to, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
for i in range(n):
    with smtplib.SMTP("127.0.0.1", smtp_port, source_address=("127.0.0.9", 0), timeout=30) as s:
        s.sendmail("client@example.net", [to], f"Message-ID: <{sys.argv[5]}-{i}@x>\r\nSubject: via haproxy\r\n\r\nHi.\r\n")
p = poplib.POP3("127.0.0.1", pop3_port, timeout=30)
p.user(to); p.pass_(sys.argv[6])
print("pop3", p.stat()[0])
p.quit()
"#;
    let run = |tag: &str, n: usize| {
        common::python(
            script,
            &[
                &smtp_front.to_string(),
                &pop3_front.to_string(),
                &account(0),
                &n.to_string(),
                tag,
                PASSWORD,
            ],
        )
    };
    let out = run("before", 6);
    assert_eq!(out, "pop3 6\n");
    let log = cell
        .node(0)
        .cli_ok(&["log", "search", "--status", "delivered"]);
    assert_eq!(log.lines().count(), 6, "{log}");
    for line in log.lines() {
        assert!(line.contains("\tremote=smtp from 127.0.0.9\t"), "{line}");
    }
    let nodes: HashSet<&str> = log.lines().filter_map(|l| l.split('\t').nth(1)).collect();
    assert_eq!(nodes.len(), 3, "round robin over all nodes: {log}");
    let received =
        cell.sql("SELECT COUNT(*) FROM delivery_log WHERE remote = 'smtp from 127.0.0.1'");
    assert_eq!(received.trim(), "0", "a node saw the proxy's address");

    // Node B drains: HAProxy sees /readyz fail and stops sending it anything, before
    // B's listeners close.
    cell.node(1).signal(libc::SIGUSR1);
    assert!(eventually(Duration::from_secs(5), || readyz(&cell, 1) == 503));
    std::thread::sleep(Duration::from_millis(800));
    let out = run("during", 6);
    assert_eq!(out, "pop3 12\n");
    let during =
        cell.sql("SELECT node FROM delivery_log WHERE message_id LIKE 'during-%' ORDER BY node");
    assert_eq!(during.lines().count(), 6, "{during}");
    assert!(
        !during.contains("node-b"),
        "HAProxy sent mail to the draining node: {during}"
    );
    assert_eq!(
        cell.node_mut(1)
            .wait_exit(Duration::from_secs(20))
            .map(|s| s.code()),
        Some(Some(0))
    );
}
