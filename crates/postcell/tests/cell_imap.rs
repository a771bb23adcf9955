//! IMAP across a cell: one real PostgreSQL, three `postcell serve` nodes on 127.0.0.2,
//! .3 and .4 (`postcell_testkit::cell`), and real clients: Python's imaplib and the
//! raw-socket IMAP client of tests/fixtures/imap_helpers.py, driven by
//! tests/fixtures/cell_imap.py in subprocesses; SMTP from this file. The remote of the
//! outbound relay is a small SMTP server in this file that can hold its reply to the
//! message text, so that a node's relay holds queue leases when it dies or drains.
//!
//! - IDLE on node A sees a delivery to B, a flag set on C and an expunge on C, each
//!   within one second;
//! - IMAP and SMTP load on all nodes while node B is killed: nothing acknowledged is
//!   lost or doubled, UIDs increase, quota adds up, and B's queue entries go out from A
//!   or C;
//! - the checkpoint property: one account worked on from three nodes at once ends in
//!   one state, and no client sees a MODSEQ go down;
//! - a database outage under IMAP sessions: `NO [UNAVAILABLE]`, no lost connection, no
//!   lost APPEND, and the same sessions carry on afterwards;
//! - a drain with an IDLE session on the drained node: `* BYE`, no new connections, no
//!   failed delivery, and the relay stuck at a slow remote is aborted before the node
//!   leaves.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::cell::{
    accepted, account, assert_uids_and_quota, cell, readyz, send, status_line, stored_message_ids,
};
use common::fixture;
use postcell_testkit::cell::{Cell, PASSWORD, Service, eventually};
use serde_json::Value;

/// An alias of the cell's domain that forwards to the relay's remote.
const FORWARD: &str = "fwd@example.test";
const REMOTE_DOMAIN: &str = "remote.test";
const REMOTE_RECIPIENT: &str = "far@remote.test";

/// `ip:port` of a node's listener, as the Python clients take it.
fn at(cell: &Cell, node: usize, service: Service) -> String {
    cell.node(node).addr(service).to_string()
}

/// The client script: the shared IMAP helpers, then the cell clients.
fn client_script() -> String {
    let helpers = std::fs::read_to_string(fixture("fixtures/imap_helpers.py")).expect("helpers");
    let clients = std::fs::read_to_string(fixture("fixtures/cell_imap.py")).expect("clients");
    format!("{helpers}\n{clients}")
}

/// Starts a client; its standard output goes to `out` (a file, so that a long run never
/// blocks on a full pipe) or to a pipe when `out` is `None`.
fn spawn_client(args: &[&str], out: Option<&Path>) -> Child {
    assert!(
        postcell_testkit::require_tool("python3"),
        "{}",
        postcell_testkit::process::missing_tool_message("python3")
    );
    let stdout = match out {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("client output file")),
        None => Stdio::piped(),
    };
    Command::new("python3")
        .arg("-c")
        .arg(client_script())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3")
}

/// Waits for a client, at most `timeout`; kills it and fails if it takes longer. A
/// failure shows the end of its output file `out`, if it has one.
fn wait_client(child: &mut Child, timeout: Duration, what: &str, out: Option<&Path>) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for python3") {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            let tail = out
                .and_then(|path| std::fs::read_to_string(path).ok())
                .map(|text| {
                    let lines: Vec<&str> = text.lines().collect();
                    lines[lines.len().saturating_sub(20)..].join("\n")
                })
                .unwrap_or_default();
            assert!(status.success(), "{what} failed:\n{err}\n{tail}");
            return;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The JSON lines a client wrote.
fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("client output")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The UIDs under which each Message-ID is in the INBOX of `users`, as an IMAP client
/// on `node` sees them (APPEND keeps no Message-ID column, so a client has to look).
fn inventory(cell: &Cell, node: usize, users: &[String]) -> HashMap<String, Vec<i64>> {
    let mut client = spawn_client(
        &[
            "inventory",
            PASSWORD,
            &users[0],
            &at(cell, node, Service::Imap),
            &users.join(","),
        ],
        None,
    );
    let mut out = String::new();
    client
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read the inventory");
    wait_client(&mut client, Duration::from_secs(120), "the inventory", None);
    let by_user: HashMap<String, HashMap<String, Vec<i64>>> =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let mut all: HashMap<String, Vec<i64>> = HashMap::new();
    for found in by_user.into_values() {
        for (message_id, uids) in found {
            all.entry(message_id).or_default().extend(uids);
        }
    }
    all
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// A minimal IMAP client on a socket, for the exchanges this file checks byte by byte.
struct Imap {
    reader: BufReader<TcpStream>,
    tags: usize,
}

impl Imap {
    fn connect(addr: SocketAddr) -> io::Result<Imap> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut imap = Imap {
            reader: BufReader::new(stream),
            tags: 0,
        };
        let greeting = imap.line()?;
        if !greeting.starts_with("* OK") {
            return Err(io::Error::other(format!("greeting {greeting:?}")));
        }
        Ok(imap)
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        Ok(line.trim_end().to_owned())
    }

    fn send(&mut self, text: &str) -> io::Result<String> {
        self.tags += 1;
        let tag = format!("t{}", self.tags);
        self.reader
            .get_mut()
            .write_all(format!("{tag} {text}\r\n").as_bytes())?;
        Ok(tag)
    }

    /// Sends a command; the tagged reply.
    fn command(&mut self, text: &str) -> io::Result<String> {
        let tag = self.send(text)?;
        loop {
            let line = self.line()?;
            if line.starts_with(&format!("{tag} ")) {
                return Ok(line);
            }
        }
    }

    fn login(&mut self, user: &str) -> io::Result<String> {
        self.command(&format!("LOGIN \"{user}\" \"{PASSWORD}\""))
    }
}

/// The relay's remote: an SMTP server that takes every message and, while `hold` is
/// set, keeps the client waiting for the reply to the message text. A client that goes
/// away while it waits did not get its `250`, so that message does not count as
/// received.
struct Sink {
    port: u16,
    hold: Arc<AtomicBool>,
    /// Message-IDs that got `250` after their text.
    received: Arc<Mutex<Vec<String>>>,
    /// Messages whose client left while they were held.
    abandoned: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
        listener.set_nonblocking(true).expect("non-blocking accept");
        let sink = Sink {
            port: listener.local_addr().expect("sink address").port(),
            hold: Arc::new(AtomicBool::new(true)),
            received: Arc::default(),
            abandoned: Arc::default(),
            stop: Arc::default(),
        };
        let (hold, received, abandoned, stop) = (
            sink.hold.clone(),
            sink.received.clone(),
            sink.abandoned.clone(),
            sink.stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (hold, received, abandoned) =
                            (hold.clone(), received.clone(), abandoned.clone());
                        std::thread::spawn(move || {
                            let _ = sink_session(stream, &hold, &received, &abandoned);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        sink
    }

    fn release(&self) {
        self.hold.store(false, Ordering::SeqCst);
    }

    fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.hold.store(false, Ordering::SeqCst);
    }
}

/// The longest a held message waits; the relay then gets a temporary failure.
const LONGEST_HOLD: Duration = Duration::from_secs(90);

fn sink_session(
    stream: TcpStream,
    hold: &AtomicBool,
    received: &Mutex<Vec<String>>,
    abandoned: &AtomicUsize,
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut reader = BufReader::new(stream);
    let write =
        |reader: &mut BufReader<TcpStream>, text: &str| reader.get_mut().write_all(text.as_bytes());
    write(&mut reader, "220 sink.remote.test ESMTP\r\n")?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => write(&mut reader, "250-sink.remote.test\r\n250 8BITMIME\r\n")?,
            "QUIT" => {
                write(&mut reader, "221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            "DATA" => {
                write(&mut reader, "354 Go ahead\r\n")?;
                let mut message_id = String::new();
                loop {
                    let mut text = String::new();
                    if reader.read_line(&mut text)? == 0 {
                        return Ok(());
                    }
                    if text == ".\r\n" {
                        break;
                    }
                    if let Some((name, value)) = text.split_once(':')
                        && name.eq_ignore_ascii_case("message-id")
                        && message_id.is_empty()
                    {
                        message_id = value.trim().trim_matches(['<', '>']).to_owned();
                    }
                }
                // Held: watch for the client leaving while it waits.
                let held = Instant::now();
                reader
                    .get_ref()
                    .set_read_timeout(Some(Duration::from_millis(50)))?;
                while hold.load(Ordering::SeqCst) && held.elapsed() < LONGEST_HOLD {
                    let mut byte = [0u8; 1];
                    match reader.get_ref().peek(&mut byte) {
                        Ok(0) => {
                            abandoned.fetch_add(1, Ordering::SeqCst);
                            return Ok(());
                        }
                        Ok(_) => break,
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => {
                            abandoned.fetch_add(1, Ordering::SeqCst);
                            return Ok(());
                        }
                    }
                }
                reader
                    .get_ref()
                    .set_read_timeout(Some(Duration::from_secs(120)))?;
                if held.elapsed() >= LONGEST_HOLD {
                    write(&mut reader, "451 4.3.0 Held too long\r\n")?;
                    continue;
                }
                write(&mut reader, "250 2.0.0 Ok\r\n")?;
                received.lock().unwrap().push(message_id);
            }
            _ => write(&mut reader, "250 2.0.0 Ok\r\n")?,
        }
    }
}

/// The `[relay]` section of a node: a route to the sink, quick retries, short leases,
/// and how often an idle worker looks for work.
fn relay_section(sink: &Sink, poll_interval: &str) -> String {
    format!(
        "[relay]\nretry_initial = \"1s\"\nretry_max = \"2s\"\npoll_interval = \"{poll_interval}\"\n\
         lease_ttl = \"3s\"\nconnect_timeout = \"5s\"\nstarttls = \"off\"\n\
         [relay.routes]\n\"{REMOTE_DOMAIN}\" = \"127.0.0.1:{}\"\n",
        sink.port
    )
}

/// A cell whose nodes relay to `sink`; node B looks for queue work most often.
fn relaying_cell(sink: &Sink, drain_timeout: &str) -> Cell {
    let cell = cell(|o| {
        o.drain_timeout = drain_timeout.to_owned();
        for i in 0..3 {
            let poll = if i == 1 { "100ms" } else { "1s" };
            o.node_config.push((i, relay_section(sink, poll)));
        }
    });
    cell.add_user(&account(0));
    cell.node(0)
        .cli_ok(&["alias", "add", FORWARD, REMOTE_RECIPIENT]);
    cell
}

/// Queue entries whose lease node B holds: (id, Message-ID).
fn held_by_b(cell: &Cell) -> Vec<(i64, String)> {
    cell.sql(
        "SELECT id, message_id FROM outbound_queue WHERE lease_owner LIKE 'node-b/%' ORDER BY id",
    )
    .lines()
    .filter_map(|row| {
        let (id, message_id) = row.split_once('|')?;
        Some((id.trim().parse().ok()?, message_id.trim().to_owned()))
    })
    .collect()
}

/// Forwards messages through node A until node B's relay holds at least one at the
/// held sink. The other nodes' relays look less often; once each holds a batch at the
/// sink it claims nothing more, so B soon gets the rest.
fn make_b_hold_queue_entries(cell: &Cell, tag: &str) -> Vec<(i64, String)> {
    for k in 0..60 {
        let held = held_by_b(cell);
        if !held.is_empty() {
            return held;
        }
        let reply = send(
            cell.node(k % 3).addr(Service::Smtp),
            FORWARD,
            &format!("{tag}-{k}@forward.example.net"),
        )
        .expect("forward a message");
        assert!(accepted(&reply), "{reply}");
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!(
        "node B's relay never held a queue entry:\n{}",
        cell.sql("SELECT id, lease_owner FROM outbound_queue")
    );
}

/// Waits until the entries are out of the queue, and returns the node that recorded
/// each one's delivery.
fn delivered_by(cell: &Cell, entries: &[(i64, String)]) -> Vec<String> {
    let ids: Vec<String> = entries.iter().map(|(id, _)| id.to_string()).collect();
    let list = ids.join(",");
    assert!(
        eventually(Duration::from_secs(40), || cell
            .sql(&format!(
                "SELECT COUNT(*) FROM outbound_queue WHERE id IN ({list})"
            ))
            .trim()
            == "0"),
        "B's queue entries were never delivered:\n{}\n{}",
        cell.sql("SELECT id, lease_owner, attempts, last_reply FROM outbound_queue"),
        cell.logs()
    );
    ids.iter()
        .map(|id| {
            cell.sql(&format!(
                "SELECT node FROM delivery_log WHERE queue_id = {id} AND direction = 'outbound'
                 AND status = 'delivered'"
            ))
            .trim()
            .to_owned()
        })
        .collect()
}

#[test]
fn idle_on_node_a_sees_a_delivery_to_b_and_a_flag_and_an_expunge_on_c_within_a_second() {
    const ROUNDS: usize = 5;
    let cell = cell(|_| {});
    cell.add_user(&account(0));
    let mut client = spawn_client(
        &[
            "idle",
            PASSWORD,
            &account(0),
            &at(&cell, 0, Service::Imap),
            &at(&cell, 1, Service::Smtp),
            &at(&cell, 2, Service::Imap),
            &ROUNDS.to_string(),
        ],
        None,
    );
    let mut out = String::new();
    client
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read the client's output");
    wait_client(
        &mut client,
        Duration::from_secs(60),
        "the IDLE client",
        None,
    );
    assert!(out.ends_with("ok\n"), "{out}\n{}", cell.logs());
    let mut seen: HashMap<&str, Vec<f64>> = HashMap::new();
    for line in out.lines() {
        if let Some((what, seconds)) = line.split_once(' ') {
            seen.entry(what)
                .or_default()
                .push(seconds.parse().expect("seconds"));
        }
    }
    for what in ["exists", "flags", "expunge"] {
        let times = &seen[what];
        assert_eq!(times.len(), ROUNDS, "{out}");
        let slowest = times.iter().cloned().fold(0.0, f64::max);
        eprintln!("{what} reached the IDLE on node A after {times:?} s");
        assert!(
            slowest < 1.0,
            "{what} took {slowest} s to reach node A's IDLE"
        );
    }
}

/// One SMTP message of the load: Message-ID, acknowledged, node, forwarded.
type SmtpAttempt = (String, bool, usize, bool);

#[test]
fn imap_and_smtp_load_on_three_nodes_survives_a_sigkill_of_node_b() {
    const SMTP_THREADS: usize = 3;
    const IMAP_WORKERS: usize = 6;
    let sink = Sink::start();
    let mut cell = relaying_cell(&sink, "15s");
    for i in 1..3 {
        cell.add_user(&account(i));
    }
    let work = tempfile::tempdir().expect("temp dir");
    let stop_file = work.path().join("stop");
    let stop_text = stop_file.to_str().expect("utf-8 path").to_owned();
    let imap_nodes: Vec<String> = (0..3).map(|i| at(&cell, i, Service::Imap)).collect();
    let imap_nodes = imap_nodes.join(",");
    // Each account has sessions on two nodes; every node has two sessions.
    let mut workers: Vec<(Child, std::path::PathBuf)> = (0..IMAP_WORKERS)
        .map(|w| {
            let out = work.path().join(format!("imap-{w}.jsonl"));
            let first = ((w + w / 3) % 3).to_string();
            let child = spawn_client(
                &[
                    "load",
                    PASSWORD,
                    &account(w % 3),
                    &imap_nodes,
                    &first,
                    &w.to_string(),
                    &stop_text,
                    &(1000 + w).to_string(),
                ],
                Some(&out),
            );
            (child, out)
        })
        .collect();

    let addrs: Vec<SocketAddr> = (0..3).map(|i| cell.node(i).addr(Service::Smtp)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let attempts: Arc<Mutex<Vec<SmtpAttempt>>> = Arc::default();
    let smtp: Vec<_> = (0..SMTP_THREADS)
        .map(|t| {
            let (addrs, stop, attempts) = (addrs.clone(), stop.clone(), attempts.clone());
            std::thread::spawn(move || {
                for k in 0..2000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let forward = k % 5 == 4;
                    let to = if forward {
                        FORWARD.to_owned()
                    } else {
                        account(k % 3)
                    };
                    // A failed node makes the client try the next, as an MTA tries the
                    // next MX, under a new Message-ID each time.
                    for attempt in 0..6 {
                        let node = (t + k + attempt) % 3;
                        let id = format!("smtp-{t}-{k}-{attempt}@load.example.net");
                        let ok = send(addrs[node], &to, &id).is_ok_and(|r| accepted(&r));
                        attempts.lock().unwrap().push((id, ok, node, forward));
                        if ok {
                            break;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(30));
                }
            })
        })
        .collect();

    // The load gets going (a LOGIN costs an argon2 hash: on a busy machine the
    // sessions take a while to open), and B's relay holds queue entries at the held
    // remote.
    assert!(
        eventually(Duration::from_secs(90), || workers.iter().all(
            |(_, out)| {
                std::fs::read_to_string(out).is_ok_and(|text| text.contains("\"connected\""))
            }
        )),
        "the IMAP sessions did not open"
    );
    std::thread::sleep(Duration::from_secs(3));
    let held = make_b_hold_queue_entries(&cell, "before-kill");
    std::thread::sleep(Duration::from_secs(2));
    let held = {
        let now = held_by_b(&cell);
        if now.is_empty() { held } else { now }
    };
    cell.node_mut(1).kill();
    eprintln!("killed node B holding queue entries {held:?}");
    // B's connections to the remote are gone with it; the others' go through now.
    std::thread::sleep(Duration::from_secs(1));
    sink.release();
    std::thread::sleep(Duration::from_secs(6));
    stop.store(true, Ordering::SeqCst);
    std::fs::write(&stop_file, b"stop").expect("stop file");
    for thread in smtp {
        thread.join().expect("an SMTP thread panicked");
    }
    for (i, (child, out)) in workers.iter_mut().enumerate() {
        wait_client(
            child,
            Duration::from_secs(60),
            &format!("IMAP load worker {i}"),
            Some(out),
        );
    }

    // B's queue entries went out from A or C, once each.
    let nodes = delivered_by(&cell, &held);
    for (node, (id, message_id)) in nodes.iter().zip(&held) {
        assert!(
            node == "node-a" || node == "node-c",
            "entry {id} ({message_id}) delivered by {node:?}"
        );
    }
    assert!(
        sink.abandoned.load(Ordering::SeqCst) >= 1,
        "node B never had a message at the remote when it died"
    );
    assert!(
        eventually(Duration::from_secs(40), || cell
            .sql("SELECT COUNT(*) FROM outbound_queue")
            .trim()
            == "0"),
        "the queue never emptied: {}",
        cell.sql("SELECT id, lease_owner, attempts, last_reply FROM outbound_queue")
    );
    let mut at_remote: HashMap<String, usize> = HashMap::new();
    for id in sink.received() {
        *at_remote.entry(id).or_insert(0) += 1;
    }

    // SMTP: every 250 stored (or sent on) exactly once.
    let attempts = attempts.lock().unwrap();
    let stored = stored_message_ids(&cell);
    assert!(
        attempts.iter().any(|a| a.1 && a.2 == 1),
        "node B acknowledged no SMTP message before it died"
    );
    let mut acknowledged = 0;
    for (id, ok, node, forward) in attempts.iter() {
        let count = if *forward {
            at_remote.get(id).copied().unwrap_or(0)
        } else {
            stored.get(id.as_str()).copied().unwrap_or(0)
        };
        if *ok {
            acknowledged += 1;
            assert_eq!(
                count, 1,
                "{id} got 250 from node {node} and arrived {count} times"
            );
        } else {
            assert!(count <= 1, "{id} arrived {count} times");
        }
    }
    for (_, message_id) in &held {
        assert_eq!(at_remote.get(message_id), Some(&1), "{message_id}");
    }

    // IMAP: every APPEND OK is there once with the UID its APPENDUID named, unless the
    // client expunged it.
    let users: Vec<String> = (0..3).map(account).collect();
    let found = inventory(&cell, 2, &users);
    let none = Vec::new();
    let (mut appended, mut expunged, mut lost_on_b, mut after_loss) = (0, 0, 0, 0);
    for (w, (_, out)) in workers.iter().enumerate() {
        let records = records(out);
        let mut events: HashMap<&str, usize> = HashMap::new();
        for record in &records {
            *events
                .entry(record["event"].as_str().unwrap_or("?"))
                .or_insert(0) += 1;
        }
        eprintln!("IMAP worker {w}: {events:?}");
        let mut expunge_sent: HashSet<String> = HashSet::new();
        let mut expunge_done: HashSet<String> = HashSet::new();
        let mut lost = false;
        for record in &records {
            let event = record["event"].as_str().unwrap_or("");
            let mid = record["mid"].as_str().unwrap_or("").to_owned();
            match event {
                "expunge-sent" => {
                    expunge_sent.insert(mid);
                }
                "expunge" if record["status"] == "OK" => {
                    expunge_done.insert(mid);
                }
                "lost" if record["node"] == 1 => {
                    lost = true;
                    lost_on_b += 1;
                }
                _ => {}
            }
        }
        for record in &records {
            let mid = record["mid"].as_str().unwrap_or("");
            let uids = found.get(mid).unwrap_or(&none);
            let count = uids.len();
            match record["event"].as_str().unwrap_or("") {
                "append" if record["status"] == "OK" => {
                    appended += 1;
                    if lost {
                        after_loss += 1;
                    }
                    if expunge_done.contains(mid) {
                        expunged += 1;
                        assert_eq!(count, 0, "worker {w}: {mid} expunged but stored");
                    } else if expunge_sent.contains(mid) {
                        assert!(count <= 1, "worker {w}: {mid} stored {count} times");
                    } else {
                        assert_eq!(
                            count, 1,
                            "worker {w}: APPEND OK for {mid} on node {} but stored {count} times",
                            record["node"]
                        );
                        let uid = record["uid"][1].as_i64().expect("APPENDUID");
                        assert_eq!(uids, &[uid], "worker {w}: UID of {mid}");
                    }
                }
                // Sent but no answer (the node died under it): there at most once.
                "append-sent" => assert!(count <= 1, "worker {w}: {mid} stored {count} times"),
                _ => {}
            }
        }
    }
    eprintln!(
        "{acknowledged} SMTP messages acknowledged, {} at the remote; {appended} IMAP \
         APPENDs acknowledged, {expunged} expunged by their client; {lost_on_b} sessions \
         lost node B",
        at_remote.len()
    );
    assert!(appended >= 30, "too little IMAP load: {appended} APPENDs");
    assert!(lost_on_b >= 1, "no IMAP session was on node B when it died");
    assert!(
        after_loss >= 1,
        "no IMAP session carried on after losing node B"
    );
    assert_uids_and_quota(&cell);
    assert!(
        eventually(Duration::from_secs(6), || status_line(&cell, "node-b")
            .contains("\tDOWN\t")),
        "{}",
        status_line(&cell, "node-b")
    );
}

#[test]
fn one_account_worked_on_from_three_nodes_at_once_ends_in_one_state_at_a_checkpoint() {
    const OPS: &str = "80";
    let cell = cell(|_| {});
    cell.add_user(&account(0));
    let created = common::python(
        "import imaplib, sys\nhost, port = sys.argv[1].rsplit(':', 1)\n\
         m = imaplib.IMAP4(host, int(port), timeout=30)\nm.login(sys.argv[2], sys.argv[3])\n\
         print(m.create('Moved')[0])\nm.logout()\n",
        &[&at(&cell, 0, Service::Imap), &account(0), PASSWORD],
    );
    assert_eq!(created, "OK\n");
    let mut clients: Vec<(Child, BufReader<std::process::ChildStdout>)> = (0..3)
        .map(|i| {
            let mut child = spawn_client(
                &[
                    "mix",
                    PASSWORD,
                    &account(0),
                    &at(&cell, i, Service::Imap),
                    "20261201",
                    OPS,
                    ["a", "b", "c"][i],
                ],
                None,
            );
            let stdout = BufReader::new(child.stdout.take().expect("stdout"));
            (child, stdout)
        })
        .collect();
    let read_line = |reader: &mut BufReader<std::process::ChildStdout>, what: &str| {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read a client");
        serde_json::from_str::<Value>(&line)
            .unwrap_or_else(|e| panic!("{what}: {e}: {line:?}\n{}", cell.logs()))
    };
    for (i, (_, stdout)) in clients.iter_mut().enumerate() {
        let done = read_line(stdout, &format!("mix on node {i}"));
        eprintln!("node {i}: {}", done["done"]);
    }
    // Every mix has ended: the checkpoint.
    for (child, _) in &mut clients {
        child
            .stdin
            .as_mut()
            .expect("stdin")
            .write_all(b"go\n")
            .expect("release a client");
    }
    let mut states = Vec::new();
    for (i, (child, stdout)) in clients.iter_mut().enumerate() {
        states.push(read_line(stdout, &format!("state on node {i}")));
        wait_client(
            child,
            Duration::from_secs(30),
            &format!("mix on node {i}"),
            None,
        );
    }
    for (i, state) in states.iter().enumerate() {
        assert!(state["modseqs_seen"].as_u64().unwrap_or(0) > 0);
        for key in ["inbox", "status", "archive"] {
            assert_eq!(
                state[key], states[0][key],
                "node {i}'s {key} differs from node A's after CHECK"
            );
        }
    }
    // And the state is the store's.
    let mut in_store = serde_json::Map::new();
    for row in cell
        .sql(
            "SELECT m.uid, m.modseq FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
             WHERE b.name = 'INBOX' ORDER BY m.uid",
        )
        .lines()
    {
        let (uid, modseq) = row.split_once('|').expect("uid|modseq");
        in_store.insert(
            uid.to_owned(),
            modseq.parse::<u64>().expect("modseq").into(),
        );
    }
    let seen: serde_json::Map<String, Value> = states[0]["inbox"]
        .as_object()
        .expect("inbox")
        .iter()
        .map(|(uid, message)| (uid.clone(), message["modseq"].clone()))
        .collect();
    assert_eq!(seen, in_store, "the clients' INBOX is not the store's");
    let highest = cell
        .sql("SELECT highest_modseq FROM mailboxes WHERE name = 'INBOX'")
        .trim()
        .to_owned();
    assert!(
        states[0]["status"]
            .as_str()
            .expect("status")
            .contains(&format!("HIGHESTMODSEQ {highest}")),
        "{} vs {highest}",
        states[0]["status"]
    );
    eprintln!(
        "{} messages in INBOX; {}; {}",
        in_store.len(),
        states[0]["status"],
        states[0]["archive"]
    );
}

#[test]
fn imap_sessions_ride_out_a_database_outage_with_no_unavailable() {
    let cell = cell(|_| {});
    for i in 0..3 {
        cell.add_user(&account(i));
        let reply = send(
            cell.node(i).addr(Service::Smtp),
            &account(i),
            &format!("seed-{i}@x"),
        )
        .expect("seed message");
        assert!(accepted(&reply), "{reply}");
    }
    let work = tempfile::tempdir().expect("temp dir");
    let stop_file = work.path().join("stop");
    let mut clients: Vec<(Child, std::path::PathBuf)> = (0..3)
        .map(|i| {
            let out = work.path().join(format!("outage-{i}.jsonl"));
            let child = spawn_client(
                &[
                    "outage",
                    PASSWORD,
                    &account(i),
                    &at(&cell, i, Service::Imap),
                    stop_file.to_str().expect("utf-8 path"),
                    &i.to_string(),
                ],
                Some(&out),
            );
            (child, out)
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(60), || clients.iter().all(
            |(_, out)| {
                std::fs::read_to_string(out).is_ok_and(|text| text.contains("\"ready\""))
            }
        )),
        "the outage clients did not get going"
    );
    std::thread::sleep(Duration::from_secs(2));
    // The outage begins as the stop begins: the server refuses work while it stops.
    let stopped = unix_now();
    let stopped_at = Instant::now();
    cell.pg().stop().expect("stop PostgreSQL");
    // A login during the outage is a temporary failure too.
    std::thread::sleep(Duration::from_secs(2));
    let mut login =
        Imap::connect(cell.node(2).addr(Service::Imap)).expect("connect during the outage");
    let reply = login.login(&account(2)).expect("LOGIN during the outage");
    assert!(reply.starts_with("t1 NO [UNAVAILABLE]"), "{reply}");
    std::thread::sleep(Duration::from_secs(10).saturating_sub(stopped_at.elapsed()));
    cell.pg().start_again().expect("start PostgreSQL again");
    let restarted = unix_now();
    assert!(
        eventually(Duration::from_secs(20), || (0..3)
            .all(|i| readyz(&cell, i) == 200)),
        "nodes not ready after the outage:\n{}",
        cell.logs()
    );
    let ready = unix_now();
    // The session that was refused logs in now, and new sessions on every node work.
    let reply = login.login(&account(2)).expect("LOGIN after the outage");
    assert!(reply.contains(" OK "), "{reply}");
    for i in 0..3 {
        let mut imap = Imap::connect(cell.node(i).addr(Service::Imap)).expect("connect");
        assert!(imap.login(&account(i)).unwrap().contains(" OK "));
        let reply = imap.command("SELECT INBOX").unwrap();
        assert!(reply.contains(" OK "), "{reply}");
    }
    std::thread::sleep(Duration::from_secs(6));
    std::fs::write(&stop_file, b"stop").expect("stop file");
    for (i, (child, out)) in clients.iter_mut().enumerate() {
        wait_client(
            child,
            Duration::from_secs(60),
            &format!("outage client {i}"),
            Some(out),
        );
    }
    let users: Vec<String> = (0..3).map(account).collect();
    let found = inventory(&cell, 0, &users);
    for (i, (_, out)) in clients.iter().enumerate() {
        let records = records(out);
        let (mut unavailable, mut ok_after, mut appended) = (0, 0, 0);
        for record in &records {
            let command = record["command"].as_str().unwrap_or("");
            let reply = record["reply"].as_str().unwrap_or("");
            let (sent, answered) = (
                record["sent"].as_f64().unwrap_or(0.0),
                record["at"].as_f64().unwrap_or(0.0),
            );
            assert_ne!(
                command, "lost",
                "node {i}: the session was dropped at {sent} (outage {stopped}..{restarted}, \
                 ready at {ready}): {reply}"
            );
            if command == "end" || command == "ready" {
                continue;
            }
            let word = reply.split(' ').nth(1).unwrap_or("");
            assert_ne!(word, "BAD", "node {i}: {command}: {reply}");
            if word == "NO" {
                assert!(
                    reply.contains(" NO [UNAVAILABLE] "),
                    "node {i}: {command}: {reply}"
                );
                // Only what was asked while the database was away (or the nodes not
                // yet back) fails.
                assert!(
                    answered > stopped && sent < ready + 1.0,
                    "node {i}: {command} sent at {sent}, answered at {answered}, refused outside \
                     the outage ({stopped}..{restarted}, ready at {ready}): {reply}"
                );
                unavailable += 1;
            }
            if word == "OK" && sent > ready + 1.0 {
                ok_after += 1;
            }
            if command == "APPEND" && word == "OK" {
                appended += 1;
                let mid = record["mid"].as_str().expect("mid");
                let uid = record["uid"][1].as_i64().expect("APPENDUID");
                assert_eq!(
                    found.get(mid),
                    Some(&vec![uid]),
                    "node {i}: APPEND OK for {mid} with UID {uid}"
                );
            }
            if command == "APPEND" && word == "NO" {
                let mid = record["mid"].as_str().expect("mid");
                assert_eq!(
                    found.get(mid),
                    None,
                    "node {i}: APPEND NO for {mid}, stored"
                );
            }
        }
        eprintln!(
            "node {i}: {} replies, {unavailable} NO [UNAVAILABLE], {ok_after} OK after the \
             outage, {appended} APPENDs",
            records.len()
        );
        assert!(
            unavailable >= 1,
            "node {i}: no temporary failure seen (outage {stopped}..{restarted}):\n{}",
            records
                .iter()
                .filter(|r| r["at"].as_f64().unwrap_or(0.0) > stopped - 2.0
                    && r["sent"].as_f64().unwrap_or(0.0) < ready + 2.0)
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(ok_after >= 4, "node {i}: the session did not carry on");
    }
    assert_uids_and_quota(&cell);
}

#[test]
fn a_drain_ends_an_idle_imap_session_with_bye_and_aborts_a_relay_stuck_at_the_remote() {
    let sink = Sink::start();
    let mut cell = relaying_cell(&sink, "3s");
    let held = make_b_hold_queue_entries(&cell, "before-drain");
    let mut idle = Imap::connect(cell.node(1).addr(Service::Imap)).expect("connect to B");
    assert!(idle.login(&account(0)).unwrap().contains(" OK "));
    assert!(idle.command("SELECT INBOX").unwrap().contains(" OK "));
    idle.send("IDLE").unwrap();
    assert!(idle.line().unwrap().starts_with("+ "));

    // Deliveries go on to A and C through the whole drain.
    let stop = Arc::new(AtomicBool::new(false));
    let replies: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sender = {
        let addrs = [
            cell.node(0).addr(Service::Smtp),
            cell.node(2).addr(Service::Smtp),
        ];
        let (stop, replies) = (stop.clone(), replies.clone());
        std::thread::spawn(move || {
            for k in 0..500 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let id = format!("during-drain-{k}@x");
                let reply =
                    send(addrs[k % 2], &account(0), &id).unwrap_or_else(|e| format!("error: {e}"));
                replies.lock().unwrap().push((id, reply));
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let out = cell.node(0).cli_ok(&["drain", "node-b"]);
    assert!(out.contains("asked node node-b to drain"), "{out}");
    let asked = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || readyz(&cell, 1) == 503),
        "/readyz of node B does not fail"
    );
    // The IDLE session is told to go once the listeners close, within the drain bound
    // (one heartbeat to notice, the announce time, the drain timeout).
    // (The deliveries to A and C show up in the IDLE as they happen.)
    let mut bye = String::new();
    for _ in 0..1000 {
        bye = idle.line().expect("the server's answer to the drain");
        if !bye.ends_with(" EXISTS") {
            break;
        }
    }
    let told = asked.elapsed();
    assert!(bye.starts_with("* BYE [UNAVAILABLE]"), "{bye}");
    assert!(
        told <= Duration::from_secs(1 + 2 + 3),
        "the IDLE session was told to go after {told:?}"
    );
    assert!(
        idle.line().is_err(),
        "the connection stays open after * BYE"
    );
    eprintln!("the IDLE session on node B got {bye:?} {told:?} after the drain request");
    assert!(
        TcpStream::connect_timeout(&cell.node(1).addr(Service::Imap), Duration::from_secs(1))
            .is_err(),
        "node B accepts IMAP connections after it told its sessions to go"
    );
    assert!(
        TcpStream::connect_timeout(&cell.node(1).addr(Service::Smtp), Duration::from_secs(1))
            .is_err(),
        "node B accepts SMTP connections while draining"
    );
    // The relay is stuck at the remote: after the drain timeout it is aborted, and B
    // leaves with status 0.
    let status = cell.node_mut(1).wait_exit(Duration::from_secs(20));
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "node B did not leave cleanly:\n{}",
        cell.node(1).log_text()
    );
    let left = asked.elapsed();
    let log = cell.node(1).log_text();
    assert!(
        log.contains("the relay was still sending after 3s: aborted"),
        "{log}"
    );
    assert!(
        sink.abandoned.load(Ordering::SeqCst) >= 1,
        "B's relay connection to the remote outlived the node"
    );
    eprintln!("node B left {left:?} after the drain request");
    stop.store(true, Ordering::SeqCst);
    sender.join().expect("the sender panicked");
    sink.release();

    // B's entries went out from A or C after their leases expired, once each.
    let nodes = delivered_by(&cell, &held);
    for node in &nodes {
        assert!(
            node == "node-a" || node == "node-c",
            "delivered by {node:?}"
        );
    }
    let received = sink.received();
    for (_, message_id) in &held {
        let times = received.iter().filter(|id| *id == message_id).count();
        assert_eq!(times, 1, "{message_id} reached the remote {times} times");
    }
    let replies = replies.lock().unwrap();
    assert!(replies.len() >= 5, "{}", replies.len());
    let stored = stored_message_ids(&cell);
    for (id, reply) in replies.iter() {
        assert!(accepted(reply), "{id} during the drain: {reply}");
        assert_eq!(stored.get(id.as_str()), Some(&1), "{id}");
    }
    assert!(status_line(&cell, "node-b").contains("\tstopped\t"));
}
