//! The `postcell` command line as an operator uses it: `init`, the administrative
//! commands, configuration errors at start, and a graceful shutdown with sessions open.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Node, NodeOptions, PASSWORD, postcell_bin, python};
use postcell_testkit::{ChildGuard, expect_tool, free_port, wait_for_port};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `postcell --config FILE ARGS...` with `input` on standard input.
fn cli_with_input(node: &Node, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(postcell_bin())
        .arg("--config")
        .arg(&node.config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run postcell");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for postcell")
}

/// Runs a command that must fail, and returns its standard error.
fn cli_err(node: &Node, args: &[&str]) -> String {
    let out = node.cli(args);
    assert!(
        !out.status.success(),
        "postcell {args:?} should have failed; it printed:\n{}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

/// Waits for a child to exit, at most `limit`; panics (and kills it) if it does not.
fn wait_exit(child: &mut ChildGuard, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn init_makes_a_working_node_folder_and_refuses_to_run_twice() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path().join("node");
    let shown = dir.display().to_string();
    let init = |domain: &str| {
        Command::new(postcell_bin())
            .args(["init", "--dir", &shown, "--domain", domain])
            .args(["--hostname", "mx.example.org"])
            .output()
            .expect("run postcell init")
    };
    let out = init("Example.ORG");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "init failed: {}", text(&out.stderr));
    for expected in [
        format!("Created a Postcell node in {shown}:\n"),
        format!("  {shown}/postcell.toml "),
        format!("  {shown}/data/ "),
        format!("  {shown}/tls/ "),
        "self-signed certificate for mx.example.org\n".to_owned(),
        "domain example.org, account postmaster@example.org (administrator), password: ".to_owned(),
        format!("Next, start it:\n  postcell --config {shown}/postcell.toml serve\n"),
    ] {
        assert!(
            stdout.contains(&expected),
            "init output lacks {expected:?}:\n{stdout}"
        );
    }
    let password = stdout
        .lines()
        .find_map(|l| l.split_once("password: ").map(|(_, p)| p.trim().to_owned()))
        .expect("a password line");
    assert_eq!(password.len(), 20, "{stdout}");

    assert!(dir.join("postcell.toml").is_file());
    assert!(dir.join("data").is_dir() && dir.join("data/postcell.db").is_file());
    let cert = std::fs::read_to_string(dir.join("tls/cert.pem")).expect("tls/cert.pem");
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    let key = std::fs::read_to_string(dir.join("tls/key.pem")).expect("tls/key.pem");
    assert!(
        key.contains("PRIVATE KEY-----"),
        "key.pem holds no private key"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("tls/key.pem"))
            .expect("key.pem")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "key.pem must be readable by its owner only"
        );
    }
    // The certificate covers the host name and localhost.
    let x509 = Command::new(expect_tool("openssl"))
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(dir.join("tls/cert.pem"))
        .output()
        .expect("run openssl x509");
    assert!(
        text(&x509.stdout).contains("DNS:mx.example.org, DNS:localhost"),
        "{}{}",
        text(&x509.stdout),
        text(&x509.stderr)
    );
    let config = dir.join("postcell.toml");
    let config_text = std::fs::read_to_string(&config).expect("postcell.toml");

    // A second init on the same folder changes nothing.
    let again = init("example.net");
    assert!(!again.status.success(), "a second init succeeded");
    assert_eq!(
        text(&again.stderr),
        format!("postcell: {shown}/postcell.toml already exists; init makes new nodes only\n")
    );
    assert_eq!(
        std::fs::read_to_string(&config).expect("postcell.toml"),
        config_text
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("tls/cert.pem")).expect("cert"),
        cert
    );

    // The node serves (on a free port instead of init's 2110), and the printed password
    // is the postmaster's.
    let pop3 = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let start = config_text
        .find("[listen]")
        .expect("[listen] in postcell.toml");
    let end = config_text.find("[tls]").expect("[tls] in postcell.toml");
    let rewritten = format!(
        "{}[listen]\npop3 = \"{pop3}\"\n\n{}",
        &config_text[..start],
        &config_text[end..]
    );
    std::fs::write(&config, rewritten).expect("rewrite postcell.toml");
    let mut serve = ChildGuard::spawn(
        Command::new(postcell_bin())
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("spawn serve");
    wait_for_port(pop3, Duration::from_secs(30)).expect("the node from init serves POP3");
    let out = python(
        r#"
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=30)
print(p.getwelcome().decode())
p.user("postmaster@example.org")
print(p.pass_(sys.argv[2]).decode())
p.quit()
"#,
        &[&pop3.port().to_string(), &password],
    );
    assert_eq!(
        out,
        "+OK mx.example.org POP3 server ready\n+OK Logged in, maildrop has 0 messages (0 octets)\n"
    );
    let _ = serve.kill();
}

#[test]
fn administrative_commands_manage_domains_users_addresses_and_aliases() {
    // Administrative commands work on the store directly: no server needed until the
    // end, where the new password is tried over POP3.
    let mut node = Node::create(NodeOptions::default());
    assert_eq!(
        node.cli_ok(&["domain", "add", "Example.ORG"]),
        "added domain example.org\n"
    );
    assert!(
        cli_err(&node, &["domain", "add", "example.org"]).contains("example.org already exists")
    );
    assert_eq!(
        node.cli_ok(&["domain", "list"]),
        "example.org\taccounts=0\taddresses=0\nexample.test\taccounts=1\taddresses=1\n"
    );

    let out = cli_with_input(
        &node,
        &[
            "user",
            "add",
            "carol@example.org",
            "--password-stdin",
            "--quota",
            "10K",
        ],
        "first-password\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "added user carol@example.org\n");
    let dave = node.cli_ok(&["user", "add", "dave@example.org"]);
    let generated = dave
        .strip_prefix("added user dave@example.org\npassword: ")
        .unwrap_or_else(|| panic!("user add without --password-stdin prints a password:\n{dave}"));
    assert_eq!(generated.trim_end().len(), 20, "{dave}");
    assert!(
        cli_err(&node, &["user", "add", "x@unknown.example"])
            .contains("domain unknown.example not found")
    );

    assert_eq!(
        node.cli_ok(&["user", "list", "--domain", "example.org"]),
        "carol@example.org\tused=0\tquota=10240\tenabled\ndave@example.org\tused=0\tquota=none\tenabled\n"
    );
    let show = node.cli_ok(&["user", "show", "carol@example.org"]);
    for expected in [
        "account:   carol@example.org\n",
        "enabled:   true\n",
        "admin:     false\n",
        "quota:     10240 bytes\n",
        "used:      0 bytes\n",
        "addresses: carol@example.org\n",
    ] {
        assert!(
            show.contains(expected),
            "user show lacks {expected:?}:\n{show}"
        );
    }
    for mailbox in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(
            show.contains(&format!("mailbox:   {mailbox} (0 messages, 0 bytes)\n")),
            "user show lacks mailbox {mailbox}:\n{show}"
        );
    }

    let out = cli_with_input(
        &node,
        &["user", "passwd", "carol@example.org", "--password-stdin"],
        "second-password\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "password changed for carol@example.org\n"
    );
    assert_eq!(
        node.cli_ok(&["user", "quota", "carol@example.org", "20K"]),
        "quota of carol@example.org set to 20K\n"
    );
    assert!(
        cli_err(&node, &["user", "quota", "carol@example.org", "12Q"]).contains("unknown unit")
    );
    assert_eq!(
        node.cli_ok(&["user", "disable", "carol@example.org"]),
        "disabled carol@example.org\n"
    );
    assert!(
        node.cli_ok(&["user", "list"])
            .contains("carol@example.org\tused=0\tquota=20480\tdisabled\n")
    );
    assert_eq!(
        node.cli_ok(&["user", "enable", "carol@example.org"]),
        "enabled carol@example.org\n"
    );
    assert!(
        node.cli_ok(&["user", "show", "carol@example.org"])
            .contains("enabled:   true\n")
    );

    // More addresses for an account; any of them names the account.
    assert_eq!(
        node.cli_ok(&["address", "add", "C.Smith@example.org", "carol@example.org"]),
        "c.smith@example.org now delivers to carol@example.org\n"
    );
    assert_eq!(
        node.cli_ok(&["address", "list", "carol@example.org"]),
        "c.smith@example.org\ncarol@example.org\n"
    );
    assert!(
        node.cli_ok(&["user", "show", "c.smith@example.org"])
            .starts_with("account:   carol@example.org\n")
    );
    // The canonical address cannot go.
    assert!(
        !node
            .cli(&["address", "del", "carol@example.org"])
            .status
            .success()
    );
    assert_eq!(
        node.cli_ok(&["address", "del", "c.smith@example.org"]),
        "deleted address c.smith@example.org\n"
    );
    assert_eq!(
        node.cli_ok(&["address", "list", "carol@example.org"]),
        "carol@example.org\n"
    );

    // Aliases: several targets, removed one at a time, then whole.
    assert_eq!(
        node.cli_ok(&[
            "alias",
            "add",
            "team@example.org",
            "carol@example.org",
            "dave@example.org",
            "ext@example.net"
        ]),
        "team@example.org -> carol@example.org, dave@example.org, ext@example.net\n"
    );
    assert_eq!(
        node.cli_ok(&["alias", "list"]),
        "team@example.org\tcarol@example.org, dave@example.org, ext@example.net\n"
    );
    assert_eq!(
        node.cli_ok(&["alias", "del", "team@example.org", "dave@example.org"]),
        "deleted\n"
    );
    assert_eq!(
        node.cli_ok(&["alias", "list"]),
        "team@example.org\tcarol@example.org, ext@example.net\n"
    );
    assert_eq!(
        node.cli_ok(&["alias", "del", "team@example.org"]),
        "deleted\n"
    );
    assert_eq!(node.cli_ok(&["alias", "list"]), "");

    // A domain with accounts cannot go; without them it can.
    let refusal = cli_err(&node, &["domain", "del", "example.org"]);
    assert!(
        refusal.contains("domain example.org still has 2 accounts"),
        "{refusal}"
    );

    // The new password works, the old one does not.
    node.spawn();
    let out = python(
        r#"
import poplib, sys
port = int(sys.argv[1])
for password in ("first-password", "second-password"):
    p = poplib.POP3("127.0.0.1", port, timeout=30)
    p.user("carol@example.org")
    try:
        print(password, p.pass_(password).decode())
    except poplib.error_proto as e:
        print(password, e.args[0].decode())
    p.quit()
"#,
        &[&node.pop3.port().to_string()],
    );
    assert_eq!(
        out,
        "first-password -ERR [AUTH] Authentication failed\n\
         second-password +OK Logged in, maildrop has 0 messages (0 octets)\n"
    );

    assert_eq!(
        node.cli_ok(&["user", "del", "carol@example.org"]),
        "deleted carol@example.org and its mail\n"
    );
    assert!(
        cli_err(&node, &["user", "show", "carol@example.org"])
            .contains("no account has the address carol@example.org")
    );
    node.cli_ok(&["user", "del", "dave@example.org"]);
    assert_eq!(
        node.cli_ok(&["domain", "del", "example.org"]),
        "deleted domain example.org\n"
    );
    assert_eq!(
        node.cli_ok(&["domain", "list"]),
        "example.test\taccounts=1\taddresses=1\n"
    );
}

#[test]
fn status_config_show_log_search_and_queue_list_report_what_happened() {
    let node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    node.cli_ok(&["alias", "add", "fwd@example.test", "ext@example.net"]);
    let out = python(
        r#"
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30) as s:
    body = b"From: bob@example.net\r\nMessage-ID: <log-1@example.net>\r\nSubject: one\r\n\r\nHi.\r\n"
    refused = s.sendmail("bob@example.net", ["alice@example.test", "nobody@example.test"], body)
    for rcpt, (code, text) in refused.items():
        print("refused", rcpt, code, text.decode())
    body = b"From: bob@example.net\r\nMessage-ID: <log-2@example.net>\r\nSubject: two\r\n\r\nHi.\r\n"
    print("external", s.sendmail("bob@example.net", ["fwd@example.test"], body))
"#,
        &[&node.smtp.port().to_string()],
    );
    assert_eq!(
        out,
        "refused nobody@example.test 550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown\n\
         external {}\n"
    );

    let rejected = node.cli_ok(&["log", "search", "--status", "rejected"]);
    let lines: Vec<&str> = rejected.lines().collect();
    assert_eq!(lines.len(), 1, "one rejected recipient:\n{rejected}");
    for field in [
        "\ttest-node\t",
        "\trejected\t",
        "\tfrom=<bob@example.net>\t",
        "\tto=<nobody@example.test>\t",
        "\tremote=smtp from 127.0.0.1\t",
        "\treply=550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown",
    ] {
        assert!(lines[0].contains(field), "{field:?} missing in {rejected}");
    }

    let alice = node.cli_ok(&["log", "search", "--address", "alice@example.test"]);
    let lines: Vec<&str> = alice.lines().collect();
    assert_eq!(lines.len(), 1, "one delivery to alice:\n{alice}");
    for field in [
        "\tdelivered\t",
        "\tto=<alice@example.test>\t",
        "\tmessage-id=log-1@example.net\t",
    ] {
        assert!(lines[0].contains(field), "{field:?} missing in {alice}");
    }
    let queued = node.cli_ok(&["log", "search", "--status", "queued"]);
    assert!(
        queued.lines().count() == 1
            && queued.contains("\tto=<ext@example.net>\t")
            && queued.contains("message-id=log-2@example.net"),
        "{queued}"
    );
    let everything = node.cli_ok(&["log", "search"]);
    assert_eq!(everything.lines().count(), 3, "{everything}");
    assert!(
        everything
            .lines()
            .next()
            .unwrap_or("")
            .contains("ext@example.net"),
        "newest first:\n{everything}"
    );
    assert_eq!(
        node.cli_ok(&["log", "search", "--limit", "1", "--since", "1h"])
            .lines()
            .count(),
        1
    );
    assert_eq!(
        node.cli_ok(&["log", "search", "--since", "2000-01-01"])
            .lines()
            .count(),
        3
    );
    assert!(
        cli_err(&node, &["log", "search", "--status", "lost"])
            .contains("use delivered, queued, deferred, bounced or rejected")
    );

    let queue = node.cli_ok(&["queue", "list"]);
    let lines: Vec<&str> = queue.lines().collect();
    assert_eq!(lines.len(), 1, "one queued message:\n{queue}");
    assert!(
        lines[0].contains("\tfrom=<bob@example.net>\tto=<ext@example.net>\tsize=")
            && lines[0].contains("\tattempts=0\t"),
        "{queue}"
    );

    let status = node.cli_ok(&["status"]);
    for expected in [
        format!("config:   {}\n", node.config.display()),
        "node:     test-node\n".to_owned(),
        "store:    sqlite\n".to_owned(),
        format!("blobs:    folder {}\n", node.path("data/blobs").display()),
        "domains   1\n".to_owned(),
        "accounts  2\n".to_owned(),
        "queued    1\n".to_owned(),
        format!(
            "node test-node\tup\troles=mx,submission,imap,pop3,web\tversion={}",
            env!("CARGO_PKG_VERSION")
        ),
        format!("smtp={}", node.smtp),
    ] {
        assert!(
            status.contains(&expected),
            "status lacks {expected:?}:\n{status}"
        );
    }

    let config = node.cli_ok(&["config", "show"]);
    for expected in [
        "[node]\nid = \"test-node\"\nhostname = \"mail.example.test\"\n".to_owned(),
        format!("smtp = \"{}\"\n", node.smtp),
        format!("pop3s = \"{}\"\n", node.pop3s),
        // Defaults the file leaves out.
        "max_recipients = 100\n".to_owned(),
        "lease_ttl = \"60s\"\n".to_owned(),
        "allow_plaintext = false\n".to_owned(),
        "recipient_delimiter = \"+\"\n".to_owned(),
        "durability = \"full\"\n".to_owned(),
    ] {
        assert!(
            config.contains(&expected),
            "config show lacks {expected:?}:\n{config}"
        );
    }
}

/// Every configuration error stops the start: non-zero exit within seconds, and
/// standard error names the file, the key and what is wrong.
#[test]
fn configuration_errors_stop_the_start_with_the_file_the_key_and_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = || format!("127.0.0.1:{}", free_port());
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        ("missing", String::new(), vec!["No such file".into()]),
        (
            "malformed",
            format!("[node]\nid = \"x\"\n\n[listen\nsmtp = \"{}\"\n", port()),
            vec!["TOML parse error at line 4".into(), "[listen".into()],
        ),
        (
            "unknown-key",
            format!(
                "[listen]\nsmtp = \"{}\"\n\n[smtp]\nmax_recipients = 5\nmax_recipient = 5\n",
                port()
            ),
            vec![
                "line 6".into(),
                "unknown field `max_recipient`".into(),
                "expected one of `max_message_size`, `max_recipients`".into(),
            ],
        ),
        (
            "wrong-value",
            "[listen]\nsmtp = \"localhost\"\n".into(),
            vec![
                "line 2".into(),
                "\"localhost\" is not a socket address".into(),
            ],
        ),
        (
            "relayhost",
            format!(
                "[listen]\nsmtp = \"{}\"\nsubmission = \"{}\"\n\n[relay]\nrelayhost = \"relay.example.org:smtp\"\n",
                port(),
                port()
            ),
            vec![
                "key relay.relayhost: \"relay.example.org:smtp\" is not HOST, HOST:PORT or [HOST]:PORT"
                    .into(),
            ],
        ),
        (
            "postgres-without-url",
            format!(
                "[store]\nbackend = \"postgres\"\n\n[listen]\nsmtp = \"{}\"\n",
                port()
            ),
            vec!["key store.url: backend \"postgres\" needs a url".into()],
        ),
    ];
    // All at once: each must be refused on its own within the limit.
    let mut running = Vec::new();
    for (name, content, expected) in cases {
        let file = dir.path().join(format!("{name}.toml"));
        if name != "missing" {
            std::fs::write(&file, content).expect("write config");
        }
        let child = ChildGuard::spawn(
            Command::new(postcell_bin())
                .arg("--config")
                .arg(&file)
                .arg("serve")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .expect("spawn postcell serve");
        running.push((name, file, expected, child, Instant::now()));
    }
    for (name, file, expected, mut child, started) in running {
        let status = wait_exit(
            &mut child,
            Duration::from_secs(10),
            &format!("postcell serve with the {name} configuration"),
        );
        let elapsed = started.elapsed();
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr)
            .expect("read stderr");
        assert!(!status.success(), "{name}: exit status {status}\n{stderr}");
        assert!(
            elapsed < Duration::from_secs(5),
            "{name}: took {elapsed:?} to refuse the configuration"
        );
        let named = format!("config file {}", file.display());
        assert!(
            stderr.starts_with("postcell: ") && stderr.contains(&named),
            "{name}: stderr does not name {}:\n{stderr}",
            file.display()
        );
        for fragment in expected {
            assert!(
                stderr.contains(&fragment),
                "{name}: stderr lacks {fragment:?}:\n{stderr}"
            );
        }
        assert!(
            !stderr.contains("postcell started") && !stderr.contains("listening"),
            "{name}: a server started:\n{stderr}"
        );
    }
}

#[test]
fn a_disabled_account_cannot_log_in_and_refuses_mail() {
    let node = Node::start(NodeOptions::default());
    node.add_user("dave@example.test", None);
    assert_eq!(
        node.cli_ok(&["user", "disable", "dave@example.test"]),
        "disabled dave@example.test\n"
    );
    let script = r#"
import poplib, smtplib, sys
smtp_port, pop_port, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
body = b"From: bob@example.net\r\nSubject: hello\r\n\r\nHello Dave.\r\n"
try:
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
        s.sendmail("bob@example.net", ["dave@example.test"], body)
    print("smtp accepted")
except smtplib.SMTPRecipientsRefused as e:
    for rcpt, (code, text) in e.recipients.items():
        print("smtp refused", rcpt, code, text.decode())
# A wrong password says nothing about the account; the right one says it is disabled.
for attempt in ("wrong-password", password):
    p = poplib.POP3("127.0.0.1", pop_port, timeout=30)
    p.user("dave@example.test")
    try:
        print("pop3", p.pass_(attempt).decode())
    except poplib.error_proto as e:
        print("pop3", e.args[0].decode())
    p.quit()
"#;
    let args = [
        node.smtp.port().to_string(),
        node.pop3.port().to_string(),
        PASSWORD.to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(
        python(script, &args),
        "smtp refused dave@example.test 550 5.2.1 <dave@example.test>: Recipient address rejected: mailbox disabled\n\
         pop3 -ERR [AUTH] Authentication failed\n\
         pop3 -ERR [AUTH] Account disabled\n"
    );
    let log = node.cli_ok(&[
        "log",
        "search",
        "--status",
        "rejected",
        "--address",
        "dave@example.test",
    ]);
    assert!(
        log.contains(
            "reply=550 5.2.1 <dave@example.test>: Recipient address rejected: mailbox disabled"
        ),
        "{log}"
    );

    // Enabled again, the same client gets through: the refusals were the disabling.
    node.cli_ok(&["user", "enable", "dave@example.test"]);
    let out = python(script, &args);
    assert!(
        out.starts_with(
            "smtp accepted\npop3 -ERR [AUTH] Authentication failed\n\
             pop3 +OK Logged in, maildrop has 1 messages ("
        ),
        "{out}"
    );
}

/// SIGTERM while a message is half sent and a POP3 session sits idle: the idle session
/// is told the server is going, the message is still received and acknowledged, and
/// the server exits 0 once the sessions are done.
#[test]
fn sigterm_completes_the_message_in_progress_and_tells_idle_sessions() {
    let mut node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    let script = r#"
import poplib, socket, sys, time
smtp_port, pop_port, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

pop = poplib.POP3("127.0.0.1", pop_port, timeout=60)
pop.user("alice@example.test")
pop.pass_(password)

smtp = socket.create_connection(("127.0.0.1", smtp_port), timeout=60)
replies = smtp.makefile("rb")
def reply():
    lines = []
    while True:
        line = replies.readline().decode()
        lines.append(line.rstrip("\r\n"))
        if len(line) < 4 or line[3] != "-":
            return lines[-1]
def command(line, code):
    smtp.sendall(line.encode() + b"\r\n")
    answer = reply()
    assert answer.startswith(code), f"{line}: {answer}"
assert reply().startswith("220 "), "greeting"
command("EHLO client.example.net", "250")
command("MAIL FROM:<bob@example.net>", "250")
command("RCPT TO:<alice@example.test>", "250")
command("DATA", "354")
smtp.sendall(b"From: bob@example.net\r\nMessage-ID: <shutdown@example.net>\r\nSubject: half\r\n\r\nfirst half\r\n")
print("in data", flush=True)

# The test sends SIGTERM now. The idle POP3 session hears of it first.
print("pop3:", pop.file.readline().decode().rstrip("\r\n"), flush=True)
# New connections are no longer accepted (one accepted in the meantime is turned away).
deadline = time.monotonic() + 5
while True:
    try:
        socket.create_connection(("127.0.0.1", smtp_port), timeout=5).close()
    except ConnectionRefusedError:
        print("new connections refused", flush=True)
        break
    if time.monotonic() > deadline:
        print("new connections still accepted", flush=True)
        break
    time.sleep(0.05)

smtp.sendall(b"second half\r\n.\r\n")
print("data:", reply(), flush=True)
print("then:", reply(), flush=True)
"#;
    let mut child = ChildGuard::spawn(
        Command::new(expect_tool("python3"))
            .arg("-c")
            .arg(script)
            .args([
                &node.smtp.port().to_string(),
                &node.pop3.port().to_string(),
                PASSWORD,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .expect("spawn python3");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read python");
    assert_eq!(
        first,
        "in data\n",
        "the client did not get into DATA; stderr:\n{}",
        read_all(child.stderr.as_mut())
    );

    let stopping = std::thread::spawn(move || {
        let status = node.terminate();
        (status, node)
    });
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read python");
    let status = wait_exit(&mut child, Duration::from_secs(30), "python client");
    assert!(
        status.success(),
        "client failed:\n{rest}\n{}",
        read_all(child.stderr.as_mut())
    );
    let (exit, node) = stopping.join().expect("terminate thread");
    let lines: Vec<&str> = rest.lines().collect();
    let queue_id = lines
        .get(2)
        .and_then(|l| l.strip_prefix("data: 250 2.0.0 Ok: queued as "))
        .filter(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(
        lines.len() == 4
            && lines[0] == "pop3: -ERR [SYS/TEMP] Server shutting down"
            && lines[1] == "new connections refused"
            && queue_id.is_some()
            && lines[3] == "then: 421 4.3.2 mail.example.test Service shutting down",
        "expected the idle POP3 session told, new connections refused, the message \
         acknowledged with 250 and then 421; the client saw:\n{rest}\nserver log:\n{}",
        node.log_text()
    );
    assert!(
        exit.success(),
        "postcell serve exited with {exit} after SIGTERM:\n{}",
        node.log_text()
    );
    // The acknowledged message is in the store.
    let show = node.cli_ok(&["user", "show", "alice@example.test"]);
    assert!(show.contains("mailbox:   INBOX (1 messages, "), "{show}");
    let log = node.cli_ok(&["log", "search", "--address", "alice@example.test"]);
    assert!(
        log.contains("\tdelivered\t") && log.contains("message-id=shutdown@example.net"),
        "{log}"
    );
}

fn read_all(pipe: Option<&mut std::process::ChildStderr>) -> String {
    let mut text = String::new();
    if let Some(pipe) = pipe {
        let _ = std::io::Read::read_to_string(pipe, &mut text);
    }
    text
}
