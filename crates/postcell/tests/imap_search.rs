//! SEARCH, ESEARCH, SEARCHRES, SORT and THREAD with a real client: Python's imaplib,
//! against messages delivered over SMTP (smtplib) and appended over IMAP, on the
//! embedded store and on PostgreSQL.

mod common;

use common::{Backend, Node, NodeOptions, PASSWORD, python};

const SCRIPT: &str = r#"
import imaplib, smtplib, sys, time
smtp_port, imap_port, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def check(condition, message):
    if not condition:
        print("FAILED: " + message)
        sys.exit(1)

def deliver(raw):
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
        check(s.sendmail("sender@example.net", ["alice@example.test"], raw) == {}, "refused")

deliver(b"From: Zoe Smith <bob@example.net>\r\nTo: alice@example.test\r\n"
        b"Cc: Carol <carol@example.org>\r\nSubject: Lunch on Friday\r\n"
        b"Date: Fri, 06 Mar 2026 10:00:00 +0000\r\nMessage-ID: <lunch@example.net>\r\n\r\n"
        b"Shall we meet at noon?\r\n")
deliver(b"From: Carol <carol@example.org>\r\nTo: alice@example.test\r\n"
        b"Subject: Re: Lunch on Friday\r\nDate: Sat, 07 Mar 2026 09:00:00 +0000\r\n"
        b"Message-ID: <re-lunch@example.org>\r\nIn-Reply-To: <lunch@example.net>\r\n"
        b"References: <lunch@example.net>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Yes, <b>noon</b> works.</p>\r\n")
# ISO-2022-JP: subject "打ち合わせ", sender "山田", body "会議の議事録です。".
deliver(b"From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@example.jp>\r\n"
        b"To: alice@example.test\r\nSubject: =?ISO-2022-JP?B?GyRCQkckQTlnJG8kOxsoQg==?=\r\n"
        b"Date: Thu, 05 Mar 2026 08:00:00 +0900\r\nMessage-ID: <mtg@example.jp>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
        + "会議の議事録です。\r\n".encode("iso-2022-jp"))
# Shift_JIS in quoted-printable: "日本語のメール".
import quopri
deliver(b"From: sato@example.jp\r\nTo: alice@example.test\r\nBcc: secret@example.org\r\n"
        b"Subject: test\r\nDate: Wed, 04 Mar 2026 12:00:00 +0000\r\nX-Priority: 1\r\n"
        b"Message-ID: <sjis@example.jp>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=Shift_JIS\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + quopri.encodestring("日本語のメール".encode("shift_jis")) + b"\r\n")

m = imaplib.IMAP4("127.0.0.1", imap_port, timeout=60)
m.login("alice@example.test", password)
typ, caps = m.capability()
for capability in [b"SORT", b"SORT=DISPLAY", b"ESORT", b"THREAD=ORDEREDSUBJECT",
                   b"THREAD=REFERENCES", b"ESEARCH", b"SEARCHRES"]:
    check(capability in caps[0].split(), f"CAPABILITY lacks {capability}: {caps}")
typ, data = m.append("INBOX", "(\\Flagged $Work)", '"01-Jan-2020 12:00:00 +0000"',
                     b"From: Alice <alice@example.test>\r\nTo: dave@example.org\r\n"
                     b"Subject: Re: Lunch on Friday\r\nDate: Sun, 08 Mar 2026 08:00:00 +0000\r\n"
                     b"Message-ID: <alice-re@example.test>\r\n"
                     b"References: <lunch@example.net> <re-lunch@example.org>\r\n\r\n"
                     b"See you there.\r\n")
check(typ == "OK", f"APPEND: {data}")
typ, data = m.select("INBOX")
check(data == [b"5"], f"SELECT: {data}")
m.store("1", "+FLAGS", "(\\Answered \\Seen)")
m.store("2", "+FLAGS", "(\\Deleted)")
m.store("3", "+FLAGS", "(\\Draft)")

def search(*criteria, charset=None):
    typ, data = m.search(charset, *criteria)
    check(typ == "OK", f"SEARCH {criteria}: {typ} {data}")
    return [int(n) for n in data[0].split()] if data[0] else []

def expect(criteria, numbers, charset=None):
    found = search(*criteria, charset=charset)
    check(found == numbers, f"SEARCH {' '.join(criteria)}: {found}, expected {numbers}")

sizes = {}
typ, data = m.fetch("1:*", "(RFC822.SIZE)")
for line in data:
    seq, _, rest = line.partition(b" ")
    sizes[int(seq)] = int(rest.split(b"RFC822.SIZE ")[1].rstrip(b")"))

# Flags and keywords.
expect(["ALL"], [1, 2, 3, 4, 5])
expect(["ANSWERED"], [1]); expect(["UNANSWERED"], [2, 3, 4, 5])
expect(["DELETED"], [2]); expect(["UNDELETED"], [1, 3, 4, 5])
expect(["DRAFT"], [3]); expect(["UNDRAFT"], [1, 2, 4, 5])
expect(["FLAGGED"], [5]); expect(["UNFLAGGED"], [1, 2, 3, 4])
expect(["SEEN"], [1]); expect(["UNSEEN"], [2, 3, 4, 5])
expect(["KEYWORD", "$Work"], [5]); expect(["UNKEYWORD", "$work"], [1, 2, 3, 4])
expect(["NEW"], []); expect(["RECENT"], []); expect(["OLD"], [1, 2, 3, 4, 5])
# Internal dates and the Date field.
expect(["BEFORE", "1-Jan-2021"], [5]); expect(["ON", "1-Jan-2020"], [5])
expect(["SINCE", "1-Jan-2021"], [1, 2, 3, 4])
expect(["OLDER", "3600"], [5]); expect(["YOUNGER", "3600"], [1, 2, 3, 4])
expect(["SENTON", "6-Mar-2026"], [1]); expect(["SENTBEFORE", "6-Mar-2026"], [3, 4])
expect(["SENTSINCE", "7-Mar-2026"], [2, 5]); expect(["SENTON", "5-Mar-2026"], [3])
# Sizes and sets.
for n in sorted(set(sizes.values())):
    expect(["LARGER", str(n)], [s for s in sorted(sizes) if sizes[s] > n])
    expect(["SMALLER", str(n)], [s for s in sorted(sizes) if sizes[s] < n])
expect(["UID", "2:3"], [2, 3]); expect(["4:*"], [4, 5]); expect(["2,4"], [2, 4])
expect(["UID", "9:*"], [5])
# Header keys, through the index.
expect(["FROM", "bob"], [1]); expect(["FROM", '"zoe SMITH"'], [1]); expect(["FROM", "carol"], [2])
expect(["CC", "carol"], [1]); expect(["BCC", "secret"], [4]); expect(["TO", "dave"], [5])
expect(["SUBJECT", '"lunch on friday"'], [1, 2, 5]); expect(["SUBJECT", '"re: lunch"'], [2, 5])
expect(["HEADER", "X-Priority", "1"], [4]); expect(["HEADER", "message-id", "<lunch@"], [1])
expect(["HEADER", "References", '""'], [2, 5]); expect(["HEADER", "X-Missing", '""'], [])
# Body and text.
expect(["BODY", "noon"], [1, 2]); expect(["BODY", '"yes, noon works"'], [2])
expect(["BODY", "<b>"], []); expect(["TEXT", "lunch@example.net"], [1, 2, 5])
expect(["BODY", "lunch@example.net"], []); expect(["TEXT", '"see you"'], [5])
# One and two characters: no trigram, a scan of the indexed text.
expect(["BODY", "no"], [1, 2]); expect(["SUBJECT", "re"], [2, 5])
# Nesting.
expect(["NOT", "FROM", "bob"], [2, 3, 4, 5]); expect(["OR", "FROM", "bob", "FROM", "carol"], [1, 2])
expect(["(FROM bob SEEN)"], [1]); expect(["OR", "(FLAGGED)", "(NOT OR SEEN DELETED)"], [3, 4, 5])
expect(["NOT", "(OR BODY noon (TEXT dave))"], [3, 4])
# CONDSTORE's MODSEQ: the highest mod-sequence comes with the result.
typ, data = m.search(None, "MODSEQ", "1")
check(data[0].startswith(b"1 2 3 4 5 (MODSEQ ") and data[0].endswith(b")"), f"MODSEQ: {data}")

# A Japanese word in UTF-8 finds mail sent in ISO-2022-JP and Shift_JIS.
for word, numbers in [("議事録", [3]), ("日本語のメール", [4]), ("日", [4]), ("メール", [4])]:
    m.literal = word.encode()
    found = search("BODY", charset="UTF-8")
    check(found == numbers, f"BODY {word}: {found}")
m.literal = "打ち合わせ".encode()
check(search("SUBJECT", charset="UTF-8") == [3], "SUBJECT 打ち合わせ")
m.literal = "山田".encode()
check(search("FROM", charset="UTF-8") == [3], "FROM 山田")
check(search("FROM", "yamada", charset="US-ASCII") == [3], "CHARSET US-ASCII")
# Other charsets are refused with the ones we take.
typ, data = m._simple_command("SEARCH", "CHARSET", "ISO-8859-1", "BODY", "x")
check(typ == "NO" and data[0] == b"[BADCHARSET (UTF-8 US-ASCII)] Charset not supported; use UTF-8 or US-ASCII",
      f"BADCHARSET: {typ} {data}")

# ESEARCH.
def esearch(*args):
    m.untagged_responses.pop("ESEARCH", None)
    typ, data = m._simple_command(*args)
    check(typ == "OK", f"{args}: {typ} {data}")
    return m.untagged_responses.pop("ESEARCH", [])

lines = esearch("SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "UNDELETED")
check(len(lines) == 1 and lines[0].endswith(b" MIN 1 MAX 5 ALL 1,3:5 COUNT 4"), f"ESEARCH: {lines}")
lines = esearch("UID", "SEARCH", "RETURN", "(COUNT)", "FROM", "nobody")
check(len(lines) == 1 and lines[0].endswith(b" UID COUNT 0"), f"empty ESEARCH: {lines}")
lines = esearch("UID", "SEARCH", "RETURN", "()", "SUBJECT", "lunch")
check(len(lines) == 1 and lines[0].endswith(b" UID ALL 1:2,5"), f"RETURN (): {lines}")
lines = esearch("SEARCH", "RETURN", "(MAX)", "MODSEQ", "1")
check(len(lines) == 1 and b" MAX 5 MODSEQ " in lines[0], f"ESEARCH MODSEQ: {lines}")

# SEARCHRES: SAVE alone answers nothing but OK; $ names the result after.
lines = esearch("UID", "SEARCH", "RETURN", "(SAVE)", "FROM", "bob")
check(lines == [], f"SAVE alone sent {lines}")
typ, data = m.fetch("$", "(UID)")
check(typ == "OK" and data == [b"1 (UID 1)"], f"FETCH $: {data}")
check(search("$", "SEEN") == [1], "SEARCH $ SEEN")
typ, data = m.uid("STORE", "$", "+FLAGS", "(\\Flagged)")
check(typ == "OK" and len(data) == 1 and b"\\Flagged" in data[0], f"UID STORE $: {data}")
lines = esearch("SEARCH", "RETURN", "(SAVE MIN)", "SUBJECT", "lunch")
check(len(lines) == 1 and lines[0].endswith(b" MIN 1"), f"SAVE MIN: {lines}")
check(search("$") == [1], "MIN alone is saved")
lines = esearch("SEARCH", "RETURN", "(SAVE COUNT)", "SUBJECT", "lunch")
check(search("UID", "$") == [1, 2, 5], "SAVE with COUNT saves all")
typ, data = m._simple_command("UID", "COPY", "$", "Archive")
check(typ == "OK" and b"COPYUID" in data[0], f"UID COPY $: {data}")
typ, data = m.status("Archive", "(MESSAGES)")
check(b"MESSAGES 3" in data[0], f"Archive after COPY $: {data}")
typ, data = m._simple_command("SEARCH", "RETURN", "(SAVE)", "CHARSET", "KOI8-R", "ALL")
check(typ == "NO", "BADCHARSET with SAVE")
check(search("$") == [], "a failed SAVE leaves $ empty")

# SORT, with ties in message order.
def sort(criteria, *search, uid=False, charset="UTF-8"):
    if uid:
        typ, data = m.uid("SORT", criteria, charset, *search)
    else:
        typ, data = m.sort(criteria, charset, *search)
    check(typ == "OK", f"SORT {criteria}: {typ} {data}")
    return [int(n) for n in data[0].split()] if data[0] else []

def expect_sort(criteria, numbers, *search, uid=False):
    found = sort(criteria, *(search or ["ALL"]), uid=uid)
    check(found == numbers, f"SORT {criteria}: {found}, expected {numbers}")

expect_sort("(DATE)", [4, 3, 1, 2, 5])
expect_sort("(REVERSE DATE)", [5, 2, 1, 3, 4])
expect_sort("(SUBJECT)", [1, 2, 5, 4, 3])
expect_sort("(SUBJECT REVERSE DATE)", [5, 2, 1, 4, 3])
expect_sort("(FROM)", [5, 1, 2, 4, 3])
expect_sort("(DISPLAYFROM)", [5, 2, 4, 1, 3])
expect_sort("(CC)", [2, 3, 4, 5, 1])
expect_sort("(TO DATE)", [4, 3, 1, 2, 5])
expect_sort("(ARRIVAL)", [5, 1, 2, 3, 4])
expect_sort("(SIZE)", sorted(sizes, key=lambda s: (sizes[s], s)))
expect_sort("(REVERSE SIZE)", sorted(sizes, key=lambda s: (-sizes[s], s)))
expect_sort("(DATE)", [3, 2], "UNFLAGGED", "NOT", "FROM", "sato", uid=True)
typ, data = m._simple_command("SORT", "(DATE)", "ISO-2022-JP", "ALL")
check(typ == "NO" and b"BADCHARSET" in data[0], f"SORT BADCHARSET: {typ} {data}")
lines = esearch("UID", "SORT", "RETURN", "(MIN MAX COUNT ALL)", "(DATE)", "UTF-8", "ALL")
check(len(lines) == 1 and lines[0].endswith(b" UID MIN 4 MAX 5 ALL 4,3,1:2,5 COUNT 5"), f"ESORT: {lines}")

# THREAD.
typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
check(typ == "OK" and data == [b"(4)(3)(1 2 5)"], f"THREAD REFERENCES: {data}")
typ, data = m.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
check(typ == "OK" and data == [b"(4)(3)(1 (2)(5))"], f"THREAD ORDEREDSUBJECT: {data}")
typ, data = m.uid("THREAD", "REFERENCES", "US-ASCII", "NOT", "UID", "2")
check(typ == "OK" and data == [b"(4)(3)(1 5)"], f"UID THREAD without 2: {data}")
try:
    m._simple_command("THREAD", "REFS", "UTF-8", "ALL")
    check(False, "an unknown algorithm was accepted")
except imaplib.IMAP4.error as e:
    check("Unknown threading algorithm REFS" in str(e), f"THREAD REFS: {e}")
typ, data = m.thread("REFERENCES", "UTF-8", "FROM", "nobody")
check(typ == "OK" and data in ([None], [b""]), f"empty THREAD: {data}")

# A huge SEARCH: 10,000 keys get BAD [LIMIT] at once; the session goes on; 1,000
# keys (500 different body words) are answered.
started = time.monotonic()
try:
    m._simple_command("SEARCH", *(["SEEN"] * 10000))
    check(False, "10,000 keys accepted")
except imaplib.IMAP4.error as e:
    check("[LIMIT]" in str(e) and "search keys" in str(e), f"10,000 keys: {e}")
check(time.monotonic() - started < 30, "10,000 keys took long")
typ, _ = m.noop()
check(typ == "OK", "NOOP after the huge SEARCH")
words = []
for n in range(500):
    words += ["NOT", "BODY", "zq%dx" % n]
started = time.monotonic()
found = search(*words)
check(found == [1, 2, 3, 4, 5], f"1,000 keys: {found}")
check(time.monotonic() - started < 60, "1,000 keys took more than a minute")
m.logout()

# RFC 9051 section 6.4.4: an IMAP4rev2 client gets ESEARCH for a plain SEARCH.
r = imaplib.IMAP4("127.0.0.1", imap_port, timeout=30)
r.login("alice@example.test", password)
typ, data = r._simple_command("ENABLE", "IMAP4rev2")
check(typ == "OK", f"ENABLE IMAP4rev2: {typ} {data}")
r.select("INBOX")
r.untagged_responses.pop("ESEARCH", None)
typ, data = r._simple_command("SEARCH", "SUBJECT", "lunch")
check(typ == "OK", f"rev2 SEARCH: {typ} {data}")
lines = r.untagged_responses.pop("ESEARCH", [])
check(len(lines) == 1 and lines[0].endswith(b" ALL 1:2,5"), f"rev2 SEARCH answered {lines}")
check("SEARCH" not in r.untagged_responses, f"rev2 SEARCH also sent * SEARCH: {r.untagged_responses}")
typ, data = r._simple_command("SEARCH", "FROM", "nobody")
lines = r.untagged_responses.pop("ESEARCH", [])
check(len(lines) == 1 and lines[0].startswith(b"(TAG ") and lines[0].endswith(b")"),
      f"rev2 SEARCH of nothing: {lines}")
r.logout()
print("ok")
"#;

fn run(backend: Backend) {
    let node = Node::start(NodeOptions {
        backend,
        ..NodeOptions::default()
    });
    node.add_user("alice@example.test", None);
    let out = python(
        SCRIPT,
        &[
            &node.smtp.port().to_string(),
            &node.imap.port().to_string(),
            PASSWORD,
        ],
    );
    assert!(out.ends_with("ok\n"), "{out}");
}

#[test]
fn imaplib_search_sort_thread_on_sqlite() {
    run(Backend::Sqlite);
}

#[test]
fn imaplib_search_sort_thread_on_postgres() {
    run(Backend::Postgres);
}
