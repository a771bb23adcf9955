//! End-to-end SMTP sessions: a real SQLite store in a temporary folder, a real
//! listener on 127.0.0.1, and a hand-written SMTP client over a real `TcpStream`
//! (`Client` below), so every reply is checked byte for byte. STARTTLS uses
//! tokio-rustls as the client, pinned to the certificate the test generated.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use postcell_directory::{Directory, DirectoryConfig, hash_password};
use postcell_net::{CancellationToken, Listener, ListenerOptions, TaskTracker, serve};
use postcell_smtp::{BUSY_REPLY, SmtpConfig, SmtpServer};
use postcell_store::{
    Account, BackendConfig, BlobConfig, DeliveryStatus, Durability, LogQuery, NewAccount, Store,
    StoreConfig,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const HOST: &str = "mx.example.org";
const PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------------
// The server under test

struct TestServer {
    addr: SocketAddr,
    store: Store,
    alice: Account,
    bob: Account,
    carol: Account,
    /// The certificate the server presents, when TLS is configured, and its PEM file.
    certificate: Option<CertificateDer<'static>>,
    certificate_path: Option<std::path::PathBuf>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

fn config() -> SmtpConfig {
    SmtpConfig {
        hostname: HOST.into(),
        max_errors: 50,
        ..SmtpConfig::default()
    }
}

/// argon2 is slow in a debug build: hash the one password once per test binary.
async fn password_hash() -> String {
    static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    HASH.get_or_init(|| async { hash_password(PASSWORD).await.expect("hash") })
        .await
        .clone()
}

async fn account(store: &Store, name: &str, quota_bytes: i64) -> Account {
    store
        .create_account(&NewAccount {
            name: name.into(),
            password_hash: password_hash().await,
            quota_bytes,
            is_admin: false,
        })
        .await
        .expect("create account")
}

impl TestServer {
    async fn start(config: SmtpConfig) -> TestServer {
        TestServer::start_on("127.0.0.1:0", config, false).await
    }

    async fn start_on(bind: &str, config: SmtpConfig, tls: bool) -> TestServer {
        TestServer::start_full(bind, config, tls, 50).await
    }

    async fn start_full(
        bind: &str,
        config: SmtpConfig,
        tls: bool,
        max_connections: usize,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&StoreConfig {
            backend: BackendConfig::Sqlite {
                path: dir.path().join("state.db"),
                durability: Durability::Full,
            },
            blobs: BlobConfig::Folder(dir.path().join("blobs")),
            node_id: "test-node".into(),
        })
        .await
        .expect("open store");
        store.add_domain("example.org").await.expect("domain");
        let alice = account(&store, "alice@example.org", 0).await;
        let bob = account(&store, "bob@example.org", 0).await;
        let carol = account(&store, "carol@example.org", 2000).await;
        let dave = account(&store, "dave@example.org", 0).await;
        store
            .set_enabled(dave.id, false)
            .await
            .expect("disable dave");
        store
            .add_alias(
                "team@example.org",
                &["alice@example.org".into(), "bob@example.org".into()],
            )
            .await
            .expect("alias");
        store
            .add_alias(
                "forward@example.org",
                &["bob@example.org".into(), "ext@example.net".into()],
            )
            .await
            .expect("forward alias");

        let (acceptor, certificate, certificate_path) = if tls {
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            postcell_net::tls::generate_self_signed(HOST, &cert, &key).expect("certificate");
            let acceptor = postcell_net::tls::load_acceptor(&cert, &key).expect("acceptor");
            let der = CertificateDer::from_pem_file(&cert).expect("read certificate");
            (Some(acceptor), Some(der), Some(cert))
        } else {
            (None, None, None)
        };

        let directory = Directory::new(store.clone(), DirectoryConfig::default());
        let server = SmtpServer::new(config, directory, acceptor);
        let listener = Listener::bind("mx", bind.parse().expect("address"))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local address");
        let shutdown = CancellationToken::new();
        let options = ListenerOptions {
            implicit_tls: None,
            max_connections,
            busy_reply: BUSY_REPLY,
        };
        tokio::spawn(serve(
            listener,
            options,
            shutdown.clone(),
            TaskTracker::new(),
            move |conn| server.clone().handle(conn),
        ));
        TestServer {
            addr,
            store,
            alice,
            bob,
            carol,
            certificate,
            certificate_path,
            shutdown,
            _dir: dir,
        }
    }

    /// Connects and reads the greeting.
    async fn connect(&self) -> Client<TcpStream> {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let mut client = Client::new(stream);
        client.expect("220 mx.example.org ESMTP Postcell").await;
        client
    }

    /// Connects, says EHLO and reads the capabilities.
    async fn greeted(&self) -> Client<TcpStream> {
        let mut client = self.connect().await;
        client.send("EHLO client.example.net\r\n").await;
        client.reply().await;
        client
    }

    /// The messages in an account's INBOX, as stored.
    async fn inbox(&self, account: &Account) -> Vec<Vec<u8>> {
        let (_, _, messages) = self.store.maildrop(account.id).await.expect("maildrop");
        let mut blobs = Vec::new();
        for message in messages {
            blobs.push(self.store.get_blob(&message.blob_id).await.expect("blob"));
        }
        blobs
    }

    async fn rejections_for(&self, address: &str) -> Vec<String> {
        let records = self
            .store
            .search_log(&LogQuery {
                address: Some(address.into()),
                status: Some(DeliveryStatus::Rejected),
                ..LogQuery::default()
            })
            .await
            .expect("search log");
        records.into_iter().filter_map(|r| r.reply).collect()
    }
}

// ---------------------------------------------------------------------------------
// A hand-written SMTP client

struct Client<S> {
    stream: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    fn new(stream: S) -> Client<S> {
        Client {
            stream: BufReader::new(stream),
        }
    }

    async fn send(&mut self, text: &str) {
        self.send_bytes(text.as_bytes()).await;
    }

    async fn send_bytes(&mut self, bytes: &[u8]) {
        let stream = self.stream.get_mut();
        stream.write_all(bytes).await.expect("write");
        stream.flush().await.expect("flush");
    }

    /// One reply line, without CRLF.
    async fn line(&mut self) -> String {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(20), self.stream.read_line(&mut line))
            .await
            .expect("the server answers within 20 s")
            .expect("read");
        assert!(n > 0, "the server closed the connection");
        assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// A whole reply, multi-line replies joined with "\n".
    async fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }

    async fn expect(&mut self, expected: &str) {
        assert_eq!(self.reply().await, expected);
    }

    /// Sends one command line and checks the reply.
    async fn command(&mut self, command: &str, expected: &str) {
        self.send(&format!("{command}\r\n")).await;
        let reply = self.reply().await;
        assert_eq!(reply, expected, "reply to {command:?}");
    }

    /// The server closes the connection (after any replies already read).
    async fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(20), self.stream.read_to_end(&mut rest))
                .await
                .expect("the server closes within 20 s");
        // A reset after close is as good as an orderly close.
        if read.is_ok() {
            assert_eq!(
                String::from_utf8_lossy(&rest),
                "",
                "nothing after the last reply"
            );
        }
    }

    /// A whole transaction: returns the queue id.
    async fn deliver(&mut self, from: &str, to: &[&str], message: &str) -> String {
        self.command(&format!("MAIL FROM:<{from}>"), "250 2.1.0 OK")
            .await;
        for rcpt in to {
            self.command(&format!("RCPT TO:<{rcpt}>"), "250 2.1.5 OK")
                .await;
        }
        self.command("DATA", "354 End data with <CR><LF>.<CR><LF>")
            .await;
        self.send(message).await;
        self.send(".\r\n").await;
        let reply = self.reply().await;
        reply
            .strip_prefix("250 2.0.0 Ok: queued as ")
            .unwrap_or_else(|| panic!("message not accepted: {reply}"))
            .to_owned()
    }
}

/// Splits a stored message into its trace headers (Return-Path, Received, folded)
/// and the message as the client sent it.
fn split_trace(stored: &[u8]) -> (String, Vec<u8>) {
    let text = stored;
    let mut end = 0;
    loop {
        let rest = &text[end..];
        let starts_trace = rest.starts_with(b"Return-Path: ")
            || rest.starts_with(b"Received: ")
            || (end > 0 && rest.starts_with(b"\t"));
        if !starts_trace {
            break;
        }
        let line_end = rest.windows(2).position(|w| w == b"\r\n").expect("CRLF") + 2;
        end += line_end;
    }
    (
        String::from_utf8_lossy(&text[..end]).into_owned(),
        text[end..].to_vec(),
    )
}

// ---------------------------------------------------------------------------------
// Greeting, EHLO and the simple commands

#[tokio::test]
async fn greeting_ehlo_and_simple_commands() {
    let server = TestServer::start(config()).await;
    let mut client = server.connect().await;
    client
        .command(
            "EHLO client.example.net",
            "250-mx.example.org\n250-PIPELINING\n250-8BITMIME\n250-SMTPUTF8\n250-SIZE 26214400\n\
             250-ENHANCEDSTATUSCODES\n250 AUTH PLAIN LOGIN",
        )
        .await;
    client
        .command("HELO client.example.net", "250 mx.example.org")
        .await;
    client.command("NOOP", "250 2.0.0 OK").await;
    client.command("RSET", "250 2.0.0 OK").await;
    client
        .command(
            "VRFY alice",
            "252 2.5.2 Cannot VRFY user, but will accept message",
        )
        .await;
    client
        .command(
            "HELP",
            "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
        )
        .await;
    client
        .command("EXPN team", "502 5.5.1 Command not implemented")
        .await;
    client
        .command("BDAT 10 LAST", "502 5.5.1 Command not implemented")
        .await;
    client
        .command("STARTTLS", "454 4.7.0 TLS not available")
        .await;
    client.command("QUIT", "221 2.0.0 Bye").await;
    client.expect_closed().await;
}

#[tokio::test]
async fn commands_out_of_sequence_get_503() {
    let server = TestServer::start(config()).await;
    let mut client = server.connect().await;
    client
        .command(
            "MAIL FROM:<x@example.net>",
            "503 5.5.1 Error: send HELO/EHLO first",
        )
        .await;
    client
        .command(
            "RCPT TO:<alice@example.org>",
            "503 5.5.1 Error: need MAIL command",
        )
        .await;
    client
        .command("DATA", "503 5.5.1 Error: need MAIL command")
        .await;
    client
        .command("HELO client.example.net", "250 mx.example.org")
        .await;
    client
        .command("AUTH PLAIN", "503 5.5.1 Error: send EHLO first")
        .await;
    client
        .command(
            "RCPT TO:<alice@example.org>",
            "503 5.5.1 Error: need MAIL command",
        )
        .await;
    client
        .command("MAIL FROM:<x@example.net>", "250 2.1.0 OK")
        .await;
    client
        .command(
            "MAIL FROM:<x@example.net>",
            "503 5.5.1 Error: nested MAIL command",
        )
        .await;
    client
        .command("DATA", "503 5.5.1 Error: need RCPT command")
        .await;
    client.command("RSET", "250 2.0.0 OK").await;
    client
        .command(
            "RCPT TO:<alice@example.org>",
            "503 5.5.1 Error: need MAIL command",
        )
        .await;
    // HELO/EHLO end a transaction too.
    client
        .command("MAIL FROM:<x@example.net>", "250 2.1.0 OK")
        .await;
    client.command("EHLO client.example.net", "250-mx.example.org\n250-PIPELINING\n250-8BITMIME\n250-SMTPUTF8\n250-SIZE 26214400\n250-ENHANCEDSTATUSCODES\n250 AUTH PLAIN LOGIN").await;
    client
        .command("DATA", "503 5.5.1 Error: need MAIL command")
        .await;
}

#[tokio::test]
async fn bad_input_gets_exact_replies() {
    let mut config = config();
    config.max_line_length = 100;
    let server = TestServer::start(config).await;
    let mut client = server.greeted().await;
    client
        .command("FROB", "500 5.5.1 Command unrecognized")
        .await;
    client.command("", "500 5.5.1 Command unrecognized").await;
    client
        .command(
            &format!("NOOP {}", "x".repeat(200)),
            "500 5.5.2 Line too long",
        )
        .await;
    client.send("NOOP\n").await;
    client
        .expect("500 5.5.2 Bare LF not allowed; end lines with CRLF")
        .await;
    client.send("NOOP a\0b\r\n").await;
    client.expect("500 5.5.2 NUL character not allowed").await;
    client
        .command("HELO", "501 5.5.4 Syntax: HELO domain")
        .await;
    client
        .command(
            "MAIL FROM:x@example.net",
            "501 5.5.4 Syntax: MAIL FROM:<reverse-path> [parameters]",
        )
        .await;
    client
        .command(
            "MAIL FROM:<no address>",
            "501 5.1.7 Bad sender address syntax",
        )
        .await;
    client
        .command(
            "MAIL FROM:<x@example.net> SIZE=lots",
            "501 5.5.4 Invalid parameter: SIZE",
        )
        .await;
    client
        .command(
            "MAIL FROM:<x@example.net> RET=HDRS",
            "555 5.5.4 Unsupported parameter: RET",
        )
        .await;
    client
        .command(
            "MAIL FROM:<x@example.net> BODY=BINARYMIME",
            "555 5.5.4 Unsupported parameter: BODY=BINARYMIME",
        )
        .await;
    client
        .command(
            "MAIL FROM:<x@example.net> BODY=8BITMIME SMTPUTF8",
            "250 2.1.0 OK",
        )
        .await;
    client
        .command("RCPT TO:<>", "501 5.1.3 Bad recipient address syntax")
        .await;
    client
        .command("RCPT TO:<alice>", "501 5.1.3 Bad recipient address syntax")
        .await;
    client
        .command(
            "RCPT TO:<alice@example.org> NOTIFY=NEVER",
            "555 5.5.4 Unsupported parameter: NOTIFY",
        )
        .await;
    client
        .command("RCPT TO:<alice@example.org>", "250 2.1.5 OK")
        .await;
    // The session is still in step after all of that.
    client.command("NOOP", "250 2.0.0 OK").await;
}

#[tokio::test]
async fn too_many_errors_close_the_session() {
    let mut config = config();
    config.max_errors = 3;
    let server = TestServer::start(config).await;
    let mut client = server.greeted().await;
    client.command("NOOP", "250 2.0.0 OK").await;
    client
        .command("FROB", "500 5.5.1 Command unrecognized")
        .await;
    client
        .command(
            "RCPT TO:<a@example.org>",
            "503 5.5.1 Error: need MAIL command",
        )
        .await;
    client.send("FROB\r\n").await;
    client.expect("500 5.5.1 Command unrecognized").await;
    client
        .expect("421 4.7.0 Too many errors, closing connection")
        .await;
    client.expect_closed().await;
}

#[tokio::test]
async fn an_idle_client_is_disconnected() {
    let mut config = config();
    config.idle_timeout = Duration::from_millis(300);
    let server = TestServer::start(config).await;
    let mut client = server.greeted().await;
    client
        .expect("421 4.4.2 mx.example.org Idle timeout, closing connection")
        .await;
    client.expect_closed().await;
}

#[tokio::test]
async fn a_shutdown_says_goodbye_to_idle_sessions() {
    let server = TestServer::start(config()).await;
    let mut client = server.greeted().await;
    server.shutdown.cancel();
    client
        .expect("421 4.3.2 mx.example.org Service shutting down")
        .await;
    client.expect_closed().await;
}

// ---------------------------------------------------------------------------------
// Delivery

#[tokio::test]
async fn a_message_is_stored_byte_identical_after_the_trace_headers() {
    let server = TestServer::start(config()).await;
    let mut client = server.greeted().await;
    let message = "From: Sender <sender@example.net>\r\n\
                   To: Alice <alice@example.org>\r\n\
                   Subject: =?UTF-8?B?44GT44KT44Gr44Gh44Gv?=\r\n\
                   Message-ID: <first@example.net>\r\n\
                   \r\n\
                   Hello Alice,\r\n\
                   ..a line that starts with a dot\r\n\
                   \tindented, 8-bit: \u{3053}\u{3093}\u{306b}\u{3061}\u{306f}\r\n\
                   \r\n\
                   \r\n";
    let queue_id = client
        .deliver("sender@example.net", &["Alice@Example.ORG"], message)
        .await;
    let inbox = server.inbox(&server.alice).await;
    assert_eq!(inbox.len(), 1);
    let (trace, body) = split_trace(&inbox[0]);
    // What the client sent, dot-unstuffed, is exactly what is stored.
    assert_eq!(
        body,
        message.replace("\r\n..a line", "\r\n.a line").into_bytes()
    );
    assert!(
        trace.starts_with(
            "Return-Path: <sender@example.net>\r\n\
             Received: from client.example.net ([127.0.0.1]) by mx.example.org (Postcell)\r\n\
             \twith ESMTP id "
        ),
        "{trace}"
    );
    assert!(
        trace.contains(&format!("id {queue_id} for <Alice@example.org>;\r\n\t")),
        "{trace}"
    );
    for line in trace.split("\r\n") {
        assert!(line.len() <= 78, "trace line too long: {line:?}");
    }
    // The delivery is in the log with its Message-ID.
    let records = server
        .store
        .search_log(&LogQuery {
            address: Some("Alice@example.org".into()),
            ..LogQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, "delivered");
    assert_eq!(records[0].message_id.as_deref(), Some("first@example.net"));
    assert_eq!(records[0].sender, "sender@example.net");
    // The transaction is over: another may start.
    client.command("MAIL FROM:<>", "250 2.1.0 OK").await;
}

#[tokio::test]
async fn a_bounce_has_the_null_sender() {
    let server = TestServer::start(config()).await;
    let mut client = server.greeted().await;
    client.command("MAIL FROM:<>", "250 2.1.0 OK").await;
    client
        .command("RCPT TO:<bob@example.org>", "250 2.1.5 OK")
        .await;
    client
        .command("DATA", "354 End data with <CR><LF>.<CR><LF>")
        .await;
    client
        .send("Subject: bounce\r\n\r\nundeliverable\r\n.\r\n")
        .await;
    assert!(client.reply().await.starts_with("250 2.0.0 Ok: queued as "));
    let inbox = server.inbox(&server.bob).await;
    assert!(inbox[0].starts_with(b"Return-Path: <>\r\nReceived: "));
}

#[tokio::test]
async fn recipients_fan_out_through_aliases_and_each_account_gets_one_copy() {
    let server = TestServer::start(config()).await;
    let mut client = server.greeted().await;
    // alice directly, and again through the alias team -> alice, bob.
    client
        .deliver(
            "sender@example.net",
            &[
                "alice@example.org",
                "team@example.org",
                "alice+tag@example.org",
            ],
            "Subject: team\r\n\r\nhello team\r\n",
        )
        .await;
    let (alice, bob) = (
        server.inbox(&server.alice).await,
        server.inbox(&server.bob).await,
    );
    assert_eq!((alice.len(), bob.len()), (1, 1));
    assert_eq!(alice[0], bob[0], "one blob for every copy");
    let (trace, body) = split_trace(&alice[0]);
    assert_eq!(body, b"Subject: team\r\n\r\nhello team\r\n");
    // Several recipients: the Received header names none of them (Bcc stays hidden).
    assert!(!trace.contains(" for "), "{trace}");
}

#[tokio::test]
async fn an_alias_may_forward_outside_without_authentication() {
    let server = TestServer::start(config()).await;
    let mut client = server.greeted().await;
    client
        .deliver(
            "sender@example.net",
            &["forward@example.org"],
            "Subject: fw\r\n\r\nx\r\n",
        )
        .await;
    assert_eq!(server.inbox(&server.bob).await.len(), 1);
    let queued = server.store.queued(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].recipient, "ext@example.net");
    assert_eq!(queued[0].sender, "sender@example.net");
}

#[tokio::test]
async fn recipients_are_checked_at_rcpt_and_refusals_are_logged() {
    let server = TestServer::start(config()).await;
    let mut client = server.greeted().await;
    client
        .command("MAIL FROM:<sender@example.net>", "250 2.1.0 OK")
        .await;
    client
        .command(
            "RCPT TO:<nobody@example.org>",
            "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown",
        )
        .await;
    client
        .command(
            "RCPT TO:<dave@example.org>",
            "550 5.2.1 <dave@example.org>: Recipient address rejected: mailbox disabled",
        )
        .await;
    client
        .command(
            "RCPT TO:<someone@example.net>",
            "554 5.7.1 <someone@example.net>: Relay access denied",
        )
        .await;
    client
        .command("RCPT TO:<@example.org:bob@example.org>", "250 2.1.5 OK")
        .await;
    assert_eq!(
        server.rejections_for("nobody@example.org").await,
        ["550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"]
    );
    assert_eq!(
        server.rejections_for("someone@example.net").await,
        ["554 5.7.1 <someone@example.net>: Relay access denied"]
    );
    let records = server
        .store
        .search_log(&LogQuery {
            address: Some("dave@example.org".into()),
            ..LogQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(records[0].direction, "inbound");
    assert_eq!(records[0].sender, "sender@example.net");
    assert_eq!(records[0].remote.as_deref(), Some("smtp from 127.0.0.1"));
}

#[tokio::test]
async fn relay_tricks_are_refused() {
    let server = TestServer::start(config()).await;
    let mut client = server.greeted().await;
    client
        .command("MAIL FROM:<spammer@example.net>", "250 2.1.0 OK")
        .await;
    for (rcpt, reply) in [
        // A source route through us to elsewhere: the route is ignored.
        (
            "<@example.org:victim@example.net>",
            "554 5.7.1 <victim@example.net>: Relay access denied",
        ),
        (
            "<@example.org,@b.example:victim@example.net>",
            "554 5.7.1 <victim@example.net>: Relay access denied",
        ),
        // The percent hack is a local part of ours, and nobody has it.
        (
            "<victim%example.net@example.org>",
            "550 5.1.1 <victim%example.net@example.org>: Recipient address rejected: User unknown",
        ),
        // A quoted local part holding an @.
        (
            "<\"victim@example.net\"@example.org>",
            "550 5.1.1 <\"victim@example.net\"@example.org>: Recipient address rejected: User unknown",
        ),
        (
            "<\"alice@example.org\"@example.net>",
            "554 5.7.1 <\"alice@example.org\"@example.net>: Relay access denied",
        ),
        // Address literals, even of this very host.
        (
            "<victim@[192.0.2.9]>",
            "554 5.7.1 <victim@[192.0.2.9]>: Relay access denied",
        ),
        (
            "<alice@[127.0.0.1]>",
            "554 5.7.1 <alice@[127.0.0.1]>: Relay access denied",
        ),
        // Two @ without quotes is no address at all.
        (
            "<victim@example.net@example.org>",
            "501 5.1.3 Bad recipient address syntax",
        ),
        (
            "<victim!example.net@example.org>",
            "550 5.1.1 <victim!example.net@example.org>: Recipient address rejected: User unknown",
        ),
    ] {
        client.command(&format!("RCPT TO:{rcpt}"), reply).await;
    }
    client
        .command("DATA", "503 5.5.1 Error: need RCPT command")
        .await;
    assert!(server.store.queued(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn too_many_recipients_get_452() {
    let mut config = config();
    config.max_recipients = 2;
    let server = TestServer::start(config).await;
    let mut client = server.greeted().await;
    client
        .command("MAIL FROM:<sender@example.net>", "250 2.1.0 OK")
        .await;
    client
        .command("RCPT TO:<alice@example.org>", "250 2.1.5 OK")
        .await;
    client
        .command("RCPT TO:<bob@example.org>", "250 2.1.5 OK")
        .await;
    client
        .command(
            "RCPT TO:<carol@example.org>",
            "452 4.5.3 Too many recipients",
        )
        .await;
    client
        .command("DATA", "354 End data with <CR><LF>.<CR><LF>")
        .await;
    client.send("Subject: two\r\n\r\n.\r\n").await;
    assert!(client.reply().await.starts_with("250 2.0.0 Ok: queued as "));
    assert!(server.inbox(&server.carol).await.is_empty());
    assert_eq!(
        server.rejections_for("carol@example.org").await,
        ["452 4.5.3 Too many recipients"]
    );
}

#[tokio::test]
async fn message_size_is_limited_at_mail_and_at_data() {
    let mut config = config();
    config.max_message_size = 1000;
    let server = TestServer::start(config).await;
    let mut client = server.connect().await;
    client.send("EHLO client.example.net\r\n").await;
    assert!(client.reply().await.contains("\n250-SIZE 1000\n"));
    client
        .command(
            "MAIL FROM:<sender@example.net> SIZE=1001",
            "552 5.3.4 Message size exceeds fixed maximum message size",
        )
        .await;
    client
        .command("MAIL FROM:<sender@example.net> SIZE=1000", "250 2.1.0 OK")
        .await;
    client
        .command("RCPT TO:<alice@example.org>", "250 2.1.5 OK")
        .await;
    client
        .command("DATA", "354 End data with <CR><LF>.<CR><LF>")
        .await;
    // The whole text is read even though it is too big; then the one reply.
    let big = format!(
        "Subject: big\r\n\r\n{}\r\n",
        "0123456789".repeat(20).repeat(10)
    );
    client.send(&big).await;
    client.send(&format!("{}\r\n.\r\n", "x".repeat(5000))).await;
    client
        .expect("552 5.3.4 Message size exceeds fixed maximum message size")
        .await;
    assert!(server.inbox(&server.alice).await.is_empty());
    assert_eq!(
        server.rejections_for("alice@example.org").await,
        ["552 5.3.4 Message size exceeds fixed maximum message size"]
    );
    // The session is in step and the transaction was reset.
    client
        .command(
            "RCPT TO:<alice@example.org>",
            "503 5.5.1 Error: need MAIL command",
        )
        .await;
    client
        .deliver(
            "sender@example.net",
            &["alice@example.org"],
            "Subject: small\r\n\r\nok\r\n",
        )
        .await;
}

#[tokio::test]
async fn quota_is_checked_at_rcpt_and_at_data() {
    let server = TestServer::start(config()).await;
    let carol = &server.carol; // quota 2000 bytes
    let mut client = server.greeted().await;
    // Larger than the whole quota: permanent.
    client
        .command("MAIL FROM:<sender@example.net> SIZE=5000", "250 2.1.0 OK")
        .await;
    client
        .command(
            "RCPT TO:<carol@example.org>",
            "552 5.2.2 <carol@example.org>: Mailbox full",
        )
        .await;
    client.command("RSET", "250 2.0.0 OK").await;
    // Fill most of it.
    client
        .deliver(
            "sender@example.net",
            &["carol@example.org"],
            &format!("Subject: a\r\n\r\n{}\r\n", "a".repeat(1200)),
        )
        .await;
    let used = server
        .store
        .account_by_id(carol.id)
        .await
        .unwrap()
        .unwrap()
        .used_bytes;
    assert!(used > 1200 && used < 2000, "{used}");
    // What is left cannot take the declared size: temporary.
    client
        .command("MAIL FROM:<sender@example.net> SIZE=900", "250 2.1.0 OK")
        .await;
    client
        .command(
            "RCPT TO:<carol@example.org>",
            "452 4.2.2 <carol@example.org>: Mailbox full",
        )
        .await;
    client.command("RSET", "250 2.0.0 OK").await;
    // Undeclared sizes are found out at DATA: temporary, or permanent when even an
    // empty mailbox could not take it.
    for (size, reply) in [
        (900, "452 4.2.2 Mailbox full, try again later"),
        (3000, "552 5.2.2 Mailbox full"),
    ] {
        client
            .command("MAIL FROM:<sender@example.net>", "250 2.1.0 OK")
            .await;
        client
            .command("RCPT TO:<carol@example.org>", "250 2.1.5 OK")
            .await;
        client
            .command("DATA", "354 End data with <CR><LF>.<CR><LF>")
            .await;
        client
            .send(&format!("Subject: b\r\n\r\n{}\r\n.\r\n", "b".repeat(size)))
            .await;
        client.expect(reply).await;
    }
    assert_eq!(server.inbox(carol).await.len(), 1);
    // An account already over quota refuses even undeclared sizes at RCPT.
    server.store.set_quota(carol.id, 100).await.unwrap();
    client
        .command("MAIL FROM:<sender@example.net>", "250 2.1.0 OK")
        .await;
    client
        .command(
            "RCPT TO:<carol@example.org>",
            "452 4.2.2 <carol@example.org>: Mailbox full",
        )
        .await;
    let rejections = server.rejections_for("carol@example.org").await;
    assert_eq!(rejections.len(), 5, "{rejections:?}");
}

#[tokio::test]
async fn smuggled_end_of_data_does_not_end_the_message() {
    let server = TestServer::start(config()).await;
    let mut client = server.greeted().await;
    for smuggled_end in ["\n.\n", "\r\n.\n", "\n.\r\n"] {
        client
            .command("MAIL FROM:<sender@example.net>", "250 2.1.0 OK")
            .await;
        client
            .command("RCPT TO:<alice@example.org>", "250 2.1.5 OK")
            .await;
        client
            .command("DATA", "354 End data with <CR><LF>.<CR><LF>")
            .await;
        client
            .send(&format!(
                "Subject: innocent\r\n\r\nhello{smuggled_end}MAIL FROM:<ceo@example.org>\r\n\
                 RCPT TO:<bob@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\npay now\r\n.\r\n"
            ))
            .await;
        // One reply for one message, and that message is refused.
        client
            .expect("554 5.6.0 Message contains bare LF or NUL; lines must end with CRLF")
            .await;
        client.command("NOOP", "250 2.0.0 OK").await;
    }
    assert!(server.inbox(&server.alice).await.is_empty());
    assert!(server.inbox(&server.bob).await.is_empty());
    // A NUL byte is refused the same way.
    client
        .command("MAIL FROM:<sender@example.net>", "250 2.1.0 OK")
        .await;
    client
        .command("RCPT TO:<alice@example.org>", "250 2.1.5 OK")
        .await;
    client
        .command("DATA", "354 End data with <CR><LF>.<CR><LF>")
        .await;
    client
        .send_bytes(b"Subject: nul\r\n\r\na\0b\r\n.\r\n")
        .await;
    client
        .expect("554 5.6.0 Message contains bare LF or NUL; lines must end with CRLF")
        .await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let server = TestServer::start(config()).await;
    let mut client = server.greeted().await;
    client
        .send(
            "MAIL FROM:<sender@example.net>\r\nRCPT TO:<alice@example.org>\r\n\
             RCPT TO:<nobody@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n",
        )
        .await;
    client.expect("250 2.1.0 OK").await;
    client.expect("250 2.1.5 OK").await;
    client
        .expect("550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown")
        .await;
    client.expect("250 2.1.5 OK").await;
    client.expect("354 End data with <CR><LF>.<CR><LF>").await;
    client
        .send("Subject: pipelined\r\n\r\nbody\r\n.\r\nMAIL FROM:<sender@example.net>\r\nRCPT TO:<bob@example.org>\r\nRSET\r\nQUIT\r\n")
        .await;
    assert!(client.reply().await.starts_with("250 2.0.0 Ok: queued as "));
    client.expect("250 2.1.0 OK").await;
    client.expect("250 2.1.5 OK").await;
    client.expect("250 2.0.0 OK").await;
    client.expect("221 2.0.0 Bye").await;
    client.expect_closed().await;
    assert_eq!(server.inbox(&server.alice).await.len(), 1);
    assert_eq!(server.inbox(&server.bob).await.len(), 1);
}

#[tokio::test]
async fn nothing_is_acknowledged_that_was_not_committed() {
    let server = TestServer::start(config()).await;
    let mut client = server.greeted().await;
    client
        .command("MAIL FROM:<sender@example.net>", "250 2.1.0 OK")
        .await;
    client
        .command("RCPT TO:<alice@example.org>", "250 2.1.5 OK")
        .await;
    // The database goes away between RCPT and the end of DATA.
    server.store.close().await;
    client
        .command("DATA", "354 End data with <CR><LF>.<CR><LF>")
        .await;
    client.send("Subject: lost?\r\n\r\nno\r\n.\r\n").await;
    client
        .expect("451 4.3.0 Temporary failure, please try again later")
        .await;
    client
        .command("MAIL FROM:<sender@example.net>", "250 2.1.0 OK")
        .await;
    client
        .command(
            "RCPT TO:<alice@example.org>",
            "451 4.3.0 Temporary failure, please try again later",
        )
        .await;
}

// ---------------------------------------------------------------------------------
// AUTH

fn plain(user: &str, password: &str) -> String {
    BASE64.encode(format!("\0{user}\0{password}"))
}

#[tokio::test]
async fn auth_plain_succeeds_fails_and_refuses_bad_base64() {
    let server = TestServer::start(config()).await;
    let mut client = server.greeted().await;
    client
        .command(
            &format!("AUTH PLAIN {}", plain("alice@example.org", "wrong")),
            "535 5.7.8 Authentication credentials invalid",
        )
        .await;
    client
        .command(
            &format!("AUTH PLAIN {}", plain("nobody@example.org", PASSWORD)),
            "535 5.7.8 Authentication credentials invalid",
        )
        .await;
    client
        .command("AUTH PLAIN !!!not-base64", "501 5.5.2 Invalid base64 data")
        .await;
    client.command("AUTH PLAIN", "334 ").await;
    client
        .command("*", "501 5.0.0 Authentication cancelled")
        .await;
    client
        .command(
            "AUTH CRAM-MD5",
            "504 5.5.4 Unrecognized authentication mechanism",
        )
        .await;
    client.command("AUTH PLAIN", "334 ").await;
    client
        .command(
            &plain("alice@example.org", PASSWORD),
            "235 2.7.0 Authentication successful",
        )
        .await;
    client
        .command(
            &format!("AUTH PLAIN {}", plain("alice@example.org", PASSWORD)),
            "503 5.5.1 Error: already authenticated",
        )
        .await;
}

#[tokio::test]
async fn auth_login_and_relaying_when_authenticated() {
    let server = TestServer::start(config()).await;
    let mut client = server.greeted().await;
    client
        .command("MAIL FROM:<alice@example.org>", "250 2.1.0 OK")
        .await;
    client
        .command(
            "RCPT TO:<friend@example.net>",
            "554 5.7.1 <friend@example.net>: Relay access denied",
        )
        .await;
    client
        .command(
            "AUTH LOGIN",
            "503 5.5.1 Error: AUTH not allowed during a mail transaction",
        )
        .await;
    client.command("RSET", "250 2.0.0 OK").await;
    client.command("AUTH LOGIN", "334 VXNlcm5hbWU6").await;
    client
        .command(&BASE64.encode("alice@example.org"), "334 UGFzc3dvcmQ6")
        .await;
    client
        .command(
            &BASE64.encode(PASSWORD),
            "235 2.7.0 Authentication successful",
        )
        .await;
    let queue_id = client
        .deliver(
            "alice@example.org",
            &["friend@example.net", "bob@example.org"],
            "Subject: out\r\n\r\nhi friend\r\n",
        )
        .await;
    let queued = server.store.queued(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].recipient.as_str(), queued[0].sender.as_str()),
        ("friend@example.net", "alice@example.org")
    );
    let stored = server
        .store
        .get_blob(&postcell_store::BlobId::parse(&queued[0].blob_id).unwrap())
        .await
        .unwrap();
    let (trace, body) = split_trace(&stored);
    // A copy that leaves us carries no Return-Path; the protocol says who sent it.
    assert!(
        trace.starts_with("Received: from client.example.net"),
        "{trace}"
    );
    assert!(
        trace.contains(&format!("with ESMTPA id {queue_id};")),
        "{trace}"
    );
    assert_eq!(body, b"Subject: out\r\n\r\nhi friend\r\n");
    assert_eq!(server.inbox(&server.bob).await.len(), 1);
}

#[tokio::test]
async fn auth_login_with_an_initial_response_and_bad_steps() {
    let server = TestServer::start(config()).await;
    let mut client = server.greeted().await;
    client
        .command(
            &format!("AUTH LOGIN {}", BASE64.encode("bob@example.org")),
            "334 UGFzc3dvcmQ6",
        )
        .await;
    client.command("%%%", "501 5.5.2 Invalid base64 data").await;
    client.command("AUTH LOGIN", "334 VXNlcm5hbWU6").await;
    client
        .command("*", "501 5.0.0 Authentication cancelled")
        .await;
    client
        .command(
            &format!("AUTH LOGIN {}", BASE64.encode("bob@example.org")),
            "334 UGFzc3dvcmQ6",
        )
        .await;
    client
        .command(
            &BASE64.encode("nope"),
            "535 5.7.8 Authentication credentials invalid",
        )
        .await;
    client
        .command(
            &format!("AUTH LOGIN {}", BASE64.encode("bob@example.org")),
            "334 UGFzc3dvcmQ6",
        )
        .await;
    client
        .command(
            &BASE64.encode(PASSWORD),
            "235 2.7.0 Authentication successful",
        )
        .await;
}

/// An address of this host that is not loopback, so the server sees a remote peer.
fn non_loopback_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // Connecting a UDP socket sends nothing; it only picks the source address.
    for probe in ["198.51.100.1:9", "192.0.2.1:9", "10.0.0.1:9"] {
        if socket.connect(probe).is_ok() {
            let ip = socket.local_addr().ok()?.ip();
            if !ip.is_loopback() && !ip.is_unspecified() {
                return Some(ip);
            }
        }
    }
    None
}

#[tokio::test]
async fn auth_needs_tls_from_remote_peers() {
    let Some(ip) = non_loopback_address() else {
        // The rule itself is unit-tested in auth.rs; this host has only loopback.
        eprintln!("no non-loopback address on this host: end-to-end 538 check not run");
        return;
    };
    let server = TestServer::start_on("0.0.0.0:0", config(), false).await;
    let stream = TcpStream::connect(SocketAddr::new(ip, server.addr.port()))
        .await
        .unwrap();
    let mut client = Client::new(stream);
    client.expect("220 mx.example.org ESMTP Postcell").await;
    client
        .command(
            "EHLO client.example.net",
            "250-mx.example.org\n250-PIPELINING\n250-8BITMIME\n250-SMTPUTF8\n250-SIZE 26214400\n\
             250 ENHANCEDSTATUSCODES",
        )
        .await;
    client
        .command(
            &format!("AUTH PLAIN {}", plain("alice@example.org", PASSWORD)),
            "538 5.7.11 Encryption required for requested authentication mechanism",
        )
        .await;
    // ...unless the configuration allows it.
    let mut config = config();
    config.allow_plaintext_auth = true;
    let server = TestServer::start_on("0.0.0.0:0", config, false).await;
    let stream = TcpStream::connect(SocketAddr::new(ip, server.addr.port()))
        .await
        .unwrap();
    let mut client = Client::new(stream);
    client.expect("220 mx.example.org ESMTP Postcell").await;
    client.send("EHLO client.example.net\r\n").await;
    assert!(client.reply().await.ends_with("\n250 AUTH PLAIN LOGIN"));
    client
        .command(
            &format!("AUTH PLAIN {}", plain("alice@example.org", PASSWORD)),
            "235 2.7.0 Authentication successful",
        )
        .await;
}

// ---------------------------------------------------------------------------------
// STARTTLS

/// Accepts exactly the certificate the test server was given.
#[derive(Debug)]
struct PinnedCertificate {
    certificate: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.certificate.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the pinned certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

async fn start_tls(
    client: Client<TcpStream>,
    certificate: CertificateDer<'static>,
) -> Client<tokio_rustls::client::TlsStream<TcpStream>> {
    assert!(
        client.stream.buffer().is_empty(),
        "nothing may be read ahead of the handshake"
    );
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCertificate {
            certificate,
            provider,
        }))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tls = connector
        .connect(
            ServerName::try_from(HOST).unwrap(),
            client.stream.into_inner(),
        )
        .await
        .expect("TLS handshake");
    Client::new(tls)
}

#[tokio::test]
async fn starttls_upgrades_and_resets_the_session() {
    let server = TestServer::start_on("127.0.0.1:0", config(), true).await;
    let mut client = server.connect().await;
    client
        .command(
            "EHLO client.example.net",
            "250-mx.example.org\n250-PIPELINING\n250-8BITMIME\n250-SMTPUTF8\n250-SIZE 26214400\n\
             250-ENHANCEDSTATUSCODES\n250-STARTTLS\n250 AUTH PLAIN LOGIN",
        )
        .await;
    client
        .command("MAIL FROM:<sender@example.net>", "250 2.1.0 OK")
        .await;
    client
        .command("STARTTLS", "220 2.0.0 Ready to start TLS")
        .await;
    let mut client = start_tls(client, server.certificate.clone().unwrap()).await;
    // RFC 3207: the client must start again with EHLO; the transaction is gone.
    client
        .command(
            "MAIL FROM:<sender@example.net>",
            "503 5.5.1 Error: send HELO/EHLO first",
        )
        .await;
    client
        .command(
            "EHLO client.example.net",
            "250-mx.example.org\n250-PIPELINING\n250-8BITMIME\n250-SMTPUTF8\n250-SIZE 26214400\n\
             250-ENHANCEDSTATUSCODES\n250 AUTH PLAIN LOGIN",
        )
        .await;
    client
        .command("STARTTLS", "503 5.5.1 Error: TLS already active")
        .await;
    let queue_id = client
        .deliver(
            "sender@example.net",
            &["bob@example.org"],
            "Subject: secret\r\n\r\nsh\r\n",
        )
        .await;
    let stored = server.inbox(&server.bob).await;
    let (trace, _) = split_trace(&stored[0]);
    assert!(
        trace.contains(&format!("with ESMTPS id {queue_id} for <bob@example.org>;")),
        "{trace}"
    );
    client
        .command(
            &format!("AUTH PLAIN {}", plain("alice@example.org", PASSWORD)),
            "235 2.7.0 Authentication successful",
        )
        .await;
    let queue_id = client
        .deliver(
            "alice@example.org",
            &["bob@example.org"],
            "Subject: signed\r\n\r\nin\r\n",
        )
        .await;
    let stored = server.inbox(&server.bob).await;
    let (trace, _) = split_trace(&stored[1]);
    assert!(
        trace.contains(&format!(
            "with ESMTPSA id {queue_id} for <bob@example.org>;"
        )),
        "{trace}"
    );
    client.command("QUIT", "221 2.0.0 Bye").await;
}

// ---------------------------------------------------------------------------------
// Real clients and the listener

/// Python's smtplib: EHLO, STARTTLS (verifying our certificate), AUTH, and a message
/// with a refused recipient among accepted ones.
const SMTPLIB_CLIENT: &str = r#"
import smtplib, ssl, sys
from email.message import EmailMessage

port, cafile, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
context = ssl.create_default_context(cafile=cafile)
with smtplib.SMTP("localhost", port, local_hostname="python.example.net", timeout=20) as smtp:
    smtp.ehlo()
    assert smtp.has_extn("starttls"), smtp.esmtp_features
    smtp.starttls(context=context)
    smtp.ehlo()
    assert smtp.has_extn("pipelining") and smtp.has_extn("8bitmime")
    smtp.login("alice@example.org", password)
    message = EmailMessage()
    message["From"] = "alice@example.org"
    message["To"] = "bob@example.org"
    message["Subject"] = "from smtplib"
    message["Message-ID"] = "<smtplib-1@example.org>"
    message.set_content("Hello from Python\n.leading dot\n")
    refused = smtp.send_message(message, to_addrs=["bob@example.org", "nobody@example.org"])
    print(sorted(refused.items()))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib_sends_over_starttls_with_auth() {
    postcell_testkit::expect_tool("python3");
    let server = TestServer::start_on("127.0.0.1:0", config(), true).await;
    let port = server.addr.port().to_string();
    let cafile = server.certificate_path.clone().unwrap();
    let output = tokio::task::spawn_blocking(move || {
        postcell_testkit::python3(SMTPLIB_CLIENT, &[&port, cafile.to_str().unwrap(), PASSWORD])
    })
    .await
    .unwrap()
    .expect("python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "smtplib failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "[('nobody@example.org', (550, b'5.1.1 <nobody@example.org>: Recipient address rejected: User unknown'))]"
    );
    let inbox = server.inbox(&server.bob).await;
    assert_eq!(inbox.len(), 1);
    let (trace, body) = split_trace(&inbox[0]);
    assert!(
        trace.starts_with(
            "Return-Path: <alice@example.org>\r\nReceived: from python.example.net ([127.0.0.1])"
        ),
        "{trace}"
    );
    assert!(trace.contains("with ESMTPSA id "), "{trace}");
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("Subject: from smtplib\r\n"), "{body}");
    assert!(
        body.ends_with("\r\n\r\nHello from Python\r\n.leading dot\r\n"),
        "{body}"
    );
}

#[tokio::test]
async fn connections_over_the_limit_get_the_busy_reply() {
    let server = TestServer::start_full("127.0.0.1:0", config(), false, 1).await;
    let _first = server.connect().await;
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), second.read_to_end(&mut reply))
        .await
        .expect("the busy reply within 20 s")
        .ok();
    assert_eq!(reply, BUSY_REPLY);
    assert_eq!(
        BUSY_REPLY,
        b"421 4.3.2 Too many connections, try again later\r\n"
    );
}
