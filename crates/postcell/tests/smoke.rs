//! The shortest path through a real node: Python's smtplib delivers, poplib reads back.

mod common;

use common::{Node, NodeOptions, PASSWORD, python};

#[test]
fn smtplib_delivers_and_poplib_reads_back() {
    let node = Node::start(NodeOptions::default());
    node.add_user("alice@example.test", None);
    let out = python(
        r#"
import smtplib, poplib, sys
smtp_port, pop_port, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
body = b"From: bob@example.net\r\nTo: alice@example.test\r\nSubject: hello\r\n\r\nHello Alice.\r\n"
with smtplib.SMTP("127.0.0.1", smtp_port) as s:
    s.sendmail("bob@example.net", ["alice@example.test"], body)
p = poplib.POP3("127.0.0.1", pop_port)
p.user("alice@example.test"); p.pass_(password)
count, size = p.stat()
lines = p.retr(1)[1]
p.quit()
print(count)
print(lines[-1].decode())
"#,
        &[
            &node.smtp.port().to_string(),
            &node.pop3.port().to_string(),
            PASSWORD,
        ],
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"));
    assert_eq!(lines.next(), Some("Hello Alice."));
}
