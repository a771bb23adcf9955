//! End-to-end POP3 sessions: a real SQLite store in a temporary folder, a real
//! listener on 127.0.0.1, and a hand-written POP3 client over `tokio::net::TcpStream`
//! (with `tokio-rustls` after STLS) that checks every reply byte for byte.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use postcell_directory::{Directory, DirectoryConfig, hash_password};
use postcell_net::{CancellationToken, Listener, ListenerOptions, TaskTracker, TlsAcceptor};
use postcell_pop3::{BUSY_REPLY, Pop3Config, Pop3Server};
use postcell_store::{
    BackendConfig, BlobConfig, Delivery, DeliveryOutcome, DeliveryTarget, Durability, NewAccount,
    Store, StoreConfig,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const ALICE: &str = "alice@example.org";
const PASSWORD: &str = "pw";

/// Stored with CRLF, as the store keeps every message; the body has lines that need
/// dot-stuffing.
const MESSAGE_1: &[u8] = b"From: bob@example.net\r\nTo: alice@example.org\r\nSubject: one\r\n\r\n\
Hello Alice,\r\n.a line that starts with a dot\r\n.\r\n..\r\nbye\r\n";
const MESSAGE_2: &[u8] = b"Subject: two\r\n\r\nsecond\r\n";
const MESSAGE_3: &[u8] = b"Subject: three\r\nX-Long: yes\r\n\r\nline 1\r\nline 2\r\nline 3\r\n";

struct Harness {
    dir: tempfile::TempDir,
    store: Store,
    account_id: i64,
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn store_config(dir: &Path) -> StoreConfig {
    StoreConfig {
        backend: BackendConfig::Sqlite {
            path: dir.join("state.db"),
            durability: Durability::Full,
        },
        blobs: BlobConfig::Folder(dir.join("blobs")),
        node_id: "test".into(),
    }
}

fn test_config() -> Pop3Config {
    Pop3Config {
        hostname: "pop.example.org".into(),
        ..Pop3Config::default()
    }
}

async fn start() -> Harness {
    start_with(test_config(), None).await
}

/// A store with alice and her three messages, and a POP3 listener in front of it.
async fn start_with(config: Pop3Config, tls: Option<TlsAcceptor>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&store_config(dir.path())).await.unwrap();
    store.add_domain("example.org").await.unwrap();
    let account = store
        .create_account(&NewAccount {
            name: ALICE.into(),
            password_hash: hash_password(PASSWORD).await.unwrap(),
            quota_bytes: 0,
            is_admin: false,
        })
        .await
        .unwrap();
    for message in [MESSAGE_1, MESSAGE_2, MESSAGE_3] {
        deliver(&store, account.id, message).await;
    }
    let directory = Directory::new(store.clone(), DirectoryConfig::default());
    let server = Pop3Server::new(config, directory, tls);
    let listener = Listener::bind("pop3", "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let options = ListenerOptions {
        implicit_tls: None,
        max_connections: 16,
        busy_reply: BUSY_REPLY,
    };
    tokio::spawn(postcell_net::serve(
        listener,
        options,
        shutdown.clone(),
        TaskTracker::new(),
        move |connection| server.clone().handle(connection),
    ));
    Harness {
        dir,
        store,
        account_id: account.id,
        addr,
        shutdown,
    }
}

async fn deliver(store: &Store, account_id: i64, message: &[u8]) {
    let blob_id = store.put_blob(message.to_vec()).await.unwrap();
    let outcome = store
        .deliver(&Delivery {
            blob: blob_id.into(),
            size: message.len() as i64,
            internal_date: postcell_store::now(),
            message_id: None,
            summary: None,
            sender: "bob@example.net".into(),
            remote: None,
            targets: vec![DeliveryTarget::Local {
                account_id,
                recipient: ALICE.into(),
            }],
        })
        .await
        .unwrap();
    assert!(matches!(outcome, DeliveryOutcome::Done(_)));
}

impl Harness {
    async fn connect(&self) -> Client<TcpStream> {
        let mut client = Client::new(TcpStream::connect(self.addr).await.unwrap());
        assert_eq!(client.line().await, "+OK pop.example.org POP3 server ready");
        client
    }

    async fn logged_in(&self) -> Client<TcpStream> {
        let mut client = self.connect().await;
        client.login_user_pass(ALICE, PASSWORD).await;
        client
    }

    async fn uids(&self) -> Vec<i64> {
        let (_, _, messages) = self.store.maildrop(self.account_id).await.unwrap();
        messages.iter().map(|m| m.uid).collect()
    }

    async fn used_bytes(&self) -> i64 {
        self.store
            .account_by_id(self.account_id)
            .await
            .unwrap()
            .unwrap()
            .used_bytes
    }

    /// Waits until no session holds alice's maildrop lease.
    async fn lease_released(&self) {
        let name = format!("pop3:maildrop:{}", self.account_id);
        for _ in 0..100 {
            if self.store.lease_holder(&name).await.unwrap().is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the maildrop lease was never released");
    }
}

/// A POP3 client that speaks line by line.
struct Client<S> {
    stream: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    fn new(stream: S) -> Client<S> {
        Client {
            stream: BufReader::new(stream),
        }
    }

    async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.unwrap();
    }

    /// One reply line without its CRLF.
    async fn line(&mut self) -> String {
        let raw = self.raw_line().await;
        assert!(raw.ends_with(b"\r\n"), "reply line without CRLF: {raw:?}");
        String::from_utf8(raw[..raw.len() - 2].to_vec()).unwrap()
    }

    async fn raw_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        tokio::time::timeout(
            Duration::from_secs(20),
            self.stream.read_until(b'\n', &mut line),
        )
        .await
        .expect("no reply within 20 s")
        .unwrap();
        assert!(
            !line.is_empty(),
            "connection closed while waiting for a reply"
        );
        line
    }

    async fn command(&mut self, line: &str) -> String {
        self.send(line).await;
        self.line().await
    }

    /// The rest of a multi-line response, as sent (still dot-stuffed), without the
    /// terminating `.` line.
    async fn multiline(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = self.raw_line().await;
            if line == b".\r\n" {
                return body;
            }
            body.extend_from_slice(&line);
        }
    }

    async fn multiline_lines(&mut self) -> Vec<String> {
        let body = self.multiline().await;
        String::from_utf8(body)
            .unwrap()
            .split_terminator("\r\n")
            .map(str::to_owned)
            .collect()
    }

    async fn login_user_pass(&mut self, user: &str, password: &str) {
        assert_eq!(self.command(&format!("USER {user}")).await, "+OK Send PASS");
        let reply = self.command(&format!("PASS {password}")).await;
        assert!(reply.starts_with("+OK Logged in"), "{reply}");
    }

    /// Waits for the server to close the connection.
    async fn closed(&mut self) {
        let mut rest = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(20), self.stream.read_to_end(&mut rest))
                .await
                .expect("the server did not close the connection");
        // A reset counts as closed too.
        if read.is_ok() {
            assert!(
                rest.is_empty(),
                "unexpected data before close: {:?}",
                String::from_utf8_lossy(&rest)
            );
        }
    }
}

fn unstuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in body.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}

fn plain(authzid: &str, user: &str, password: &str) -> String {
    STANDARD.encode(format!("{authzid}\0{user}\0{password}"))
}

fn total_size() -> usize {
    MESSAGE_1.len() + MESSAGE_2.len() + MESSAGE_3.len()
}

#[tokio::test]
async fn capa_over_loopback_offers_user_and_sasl_plain_but_no_stls_without_a_certificate() {
    let h = start().await;
    let mut client = h.connect().await;
    assert_eq!(client.command("CAPA").await, "+OK Capability list follows");
    assert_eq!(
        client.multiline_lines().await,
        [
            "TOP",
            "UIDL",
            "RESP-CODES",
            "PIPELINING",
            "AUTH-RESP-CODE",
            "USER",
            "SASL PLAIN",
            "IMPLEMENTATION Postcell",
            "EXPIRE NEVER",
            "LOGIN-DELAY 0"
        ]
    );
    assert_eq!(client.command("STLS").await, "-ERR STLS not available");
    assert_eq!(
        client.command("AUTH").await,
        "+OK Supported SASL mechanisms follow"
    );
    assert_eq!(client.multiline_lines().await, ["PLAIN"]);
    assert_eq!(
        client.command("QUIT").await,
        "+OK pop.example.org POP3 server signing off"
    );
    client.closed().await;
}

#[tokio::test]
async fn user_pass_then_stat_list_uidl_retr_and_top_follow_rfc1939() {
    let h = start().await;
    let (_, uid_validity, messages) = h.store.maildrop(h.account_id).await.unwrap();
    let mut client = h.connect().await;
    assert_eq!(
        client.command(&format!("USER {ALICE}")).await,
        "+OK Send PASS"
    );
    assert_eq!(
        client.command(&format!("PASS {PASSWORD}")).await,
        format!(
            "+OK Logged in, maildrop has 3 messages ({} octets)",
            total_size()
        )
    );

    assert_eq!(
        client.command("STAT").await,
        format!("+OK 3 {}", total_size())
    );

    assert_eq!(
        client.command("LIST").await,
        format!("+OK 3 messages ({} octets)", total_size())
    );
    assert_eq!(
        client.multiline_lines().await,
        [
            format!("1 {}", MESSAGE_1.len()),
            format!("2 {}", MESSAGE_2.len()),
            format!("3 {}", MESSAGE_3.len()),
        ]
    );
    assert_eq!(
        client.command("LIST 2").await,
        format!("+OK 2 {}", MESSAGE_2.len())
    );
    assert_eq!(client.command("LIST 4").await, "-ERR No such message");
    assert_eq!(client.command("LIST 0").await, "-ERR No such message");

    assert_eq!(
        client.command("UIDL").await,
        "+OK Unique-ID listing follows"
    );
    let expected: Vec<String> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} {uid_validity}.{}", i + 1, m.uid))
        .collect();
    assert_eq!(client.multiline_lines().await, expected);
    assert_eq!(
        client.command("UIDL 3").await,
        format!("+OK 3 {uid_validity}.{}", messages[2].uid)
    );

    // RETR: the stored octets, dot-stuffed on the wire.
    assert_eq!(
        client.command("RETR 1").await,
        format!("+OK {} octets", MESSAGE_1.len())
    );
    let sent = client.multiline().await;
    assert_eq!(
        sent,
        b"From: bob@example.net\r\nTo: alice@example.org\r\nSubject: one\r\n\r\n\
Hello Alice,\r\n..a line that starts with a dot\r\n..\r\n...\r\nbye\r\n"
    );
    assert_eq!(unstuff(&sent), MESSAGE_1);
    assert_eq!(
        client.command("RETR 2").await,
        format!("+OK {} octets", MESSAGE_2.len())
    );
    assert_eq!(client.multiline().await, MESSAGE_2);

    // TOP: the header, the blank line, and n lines of the body.
    assert_eq!(
        client.command("TOP 3 2").await,
        "+OK Top of message follows"
    );
    assert_eq!(
        client.multiline().await,
        b"Subject: three\r\nX-Long: yes\r\n\r\nline 1\r\nline 2\r\n"
    );
    assert_eq!(
        client.command("TOP 1 0").await,
        "+OK Top of message follows"
    );
    assert_eq!(
        client.multiline().await,
        b"From: bob@example.net\r\nTo: alice@example.org\r\nSubject: one\r\n\r\n"
    );
    assert_eq!(client.command("TOP 9 1").await, "-ERR No such message");

    assert_eq!(client.command("NOOP").await, "+OK");
    assert_eq!(
        client.command("QUIT").await,
        "+OK pop.example.org POP3 server signing off (0 messages deleted)"
    );
    client.closed().await;
    assert_eq!(h.uids().await.len(), 3);
}

#[tokio::test]
async fn auth_plain_with_an_initial_response_and_after_a_continuation() {
    let h = start().await;

    let mut client = h.connect().await;
    let reply = client
        .command(&format!("AUTH PLAIN {}", plain("", ALICE, PASSWORD)))
        .await;
    assert_eq!(
        reply,
        format!(
            "+OK Logged in, maildrop has 3 messages ({} octets)",
            total_size()
        )
    );
    assert_eq!(
        client.command("STAT").await,
        format!("+OK 3 {}", total_size())
    );
    assert!(client.command("QUIT").await.starts_with("+OK"));
    client.closed().await;

    let mut client = h.connect().await;
    assert_eq!(client.command("AUTH PLAIN").await, "+ ");
    let reply = client.command(&plain(ALICE, ALICE, PASSWORD)).await;
    assert!(reply.starts_with("+OK Logged in"), "{reply}");
    assert!(client.command("QUIT").await.starts_with("+OK"));
    client.closed().await;
}

#[tokio::test]
async fn auth_plain_refusals_name_their_reason() {
    let h = start().await;
    let mut client = h.connect().await;
    assert_eq!(client.command("AUTH PLAIN").await, "+ ");
    assert_eq!(client.command("*").await, "-ERR Authentication cancelled");
    assert_eq!(
        client.command("AUTH PLAIN !!!notbase64").await,
        "-ERR [AUTH] Invalid base64 data"
    );
    assert_eq!(client.command("AUTH PLAIN").await, "+ ");
    assert_eq!(
        client.command("%%%").await,
        "-ERR [AUTH] Invalid base64 data"
    );
    assert_eq!(
        client
            .command(&format!("AUTH PLAIN {}", STANDARD.encode("no separators")))
            .await,
        "-ERR [AUTH] Malformed PLAIN response"
    );
    assert_eq!(
        client.command("AUTH PLAIN =").await,
        "-ERR [AUTH] Malformed PLAIN response"
    );
    assert_eq!(
        client
            .command(&format!(
                "AUTH PLAIN {}",
                plain("root@example.org", ALICE, PASSWORD)
            ))
            .await,
        "-ERR [AUTH] Authorization identity must be the user itself"
    );
    assert_eq!(
        client
            .command(&format!("AUTH PLAIN {}", plain("", ALICE, "wrong")))
            .await,
        "-ERR [AUTH] Authentication failed"
    );
    assert_eq!(
        client.command("AUTH CRAM-MD5").await,
        "-ERR Unsupported authentication mechanism"
    );
    // Still in AUTHORIZATION, and a right answer still works.
    let reply = client
        .command(&format!("AUTH PLAIN {}", plain("", ALICE, PASSWORD)))
        .await;
    assert!(reply.starts_with("+OK Logged in"), "{reply}");
}

#[tokio::test]
async fn wrong_password_unknown_user_and_disabled_account() {
    let h = start().await;
    let mut client = h.connect().await;
    assert_eq!(
        client.command(&format!("USER {ALICE}")).await,
        "+OK Send PASS"
    );
    assert_eq!(
        client.command("PASS nope").await,
        "-ERR [AUTH] Authentication failed"
    );
    // The USER is forgotten after a failed PASS.
    assert_eq!(
        client.command(&format!("PASS {PASSWORD}")).await,
        "-ERR Send USER first"
    );
    assert_eq!(
        client.command("USER nobody@example.org").await,
        "+OK Send PASS"
    );
    assert_eq!(
        client.command(&format!("PASS {PASSWORD}")).await,
        "-ERR [AUTH] Authentication failed"
    );

    h.store.set_enabled(h.account_id, false).await.unwrap();
    assert_eq!(
        client.command(&format!("USER {ALICE}")).await,
        "+OK Send PASS"
    );
    assert_eq!(
        client.command(&format!("PASS {PASSWORD}")).await,
        "-ERR [AUTH] Account disabled"
    );
}

#[tokio::test]
async fn dele_hides_a_message_and_rset_brings_it_back() {
    let h = start().await;
    let mut client = h.logged_in().await;
    assert_eq!(client.command("DELE 1").await, "+OK Message 1 deleted");
    let rest = MESSAGE_2.len() + MESSAGE_3.len();
    assert_eq!(client.command("STAT").await, format!("+OK 2 {rest}"));
    assert_eq!(
        client.command("DELE 1").await,
        "-ERR Message 1 already deleted"
    );
    assert_eq!(
        client.command("RETR 1").await,
        "-ERR Message 1 already deleted"
    );
    assert_eq!(
        client.command("TOP 1 0").await,
        "-ERR Message 1 already deleted"
    );
    assert_eq!(
        client.command("LIST 1").await,
        "-ERR Message 1 already deleted"
    );
    assert_eq!(
        client.command("UIDL 1").await,
        "-ERR Message 1 already deleted"
    );
    assert_eq!(
        client.command("LIST").await,
        format!("+OK 2 messages ({rest} octets)")
    );
    assert_eq!(
        client.multiline_lines().await,
        [
            format!("2 {}", MESSAGE_2.len()),
            format!("3 {}", MESSAGE_3.len())
        ]
    );
    assert_eq!(
        client.command("UIDL").await,
        "+OK Unique-ID listing follows"
    );
    let listing = client.multiline_lines().await;
    assert_eq!(listing.len(), 2);
    assert!(
        listing[0].starts_with("2 ") && listing[1].starts_with("3 "),
        "{listing:?}"
    );

    assert_eq!(
        client.command("RSET").await,
        format!("+OK Maildrop has 3 messages ({} octets)", total_size())
    );
    assert_eq!(
        client.command("STAT").await,
        format!("+OK 3 {}", total_size())
    );
    assert_eq!(
        client.command("QUIT").await,
        "+OK pop.example.org POP3 server signing off (0 messages deleted)"
    );
    client.closed().await;
    assert_eq!(h.uids().await.len(), 3);
    assert_eq!(h.used_bytes().await, total_size() as i64);
}

#[tokio::test]
async fn dele_then_quit_removes_exactly_the_deleted_messages() {
    let h = start().await;
    let uids = h.uids().await;
    assert_eq!(h.used_bytes().await, total_size() as i64);
    let mut client = h.logged_in().await;
    assert_eq!(client.command("DELE 1").await, "+OK Message 1 deleted");
    assert_eq!(client.command("DELE 3").await, "+OK Message 3 deleted");
    assert_eq!(
        client.command("QUIT").await,
        "+OK pop.example.org POP3 server signing off (2 messages deleted)"
    );
    client.closed().await;
    assert_eq!(h.uids().await, vec![uids[1]]);
    assert_eq!(h.used_bytes().await, MESSAGE_2.len() as i64);

    // The next session sees the one message left, numbered 1, with its old unique-id.
    let (_, uid_validity, _) = h.store.maildrop(h.account_id).await.unwrap();
    let mut client = h.logged_in().await;
    assert_eq!(
        client.command("STAT").await,
        format!("+OK 1 {}", MESSAGE_2.len())
    );
    assert_eq!(
        client.command("UIDL 1").await,
        format!("+OK 1 {uid_validity}.{}", uids[1])
    );
}

#[tokio::test]
async fn dele_then_a_dropped_connection_removes_nothing() {
    let h = start().await;
    let mut client = h.logged_in().await;
    assert_eq!(client.command("DELE 1").await, "+OK Message 1 deleted");
    assert_eq!(client.command("DELE 2").await, "+OK Message 2 deleted");
    drop(client);
    h.lease_released().await;
    assert_eq!(h.uids().await.len(), 3);
    assert_eq!(h.used_bytes().await, total_size() as i64);
    let mut client = h.logged_in().await;
    assert_eq!(
        client.command("STAT").await,
        format!("+OK 3 {}", total_size())
    );
}

#[tokio::test]
async fn a_second_session_gets_in_use_until_the_first_quits() {
    let h = start().await;
    let mut first = h.logged_in().await;

    let mut second = h.connect().await;
    assert_eq!(
        second.command(&format!("USER {ALICE}")).await,
        "+OK Send PASS"
    );
    assert_eq!(
        second.command(&format!("PASS {PASSWORD}")).await,
        "-ERR [IN-USE] Maildrop is locked by another session"
    );
    // RFC 2449: the session stays in AUTHORIZATION.
    assert_eq!(
        second.command("STAT").await,
        "-ERR Command not valid in this state"
    );
    assert_eq!(
        second
            .command(&format!("AUTH PLAIN {}", plain("", ALICE, PASSWORD)))
            .await,
        "-ERR [IN-USE] Maildrop is locked by another session"
    );

    assert_eq!(first.command("DELE 2").await, "+OK Message 2 deleted");
    assert!(first.command("QUIT").await.starts_with("+OK"));
    first.closed().await;

    second.login_user_pass(ALICE, PASSWORD).await;
    assert_eq!(
        second.command("STAT").await,
        format!("+OK 2 {}", MESSAGE_1.len() + MESSAGE_3.len())
    );
}

#[tokio::test]
async fn commands_out_of_state_and_unknown_commands_are_refused() {
    let h = start().await;
    let mut client = h.connect().await;
    for command in [
        "STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL",
    ] {
        assert_eq!(
            client.command(command).await,
            "-ERR Command not valid in this state",
            "{command}"
        );
    }
    let mut client = h.connect().await;
    assert_eq!(client.command("PASS x").await, "-ERR Send USER first");
    assert_eq!(
        client
            .command("APOP alice c4c9334bac560ecc979e58001b3e22fb")
            .await,
        "-ERR Unknown command"
    );
    assert_eq!(
        client.command("RETR x").await,
        "-ERR Syntax error, usage: RETR msg"
    );
    client.login_user_pass(ALICE, PASSWORD).await;
    assert_eq!(
        client.command("USER alice").await,
        "-ERR Command not valid in this state"
    );
    assert_eq!(
        client.command("PASS x").await,
        "-ERR Command not valid in this state"
    );
    assert_eq!(
        client.command("AUTH PLAIN").await,
        "-ERR Command not valid in this state"
    );
    assert_eq!(
        client.command("STLS").await,
        "-ERR Command not valid in this state"
    );
    assert_eq!(
        client.command("TOP 1").await,
        "-ERR Syntax error, usage: TOP msg n"
    );
    assert_eq!(client.command("XYZZY").await, "-ERR Unknown command");
    assert_eq!(client.command("RETR 99").await, "-ERR No such message");
    // CAPA in TRANSACTION no longer offers ways to log in.
    assert_eq!(client.command("CAPA").await, "+OK Capability list follows");
    let capabilities = client.multiline_lines().await;
    assert!(
        !capabilities
            .iter()
            .any(|c| c == "USER" || c.starts_with("SASL")),
        "{capabilities:?}"
    );
    assert_eq!(
        client.command("STAT").await,
        format!("+OK 3 {}", total_size())
    );
}

#[tokio::test]
async fn ten_bad_commands_close_the_connection() {
    let h = start().await;
    let mut client = h.connect().await;
    for _ in 0..9 {
        assert_eq!(client.command("BOGUS").await, "-ERR Unknown command");
    }
    assert_eq!(
        client.command("BOGUS").await,
        "-ERR Too many errors, closing connection"
    );
    client.closed().await;
}

#[tokio::test]
async fn a_line_too_long_is_refused_and_the_session_goes_on() {
    let h = start().await;
    let mut client = h.connect().await;
    let long = format!("USER {}", "x".repeat(600));
    assert_eq!(client.command(&long).await, "-ERR Line too long");
    client.login_user_pass(ALICE, PASSWORD).await;
    assert_eq!(
        client.command(&"x".repeat(10_000)).await,
        "-ERR Line too long"
    );
    assert_eq!(
        client.command("STAT").await,
        format!("+OK 3 {}", total_size())
    );
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let h = start().await;
    let mut client = h.connect().await;
    client
        .send_raw(
            format!(
                "USER {ALICE}\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST 1\r\nDELE 2\r\nSTAT\r\nNOOP\r\n"
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(client.line().await, "+OK Send PASS");
    assert!(client.line().await.starts_with("+OK Logged in"));
    assert_eq!(client.line().await, format!("+OK 3 {}", total_size()));
    assert_eq!(client.line().await, format!("+OK 1 {}", MESSAGE_1.len()));
    assert_eq!(client.line().await, "+OK Message 2 deleted");
    assert_eq!(
        client.line().await,
        format!("+OK 2 {}", MESSAGE_1.len() + MESSAGE_3.len())
    );
    assert_eq!(client.line().await, "+OK");
}

#[tokio::test]
async fn stls_upgrades_the_connection_for_a_tokio_rustls_client() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    postcell_net::tls::generate_self_signed("pop.example.org", &cert, &key).unwrap();
    let acceptor = postcell_net::tls::load_acceptor(&cert, &key).unwrap();
    let h = start_with(test_config(), Some(acceptor)).await;

    let mut client = h.connect().await;
    assert_eq!(client.command("CAPA").await, "+OK Capability list follows");
    assert!(client.multiline_lines().await.contains(&"STLS".to_owned()));
    assert_eq!(client.command("USER alice").await, "+OK Send PASS");
    assert_eq!(client.command("STLS").await, "+OK Begin TLS negotiation");
    let tcp = client.stream.into_inner();
    let mut client = Client::new(tls_connect(tcp, &cert).await);

    assert_eq!(client.command("CAPA").await, "+OK Capability list follows");
    let capabilities = client.multiline_lines().await;
    assert!(
        !capabilities.contains(&"STLS".to_owned()),
        "{capabilities:?}"
    );
    assert!(
        capabilities.contains(&"SASL PLAIN".to_owned()),
        "{capabilities:?}"
    );
    assert_eq!(client.command("STLS").await, "-ERR TLS already active");
    // The USER given in the clear is forgotten.
    assert_eq!(
        client.command(&format!("PASS {PASSWORD}")).await,
        "-ERR Send USER first"
    );
    let reply = client
        .command(&format!("AUTH PLAIN {}", plain("", ALICE, PASSWORD)))
        .await;
    assert!(reply.starts_with("+OK Logged in"), "{reply}");
    assert_eq!(
        client.command("RETR 2").await,
        format!("+OK {} octets", MESSAGE_2.len())
    );
    assert_eq!(client.multiline().await, MESSAGE_2);
    assert!(client.command("QUIT").await.starts_with("+OK"));
}

async fn tls_connect(tcp: TcpStream, cert: &Path) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector
        .connect(ServerName::try_from("pop.example.org").unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_idle_client_is_told_and_disconnected() {
    let config = Pop3Config {
        idle_timeout: Duration::from_secs(1),
        ..test_config()
    };
    let h = start_with(config, None).await;
    let mut client = h.logged_in().await;
    assert_eq!(
        client.line().await,
        "-ERR [SYS/TEMP] Idle timeout, closing connection"
    );
    client.closed().await;
    h.lease_released().await;
}

#[tokio::test]
async fn shutdown_says_goodbye_to_idle_sessions() {
    let h = start().await;
    let mut client = h.logged_in().await;
    h.shutdown.cancel();
    assert_eq!(client.line().await, "-ERR [SYS/TEMP] Server shutting down");
    client.closed().await;
    h.lease_released().await;
}

#[tokio::test]
async fn a_session_that_loses_its_lease_ends_and_deletes_nothing() {
    let config = Pop3Config {
        lease_ttl: Duration::from_secs(3),
        ..test_config()
    };
    let h = start_with(config, None).await;
    let mut client = h.logged_in().await;
    assert_eq!(client.command("DELE 1").await, "+OK Message 1 deleted");
    // Another owner takes the lease, as after a long network partition.
    let name = format!("pop3:maildrop:{}", h.account_id);
    let (owner, _) = h.store.lease_holder(&name).await.unwrap().unwrap();
    assert!(owner.starts_with("test:"), "{owner}");
    h.store.release_lease(&name, &owner).await.unwrap();
    assert!(
        h.store
            .acquire_lease(&name, "elsewhere", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(
        client.line().await,
        "-ERR [SYS/TEMP] Maildrop lock lost, closing connection"
    );
    client.closed().await;
    assert_eq!(h.uids().await.len(), 3);
    assert_eq!(
        h.store.lease_holder(&name).await.unwrap().unwrap().0,
        "elsewhere"
    );
}

#[tokio::test]
async fn a_store_failing_at_quit_removes_nothing() {
    let h = start().await;
    let mut client = h.logged_in().await;
    assert_eq!(client.command("DELE 1").await, "+OK Message 1 deleted");
    h.store.close().await;
    assert_eq!(
        client.command("QUIT").await,
        "-ERR [SYS/TEMP] Some deleted messages not removed"
    );
    client.closed().await;
    let reopened = Store::open(&store_config(h.dir.path())).await.unwrap();
    let (_, _, messages) = reopened.maildrop(h.account_id).await.unwrap();
    assert_eq!(messages.len(), 3);
}

#[tokio::test]
async fn the_lease_is_renewed_while_the_session_lives() {
    let config = Pop3Config {
        lease_ttl: Duration::from_secs(3),
        ..test_config()
    };
    let h = start_with(config, None).await;
    let mut first = h.logged_in().await;
    // Well past the TTL: only renewals keep the lease.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut second = h.connect().await;
    assert_eq!(
        second
            .command(&format!("AUTH PLAIN {}", plain("", ALICE, PASSWORD)))
            .await,
        "-ERR [IN-USE] Maildrop is locked by another session"
    );
    assert_eq!(
        first.command("STAT").await,
        format!("+OK 3 {}", total_size())
    );
}

/// A connection the server believes comes from 192.0.2.1, to see what a remote client
/// without TLS is offered.
async fn connect_as_remote(
    h: &Harness,
    config: Pop3Config,
    tls: Option<TlsAcceptor>,
) -> Client<TcpStream> {
    let directory = Directory::new(h.store.clone(), DirectoryConfig::default());
    let server = Pop3Server::new(config, directory, tls);
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let client = TcpStream::connect(local).await.unwrap();
    let (tcp, _) = socket.accept().await.unwrap();
    let remote_peer: SocketAddr = "192.0.2.1:40000".parse().unwrap();
    let connection = postcell_net::Connection::new(tcp, remote_peer, local, h.shutdown.clone());
    tokio::spawn(server.handle(connection));
    let mut client = Client::new(client);
    assert_eq!(client.line().await, "+OK pop.example.org POP3 server ready");
    client
}

#[tokio::test]
async fn a_remote_client_without_tls_may_not_send_passwords() {
    let h = start().await;
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    postcell_net::tls::generate_self_signed("pop.example.org", &cert, &key).unwrap();
    let acceptor = postcell_net::tls::load_acceptor(&cert, &key).unwrap();
    let mut client = connect_as_remote(&h, test_config(), Some(acceptor)).await;

    assert_eq!(client.command("CAPA").await, "+OK Capability list follows");
    let capabilities = client.multiline_lines().await;
    assert!(
        capabilities.contains(&"STLS".to_owned()),
        "{capabilities:?}"
    );
    assert!(
        !capabilities
            .iter()
            .any(|c| c == "USER" || c.starts_with("SASL")),
        "{capabilities:?}"
    );
    let refused = "-ERR [AUTH] Plaintext authentication disallowed on non-encrypted connections";
    assert_eq!(client.command(&format!("USER {ALICE}")).await, refused);
    assert_eq!(
        client
            .command(&format!("AUTH PLAIN {}", plain("", ALICE, PASSWORD)))
            .await,
        refused
    );
    assert_eq!(
        client.command("AUTH").await,
        "+OK Supported SASL mechanisms follow"
    );
    assert!(client.multiline().await.is_empty());

    // The operator may allow it anyway.
    let allowed = Pop3Config {
        allow_plaintext_auth: true,
        ..test_config()
    };
    let mut client = connect_as_remote(&h, allowed, None).await;
    client.login_user_pass(ALICE, PASSWORD).await;
}
