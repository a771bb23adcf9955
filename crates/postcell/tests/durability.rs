//! Durability under load, over real sockets: many concurrent SMTP sessions store every
//! message exactly once with consistent UIDs and quota usage, and a SIGKILL in the
//! middle of a burst loses nothing that was acknowledged with `250`.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Backend, Node, NodeOptions, PASSWORD, Wire};

const SENDER: &str = "loadgen@example.net";

fn account(i: usize) -> String {
    format!("user{i}@example.test")
}

/// A small deterministic generator, so message bodies vary without a `rand` dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One message as the client sends it (before dot-stuffing).
#[derive(Debug, Clone)]
struct Message {
    message_id: String,
    mailbox: usize,
    text: Vec<u8>,
}

/// Message `k` of a run tagged `run`: a unique Message-ID, a unique body of varying
/// length, lines that start with a dot (stuffed on the wire), a line that is only a dot,
/// empty lines and some 8-bit text.
fn make_message(run: &str, k: usize, mailbox: usize) -> Message {
    let message_id = format!("<{run}.{k}.{:x}@loadgen.example.net>", k * 7919 + 13);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (k as u64 + 1).wrapping_mul(0x2545_F491));
    let mut text = format!(
        "From: Load Generator <{SENDER}>\r\nTo: <{}>\r\nSubject: {run} message {k}\r\n\
         Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Body of {run} message {k} for mailbox {mailbox}.\r\n",
        account(mailbox)
    );
    let lines = 3 + rng.below(60);
    for i in 0..lines {
        match rng.below(12) {
            0 => text.push_str(".\r\n"),
            1 => text.push_str(&format!(".leading dot {i} of {k}\r\n")),
            2 => text.push_str("\r\n"),
            3 => text.push_str("naïve façade — ünïcödé ✓\r\n"),
            _ => {
                let len = rng.below(120) as usize;
                let line: String = (0..len)
                    .map(|_| (b' ' + 1 + rng.below(94) as u8) as char)
                    .collect();
                text.push_str(&line);
                text.push_str("\r\n");
            }
        }
    }
    text.push_str(&format!("-- end of {run} message {k}\r\n"));
    Message {
        message_id,
        mailbox,
        text: text.into_bytes(),
    }
}

/// A fallible SMTP client: a crash of the server must end up as an error, not a panic.
struct Smtp {
    reader: BufReader<TcpStream>,
}

impl Smtp {
    fn connect(addr: SocketAddr) -> io::Result<Smtp> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        let mut smtp = Smtp {
            reader: BufReader::new(stream),
        };
        let greeting = smtp.reply()?;
        expect_code(&greeting, "220 ")?;
        let ehlo = smtp.command("EHLO loadgen.example.net")?;
        expect_code(&ehlo, "250")?;
        Ok(smtp)
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    fn reply(&mut self) -> io::Result<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            let line = line.trim_end_matches(['\r', '\n']).to_owned();
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line);
            if !more {
                return Ok(lines.join("\n"));
            }
        }
    }

    fn command(&mut self, line: &str) -> io::Result<String> {
        self.send(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// One transaction, pipelined (RFC 2920): MAIL, RCPT and DATA in one write, then the
    /// dot-stuffed text. `Ok(Err(replies))` when the server refused the message.
    fn deliver(&mut self, message: &Message) -> io::Result<Result<String, String>> {
        self.send(
            format!(
                "MAIL FROM:<{SENDER}> BODY=8BITMIME\r\nRCPT TO:<{}>\r\nDATA\r\n",
                account(message.mailbox)
            )
            .as_bytes(),
        )?;
        let mail = self.reply()?;
        let rcpt = self.reply()?;
        let data = self.reply()?;
        if !(mail.starts_with("250 ") && rcpt.starts_with("250 ") && data.starts_with("354 ")) {
            return Ok(Err(format!("{mail} / {rcpt} / {data}")));
        }
        self.send(&dot_stuff(&message.text))?;
        let done = self.reply()?;
        if done.starts_with("250 2.0.0 Ok: queued as ") {
            Ok(Ok(done))
        } else {
            Ok(Err(done))
        }
    }
}

fn expect_code(reply: &str, code: &str) -> io::Result<()> {
    if reply.starts_with(code) {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "expected {code:?}, got {reply:?}"
        )))
    }
}

/// The message text as it goes on the wire after DATA, end marker included.
fn dot_stuff(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 64);
    for line in text.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// One message as POP3 shows it.
#[derive(Debug)]
struct Retrieved {
    number: usize,
    unique_id: String,
    listed_size: u64,
    data: Vec<u8>,
}

/// A POP3 line reply that must be `+OK`.
fn pop_ok(wire: &mut Wire, command: &str) -> String {
    wire.send(format!("{command}\r\n").as_bytes());
    let reply = wire.line();
    assert!(
        reply.starts_with("+OK"),
        "POP3 {command:?} answered {reply:?}"
    );
    reply
}

/// The lines of a multi-line POP3 response, dot-unstuffed, without the terminator.
fn pop_multiline(wire: &mut Wire) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = wire.line();
        if line == "." {
            return lines;
        }
        lines.push(line.strip_prefix('.').map(str::to_owned).unwrap_or(line));
    }
}

/// Logs in over POP3 (USER/PASS), reads UIDL and LIST, RETRs every message and quits
/// without deleting anything.
fn retrieve_all(addr: SocketAddr, user: &str) -> Vec<Retrieved> {
    let mut wire = Wire::connect(addr);
    let greeting = wire.line();
    assert!(greeting.starts_with("+OK "), "POP3 greeting {greeting:?}");
    pop_ok(&mut wire, &format!("USER {user}"));
    pop_ok(&mut wire, &format!("PASS {PASSWORD}"));
    pop_ok(&mut wire, "UIDL");
    let uidl = pop_multiline(&mut wire);
    pop_ok(&mut wire, "LIST");
    let list = pop_multiline(&mut wire);
    assert_eq!(uidl.len(), list.len(), "UIDL and LIST disagree for {user}");
    let mut out = Vec::with_capacity(list.len());
    for (i, (uidl_line, list_line)) in uidl.iter().zip(&list).enumerate() {
        let number = i + 1;
        let (n, unique_id) = uidl_line
            .split_once(' ')
            .unwrap_or_else(|| panic!("UIDL line {uidl_line:?}"));
        let (m, size) = list_line
            .split_once(' ')
            .unwrap_or_else(|| panic!("LIST line {list_line:?}"));
        assert_eq!(n, number.to_string(), "UIDL numbering for {user}");
        assert_eq!(m, number.to_string(), "LIST numbering for {user}");
        out.push(Retrieved {
            number,
            unique_id: unique_id.to_owned(),
            listed_size: size.parse().expect("LIST size"),
            data: Vec::new(),
        });
    }
    // RETR is pipelined in batches (CAPA announces PIPELINING).
    for batch in out.chunks_mut(25) {
        let mut commands = String::new();
        for message in batch.iter() {
            commands.push_str(&format!("RETR {}\r\n", message.number));
        }
        wire.send(commands.as_bytes());
        for message in batch.iter_mut() {
            let header = wire.line();
            assert_eq!(
                header,
                format!("+OK {} octets", message.listed_size),
                "RETR {} of {user}",
                message.number
            );
            let mut data = Vec::new();
            for line in pop_multiline(&mut wire) {
                data.extend_from_slice(line.as_bytes());
                data.extend_from_slice(b"\r\n");
            }
            message.data = data;
        }
    }
    pop_ok(&mut wire, "QUIT");
    out
}

/// The value of the Message-ID header (the first one), if any.
fn message_id_of(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let header = text.split("\r\n\r\n").next().unwrap_or("");
    header.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("Message-ID")
            .then(|| value.trim().to_owned())
    })
}

/// Checks that `stored` is `sent` with only trace headers (`Return-Path:`,
/// `Received:` and their continuation lines) in front.
fn assert_stored_intact(stored: &[u8], sent: &[u8], what: &str) {
    assert!(
        stored.ends_with(sent),
        "{what}: the stored message is not the sent text behind trace headers \
         ({} bytes stored, {} sent)\n--- stored\n{}\n--- sent\n{}",
        stored.len(),
        sent.len(),
        String::from_utf8_lossy(stored),
        String::from_utf8_lossy(sent)
    );
    let prefix = String::from_utf8_lossy(&stored[..stored.len() - sent.len()]).into_owned();
    assert!(
        prefix.contains("Received: from "),
        "{what}: no Received: header in front of the message: {prefix:?}"
    );
    for line in prefix.split_terminator("\r\n") {
        assert!(
            line.starts_with("Return-Path: ")
                || line.starts_with("Received: ")
                || line.starts_with('\t')
                || line.starts_with(' '),
            "{what}: unexpected line {line:?} in front of the sent text: {prefix:?}"
        );
    }
}

/// `used: N bytes` from `postcell user show`.
fn used_bytes(node: &Node, user: &str) -> u64 {
    let out = node.cli_ok(&["user", "show", user]);
    out.lines()
        .find_map(|line| line.strip_prefix("used:"))
        .and_then(|rest| rest.trim().strip_suffix(" bytes"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `used: N bytes` line in `user show {user}`:\n{out}"))
}

/// UIDs of one mailbox: `UIDVALIDITY.UID`, one UIDVALIDITY, UIDs strictly increasing in
/// listing order.
fn assert_unique_ids(user: &str, messages: &[Retrieved]) {
    let mut validity: Option<&str> = None;
    let mut previous: Option<u64> = None;
    let mut seen = HashSet::new();
    for m in messages {
        assert!(
            seen.insert(m.unique_id.as_str()),
            "{user}: unique id {} listed twice",
            m.unique_id
        );
        let (v, uid) = m.unique_id.split_once('.').unwrap_or_else(|| {
            panic!("{user}: unique id {:?} is not UIDVALIDITY.UID", m.unique_id)
        });
        let uid: u64 = uid
            .parse()
            .unwrap_or_else(|_| panic!("{user}: UID in {:?}", m.unique_id));
        assert!(
            v.parse::<u64>().is_ok(),
            "{user}: UIDVALIDITY in {:?}",
            m.unique_id
        );
        match validity {
            None => validity = Some(v),
            Some(known) => assert_eq!(known, v, "{user}: two UIDVALIDITY values"),
        }
        if let Some(previous) = previous {
            assert!(
                uid > previous,
                "{user}: UID {uid} (message {}) listed after UID {previous}",
                m.number
            );
        }
        previous = Some(uid);
    }
}

fn add_accounts(node: &Node, n: usize) {
    for i in 0..n {
        node.add_user(&account(i), None);
    }
}

const ACCOUNTS: usize = 10;
const SESSIONS: usize = 50;
const MESSAGES: usize = 2000;

fn fifty_sessions(backend: Backend) {
    let started = Instant::now();
    let node = Node::start(NodeOptions {
        backend,
        ..NodeOptions::default()
    });
    add_accounts(&node, ACCOUNTS);
    let setup = started.elapsed();
    let run = format!("load-{backend:?}").to_lowercase();
    let messages: Arc<Vec<Message>> = Arc::new(
        (0..MESSAGES)
            // Session s sends k = s, s + 50, ...: its mailboxes cycle through all ten.
            .map(|k| make_message(&run, k, (k + k / SESSIONS) % ACCOUNTS))
            .collect(),
    );
    let sending = Instant::now();
    let threads: Vec<_> = (0..SESSIONS)
        .map(|s| {
            let messages = Arc::clone(&messages);
            let addr = node.smtp;
            std::thread::spawn(move || {
                let mut accepted = Vec::new();
                let mut refused = Vec::new();
                let mut smtp = Smtp::connect(addr)
                    .unwrap_or_else(|e| panic!("session {s}: cannot start: {e}"));
                for k in (s..MESSAGES).step_by(SESSIONS) {
                    match smtp.deliver(&messages[k]) {
                        Ok(Ok(_)) => accepted.push(k),
                        Ok(Err(replies)) => refused.push((k, replies)),
                        Err(e) => panic!("session {s}, message {k}: {e}"),
                    }
                }
                let bye = smtp.command("QUIT").expect("QUIT");
                assert_eq!(bye, "221 2.0.0 Bye");
                (accepted, refused)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for thread in threads {
        let (a, r) = thread.join().expect("an SMTP session thread panicked");
        accepted.extend(a);
        refused.extend(r);
    }
    let send_time = sending.elapsed();
    assert!(
        refused.is_empty(),
        "{} of {MESSAGES} messages were refused, e.g. {:?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    assert_eq!(accepted.len(), MESSAGES);

    let reading = Instant::now();
    let by_id: HashMap<&str, &Message> = messages
        .iter()
        .map(|m| (m.message_id.as_str(), m))
        .collect();
    let mut stored_ids: HashMap<String, usize> = HashMap::new();
    for mailbox in 0..ACCOUNTS {
        let user = account(mailbox);
        let retrieved = retrieve_all(node.pop3, &user);
        assert_unique_ids(&user, &retrieved);
        let mut listed_total = 0;
        for m in &retrieved {
            assert_eq!(
                m.data.len() as u64,
                m.listed_size,
                "{user}: message {} is not the size LIST gave",
                m.number
            );
            listed_total += m.listed_size;
            let id = message_id_of(&m.data)
                .unwrap_or_else(|| panic!("{user}: message {} has no Message-ID", m.number));
            let sent = by_id
                .get(id.as_str())
                .unwrap_or_else(|| panic!("{user}: message {id} was never sent"));
            assert_eq!(sent.mailbox, mailbox, "{id} landed in {user}");
            assert_stored_intact(&m.data, &sent.text, &format!("{user} {id}"));
            if let Some(first) = stored_ids.insert(id.clone(), mailbox) {
                panic!("{id} stored twice (mailboxes {first} and {mailbox})");
            }
        }
        assert_eq!(
            used_bytes(&node, &user),
            listed_total,
            "{user}: quota usage differs from the sum of LIST sizes ({} messages)",
            retrieved.len()
        );
    }
    let acknowledged: HashSet<&str> = accepted
        .iter()
        .map(|&k| messages[k].message_id.as_str())
        .collect();
    let stored: HashSet<&str> = stored_ids.keys().map(String::as_str).collect();
    let missing: Vec<_> = acknowledged.difference(&stored).take(5).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    assert_eq!(stored.len(), acknowledged.len());
    eprintln!(
        "{backend:?}: setup {setup:.1?}, {MESSAGES} messages over {SESSIONS} sessions in \
         {send_time:.1?} ({:.0} msg/s), POP3 check {:.1?}, total {:.1?}",
        MESSAGES as f64 / send_time.as_secs_f64(),
        reading.elapsed(),
        started.elapsed()
    );
}

/// 50 concurrent SMTP sessions deliver 2,000 messages to 10 mailboxes on the embedded
/// store; POP3 shows each exactly once, intact, with increasing UIDs, and the quota
/// usage matches the LIST sizes.
#[test]
fn fifty_sessions_two_thousand_messages_sqlite() {
    fifty_sessions(Backend::Sqlite);
}

/// The same on PostgreSQL.
#[test]
fn fifty_sessions_two_thousand_messages_postgres() {
    fifty_sessions(Backend::Postgres);
}

const BURST: usize = 1000;
const BURST_CONNECTIONS: usize = 10;
const BURST_ACCOUNTS: usize = 5;
const KILL_AFTER: usize = 300;

#[derive(Default)]
struct BurstLog {
    /// Messages whose `250` was read.
    acknowledged: HashSet<usize>,
    /// Messages whose transaction was started (MAIL sent): may or may not be stored.
    attempted: HashSet<usize>,
    /// Messages the server refused with a reply (not `250`) before the kill.
    refused: Vec<(usize, String)>,
}

fn sigkill_burst(backend: Backend) {
    let started = Instant::now();
    let mut node = Node::start(NodeOptions {
        backend,
        ..NodeOptions::default()
    });
    add_accounts(&node, BURST_ACCOUNTS);
    let run = format!("burst-{backend:?}").to_lowercase();
    let messages: Arc<Vec<Message>> = Arc::new(
        (0..BURST)
            .map(|k| make_message(&run, k, (k + k / BURST_CONNECTIONS) % BURST_ACCOUNTS))
            .collect(),
    );
    let log = Arc::new(Mutex::new(BurstLog::default()));
    let acks = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..BURST_CONNECTIONS)
        .map(|c| {
            let (messages, log, acks) =
                (Arc::clone(&messages), Arc::clone(&log), Arc::clone(&acks));
            let addr = node.smtp;
            std::thread::spawn(move || -> Option<io::Error> {
                let mut smtp = match Smtp::connect(addr) {
                    Ok(smtp) => smtp,
                    Err(e) => return Some(e),
                };
                for k in (c..BURST).step_by(BURST_CONNECTIONS) {
                    log.lock().unwrap().attempted.insert(k);
                    match smtp.deliver(&messages[k]) {
                        Ok(Ok(_)) => {
                            log.lock().unwrap().acknowledged.insert(k);
                            acks.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Err(replies)) => log.lock().unwrap().refused.push((k, replies)),
                        // The server died: this message is unknown; stop.
                        Err(e) => return Some(e),
                    }
                }
                None
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acks.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "only {} acknowledgements after 120 s",
            acks.load(Ordering::SeqCst)
        );
        assert!(
            !threads.iter().all(|t| t.is_finished()),
            "every session ended before {KILL_AFTER} acknowledgements: {:?}",
            log.lock().unwrap().refused.first()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    node.kill();
    let killed_at = acks.load(Ordering::SeqCst);
    let mut ended_by_error = 0;
    for thread in threads {
        if thread.join().expect("a burst thread panicked").is_some() {
            ended_by_error += 1;
        }
    }
    let log = Arc::try_unwrap(log)
        .ok()
        .expect("threads are done")
        .into_inner()
        .unwrap();
    assert!(
        log.refused.is_empty(),
        "messages refused before the kill: {:?}",
        &log.refused[..log.refused.len().min(5)]
    );
    assert!(
        log.acknowledged.len() < BURST,
        "the burst finished before the kill: the test proves nothing"
    );
    assert!(
        ended_by_error > 0,
        "no session noticed the kill: the burst was not under way"
    );
    let unknown = log.attempted.len() - log.acknowledged.len();

    node.spawn();
    let mut found: HashMap<usize, usize> = HashMap::new();
    let by_id: HashMap<&str, usize> = messages
        .iter()
        .enumerate()
        .map(|(k, m)| (m.message_id.as_str(), k))
        .collect();
    let mut per_mailbox = BTreeMap::new();
    for mailbox in 0..BURST_ACCOUNTS {
        let user = account(mailbox);
        let retrieved = retrieve_all(node.pop3, &user);
        assert_unique_ids(&user, &retrieved);
        let mut listed_total = 0;
        for m in &retrieved {
            assert_eq!(m.data.len() as u64, m.listed_size, "{user}: LIST size");
            listed_total += m.listed_size;
            let id = message_id_of(&m.data).unwrap_or_else(|| {
                panic!(
                    "{user}: message {} has no Message-ID (half a message?):\n{}",
                    m.number,
                    String::from_utf8_lossy(&m.data)
                )
            });
            let k = *by_id
                .get(id.as_str())
                .unwrap_or_else(|| panic!("{user}: {id} was never sent"));
            assert!(
                log.attempted.contains(&k),
                "{user}: {id} is stored but its transaction never started"
            );
            assert_eq!(messages[k].mailbox, mailbox, "{id} landed in {user}");
            // Complete and byte-identical, acknowledged or not.
            assert_stored_intact(&m.data, &messages[k].text, &format!("{user} {id}"));
            if found.insert(k, mailbox).is_some() {
                panic!("{id} is stored twice");
            }
        }
        assert_eq!(
            used_bytes(&node, &user),
            listed_total,
            "{user}: quota usage after the crash differs from the sum of LIST sizes"
        );
        per_mailbox.insert(user, retrieved.len());
    }
    let mut lost: Vec<usize> = log
        .acknowledged
        .iter()
        .filter(|k| !found.contains_key(k))
        .copied()
        .collect();
    lost.sort_unstable();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages are gone after SIGKILL, e.g. {:?}",
        lost.len(),
        lost.iter()
            .take(5)
            .map(|&k| &messages[k].message_id)
            .collect::<Vec<_>>()
    );
    let unknown_stored = found.len() - log.acknowledged.len();
    eprintln!(
        "{backend:?}: killed after {killed_at} acknowledgements; {} acknowledged, {unknown} \
         unknown ({unknown_stored} of them stored), {ended_by_error} sessions cut; \
         mailboxes {per_mailbox:?}; {:.1?} in all",
        log.acknowledged.len(),
        started.elapsed()
    );
}

/// SIGKILL in the middle of a 1,000-message burst over 10 connections: after a restart
/// every acknowledged message is there, byte for byte, nothing is stored twice and no
/// message is stored in part (embedded store).
#[test]
fn sigkill_during_a_burst_loses_nothing_acknowledged() {
    sigkill_burst(Backend::Sqlite);
}

/// The same on PostgreSQL.
#[test]
fn sigkill_during_a_burst_loses_nothing_acknowledged_postgres() {
    sigkill_burst(Backend::Postgres);
}
