//! Clients and checks that the cell tests share (`tests/cell.rs`, `tests/cell_imap.rs`):
//! a fallible SMTP client, and the invariants a cell must keep after any failure.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use postcell_testkit::cell::{Cell, CellOptions};

pub fn cell(options: impl FnOnce(&mut CellOptions)) -> Cell {
    let mut o = CellOptions::new(super::postcell_bin());
    options(&mut o);
    Cell::start(o)
}

pub fn account(i: usize) -> String {
    format!("user{i}@example.test")
}

/// A fallible SMTP client: a node that dies or a store that is away must show up as
/// an error or a reply, never as a panic in the client.
pub struct Smtp {
    reader: BufReader<TcpStream>,
}

impl Smtp {
    pub fn connect(addr: SocketAddr) -> io::Result<Smtp> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        let mut smtp = Smtp {
            reader: BufReader::new(stream),
        };
        let greeting = smtp.reply()?;
        if !greeting.starts_with("220 ") {
            return Err(io::Error::other(format!("greeting {greeting:?}")));
        }
        let ehlo = smtp.command("EHLO load.example.net")?;
        if !ehlo.starts_with("250") {
            return Err(io::Error::other(format!("EHLO {ehlo:?}")));
        }
        Ok(smtp)
    }

    pub fn reply(&mut self) -> io::Result<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
            }
            let line = line.trim_end().to_owned();
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line);
            if !more {
                return Ok(lines.join("\n"));
            }
        }
    }

    pub fn command(&mut self, line: &str) -> io::Result<String> {
        self.reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// Starts a transaction and sends the first part of the text, without the end.
    pub fn begin(&mut self, to: &str, message_id: &str) -> io::Result<Result<(), String>> {
        for (line, code) in [
            ("MAIL FROM:<load@example.net>".to_owned(), "250"),
            (format!("RCPT TO:<{to}>"), "250"),
            ("DATA".to_owned(), "354"),
        ] {
            let reply = self.command(&line)?;
            if !reply.starts_with(code) {
                return Ok(Err(reply));
            }
        }
        self.reader.get_mut().write_all(
            format!(
                "From: <load@example.net>\r\nTo: <{to}>\r\nMessage-ID: <{message_id}>\r\n\
                 Subject: {message_id}\r\n\r\nBody of {message_id}.\r\n"
            )
            .as_bytes(),
        )?;
        Ok(Ok(()))
    }

    /// Ends the text; the reply to it.
    pub fn end(&mut self) -> io::Result<String> {
        self.reader.get_mut().write_all(b"More text.\r\n.\r\n")?;
        self.reply()
    }

    /// One whole message: `Ok(reply)` with the final reply (or the first refusal).
    pub fn deliver(&mut self, to: &str, message_id: &str) -> io::Result<String> {
        match self.begin(to, message_id)? {
            Err(refusal) => Ok(refusal),
            Ok(()) => self.end(),
        }
    }
}

/// Connects, sends one message, quits.
pub fn send(addr: SocketAddr, to: &str, message_id: &str) -> io::Result<String> {
    let mut smtp = Smtp::connect(addr)?;
    let reply = smtp.deliver(to, message_id)?;
    let _ = smtp.command("QUIT");
    Ok(reply)
}

pub fn accepted(reply: &str) -> bool {
    reply.starts_with("250 2.0.0 Ok: queued as ")
}

/// How often each Message-ID is stored in the cell.
pub fn stored_message_ids(cell: &Cell) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in cell.sql("SELECT message_id FROM messages").lines() {
        *counts.entry(line.trim().to_owned()).or_insert(0) += 1;
    }
    counts
}

/// UIDs strictly increase within every mailbox, in the order the rows were written,
/// and every account's quota usage is the sum of its messages' sizes.
pub fn assert_uids_and_quota(cell: &Cell) {
    let rows = cell.sql("SELECT mailbox_id, uid FROM messages ORDER BY mailbox_id, id");
    let mut last: HashMap<String, i64> = HashMap::new();
    for row in rows.lines() {
        let (mailbox, uid) = row.split_once('|').expect("mailbox|uid");
        let uid: i64 = uid.parse().expect("uid");
        if let Some(previous) = last.insert(mailbox.to_owned(), uid) {
            assert!(
                uid > previous,
                "mailbox {mailbox}: UID {uid} after {previous}"
            );
        }
    }
    let usage = cell.sql(
        "SELECT a.name, a.used_bytes, (SELECT COALESCE(SUM(m.size), 0) FROM messages m
           JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = a.id)
         FROM accounts a ORDER BY a.name",
    );
    for row in usage.lines() {
        let fields: Vec<&str> = row.split('|').collect();
        assert_eq!(fields[1], fields[2], "quota usage of {} is off", fields[0]);
    }
}

pub fn readyz(cell: &Cell, node: usize) -> u16 {
    cell.node(node)
        .http_get("/readyz")
        .map(|(status, _)| status)
        .unwrap_or(0)
}

pub fn status_line(cell: &Cell, node_id: &str) -> String {
    let status = cell.node(0).cli_ok(&["status"]);
    status
        .lines()
        .find(|l| l.starts_with(&format!("node {node_id}\t")))
        .unwrap_or_else(|| panic!("no line for {node_id} in:\n{status}"))
        .to_owned()
}
