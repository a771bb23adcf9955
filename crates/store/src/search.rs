//! The search index: the decoded, case-folded text of every blob that a message refers
//! to, and the queries IMAP SEARCH, SORT and THREAD run on it.
//!
//! | backend | index | a needle of 3+ characters | of 1-2 characters |
//! |---|---|---|---|
//! | SQLite | FTS5, `trigram` tokenizer, over `search_text` | `MATCH` a phrase | `instr` on `search_text` |
//! | PostgreSQL | `pg_trgm` GIN over `search_text` | `LIKE '%needle%'` | `strpos` on `search_text` |
//!
//! A row is written after the message that brings its blob is stored (delivery,
//! APPEND; a COPY or MOVE shares its source's row), by the background indexer or by the
//! first search of its mailbox, whichever comes first (see [`crate::indexing`]), and
//! removed by a trigger with the last message that refers to the blob.
//!
//! The text is folded here ([`fold`]: Unicode lower case) and queries fold their needle
//! the same way, so the databases only test substrings: IMAP's case-insensitive match
//! (RFC 9051 section 6.4.4) does not depend on the database's locale.

use postcell_mime::Summary;
use rusqlite::named_params;

use crate::direct_read::all_rows;
use crate::pool::Pool;
use crate::{Result, Store, UidRanges};

/// The version of the extraction that writes [`SearchDocument`]s. Rows written by an
/// older one are queued to be written again when the store opens.
pub const INDEX_VERSION: i32 = 1;

/// Fewer characters than this cannot use a trigram index.
const TRIGRAM: usize = 3;

/// On SQLite, a mailbox of up to this many messages is searched for header text by
/// reading its rows rather than through the FTS index. The index's cost grows with the
/// whole store, not with the mailbox: a phrase made of common trigrams ("message 908
/// of" where every subject says "message N of") reads each trigram's list over every
/// indexed message, about 11 ms against 150,000 of them, where reading the header
/// columns of 1,000 rows takes about 3 ms. Header text is short and bounded by the
/// header limits, so reading it row by row costs little per message; bodies are not,
/// and always go through the index.
const HEADER_SCAN_MAX_MESSAGES: usize = 5_000;

/// What the index keeps of one message (of one blob): text folded with [`fold`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchDocument {
    pub from: String,
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    /// Every header field, one `name: value` line each.
    pub headers: String,
    pub body: String,
    /// The References field as written (not folded: message ids are compared exactly).
    pub references: String,
    /// The Date field: the instant, and the day as written (days since 1970-01-01).
    pub sent_at: Option<i64>,
    pub sent_day: Option<i64>,
}

impl SearchDocument {
    /// The document of the raw message `raw`.
    pub fn of(raw: &[u8]) -> SearchDocument {
        SearchDocument::from_summary(&postcell_mime::summarize(raw), raw)
    }

    /// The document of `raw` when its summary is at hand (delivery computes it anyway).
    pub fn from_summary(summary: &Summary, raw: &[u8]) -> SearchDocument {
        let text = summary.search_text(raw);
        SearchDocument {
            from: fold(&text.from),
            to: fold(&text.to),
            cc: fold(&text.cc),
            bcc: fold(&text.bcc),
            subject: fold(&text.subject),
            headers: fold(&text.headers),
            body: fold(&text.body),
            references: text.references.replace('\0', ""),
            sent_at: text.sent.map(|sent| sent.timestamp),
            sent_day: text.sent.map(|sent| sent.day),
        }
    }
}

/// Text as the index holds it and as needles are compared: Unicode lower case, without
/// NUL (which PostgreSQL's text type cannot hold).
pub fn fold(text: &str) -> String {
    let mut folded = text.to_lowercase();
    folded.retain(|c| c != '\0');
    folded
}

/// Which text a SEARCH key looks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextField {
    From,
    To,
    Cc,
    Bcc,
    Subject,
    /// Every header field (HEADER, and half of TEXT).
    Headers,
    Body,
    /// The header or the body (IMAP TEXT).
    Text,
}

impl TextField {
    /// Whether the field is header text only (short, bounded by the header limits).
    fn in_header(self) -> bool {
        !matches!(self, TextField::Body | TextField::Text)
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            TextField::From => &["from_text"],
            TextField::To => &["to_text"],
            TextField::Cc => &["cc_text"],
            TextField::Bcc => &["bcc_text"],
            TextField::Subject => &["subject_text"],
            TextField::Headers => &["headers"],
            TextField::Body => &["body"],
            TextField::Text => &["headers", "body"],
        }
    }
}

/// A comparison of the Date field's day (SENTBEFORE, SENTON, SENTSINCE) with a day
/// counted from 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SentDay {
    Before(i64),
    On(i64),
    Since(i64),
}

/// The FTS5 query for a phrase in some columns: `{headers body} : "a ""b"""`.
fn fts_query(field: TextField, needle: &str) -> String {
    let columns = field.columns().join(" ");
    format!("{{{columns}}} : \"{}\"", needle.replace('"', "\"\""))
}

/// A LIKE pattern that matches `needle` anywhere, with `\` as the escape character.
fn like_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// The UIDs of the messages of a mailbox whose `field` contains `needle` (folded
    /// with [`fold`] here), in UID order. An empty needle matches every indexed message.
    /// `mailbox_messages`, how many messages the caller sees in the mailbox, chooses
    /// how SQLite finds them (see [`HEADER_SCAN_MAX_MESSAGES`]); the answer is the same.
    pub async fn search_text(
        &self,
        mailbox_id: i64,
        mailbox_messages: usize,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<i64>> {
        let needle = fold(needle);
        let columns = field.columns();
        let use_fts = needle.chars().count() >= TRIGRAM
            && !(field.in_header() && mailbox_messages <= HEADER_SCAN_MAX_MESSAGES);
        let uids = match &self.pool {
            Pool::Sqlite { direct, .. } if use_fts => {
                let query = fts_query(field, &needle);
                direct
                    .scan(move |db| uids_of(db, FTS_MATCHES, mailbox_id, &query))
                    .await?
            }
            Pool::Sqlite { direct, .. } => {
                let test = substring_test(columns, |column| format!("instr(t.{column}, $2) > 0"));
                let sql = scan_sql(&test);
                direct
                    .scan(move |db| uids_of(db, &sql, mailbox_id, &needle))
                    .await?
            }
            Pool::Postgres(pool) if needle.chars().count() >= TRIGRAM => {
                let test = substring_test(columns, |column| format!("t.{column} LIKE $2"));
                sqlx::query_scalar(sqlx::AssertSqlSafe(scan_sql(&test)))
                    .bind(mailbox_id)
                    .bind(like_pattern(&needle))
                    .fetch_all(pool)
                    .await?
            }
            Pool::Postgres(pool) => {
                let test = substring_test(columns, |column| format!("strpos(t.{column}, $2) > 0"));
                sqlx::query_scalar(sqlx::AssertSqlSafe(scan_sql(&test)))
                    .bind(mailbox_id)
                    .bind(&needle)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(uids)
    }

    /// The UIDs and folded header text of the messages whose header contains `needle`
    /// somewhere, for IMAP HEADER, which then looks for the needle in the named field.
    /// An empty needle returns every indexed message (HEADER with an empty string asks
    /// whether the field exists).
    pub async fn search_headers(
        &self,
        mailbox_id: i64,
        mailbox_messages: usize,
        needle: &str,
    ) -> Result<Vec<(i64, String)>> {
        let needle = fold(needle);
        if needle.is_empty() {
            return dispatch!(&self.pool, read, |p| {
                Ok(sqlx::query_as(
                    "SELECT m.uid, t.headers FROM messages m
                     JOIN search_text t ON t.blob_id = m.blob_id
                     WHERE m.mailbox_id = $1 ORDER BY m.uid",
                )
                .bind(mailbox_id)
                .fetch_all(p)
                .await?)
            });
        }
        let uids = self
            .search_text(mailbox_id, mailbox_messages, TextField::Headers, &needle)
            .await?;
        let rows: Vec<(i64, String)> = dispatch!(&self.pool, read, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT m.uid, t.headers FROM messages m
                 JOIN search_text t ON t.blob_id = m.blob_id
                 WHERE m.mailbox_id = $1 AND {} ORDER BY m.uid",
                UidRanges::from_uids(&uids).sql_for("m.uid")
            )))
            .bind(mailbox_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows)
    }

    /// The UIDs of the messages whose Date field's day compares as asked. Messages
    /// without a readable Date field match none of SENTBEFORE, SENTON and SENTSINCE.
    pub async fn search_sent_day(&self, mailbox_id: i64, condition: SentDay) -> Result<Vec<i64>> {
        let (test, day) = match condition {
            SentDay::Before(day) => ("t.sent_day < $2", day),
            SentDay::On(day) => ("t.sent_day = $2", day),
            SentDay::Since(day) => ("t.sent_day >= $2", day),
        };
        let sql = format!(
            "SELECT m.uid FROM messages m JOIN search_text t ON t.blob_id = m.blob_id
             WHERE m.mailbox_id = $1 AND {test} ORDER BY m.uid"
        );
        dispatch!(&self.pool, read, |p| {
            Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(mailbox_id)
                .bind(day)
                .fetch_all(p)
                .await?)
        })
    }

    /// The References field of each message in `uids` that has one, in UID order, for
    /// THREAD=REFERENCES.
    pub async fn message_references(
        &self,
        mailbox_id: i64,
        uids: &UidRanges,
    ) -> Result<Vec<(i64, String)>> {
        let sql = format!(
            "SELECT m.uid, t.refs FROM messages m JOIN search_text t ON t.blob_id = m.blob_id
             WHERE m.mailbox_id = $1 AND t.refs <> '' AND {} ORDER BY m.uid",
            uids.sql_for("m.uid")
        );
        dispatch!(&self.pool, read, |p| {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(mailbox_id)
                .fetch_all(p)
                .await?)
        })
    }
}

/// The index answers first, then each match is looked up by blob: CROSS JOIN keeps
/// SQLite from walking the mailbox and running the MATCH again for every message (its
/// plan without statistics, linear in the mailbox and in the needle's trigrams), and
/// `+` from looking matches up by mailbox.
const FTS_MATCHES: &str = "SELECT m.uid FROM search_fts f
     CROSS JOIN search_text t ON t.id = f.rowid
     CROSS JOIN messages m ON m.blob_id = t.blob_id
     WHERE search_fts MATCH $2 AND +m.mailbox_id = $1
     ORDER BY m.uid";

/// The UIDs a search statement of mailbox `$1` and text `$2` finds, on SQLite.
fn uids_of(db: &rusqlite::Connection, sql: &str, mailbox_id: i64, text: &str) -> Result<Vec<i64>> {
    all_rows(
        db,
        sql,
        named_params! {"$1": mailbox_id, "$2": text},
        |row| row.get(0),
    )
}

/// `(test(a) OR test(b))` over the columns of a field.
fn substring_test(columns: &[&str], test: impl Fn(&str) -> String) -> String {
    let tests: Vec<String> = columns.iter().map(|column| test(column)).collect();
    format!("({})", tests.join(" OR "))
}

/// The messages of mailbox `$1` whose index row passes `test`, in UID order.
fn scan_sql(test: &str) -> String {
    format!(
        "SELECT m.uid FROM messages m JOIN search_text t ON t.blob_id = m.blob_id
         WHERE m.mailbox_id = $1 AND {test} ORDER BY m.uid"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_escape_what_the_databases_read_specially() {
        assert_eq!(
            fts_query(TextField::Text, "say \"hi\""),
            "{headers body} : \"say \"\"hi\"\"\""
        );
        assert_eq!(fts_query(TextField::From, "bob"), "{from_text} : \"bob\"");
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }

    #[test]
    fn folding_is_unicode_lower_case_without_nul() {
        assert_eq!(fold("ÉCOLE Straße ＡＢＣ"), "école straße ａｂｃ");
        assert_eq!(fold("a\0b"), "ab");
    }

    #[test]
    fn documents_hold_folded_fields() {
        let raw = b"From: Bob <BOB@example.net>\r\nSubject: Hello World\r\n\
References: <A@x>\r\nDate: Mon, 2 Jan 2006 15:04:05 -0700\r\n\r\nSome TEXT\r\n";
        let document = SearchDocument::of(raw);
        assert_eq!(document.from, "bob <bob@example.net>");
        assert_eq!(document.subject, "hello world");
        assert_eq!(document.references, "<A@x>");
        assert!(document.headers.contains("subject: hello world\n"));
        assert_eq!(document.body, "some text\r\n");
        assert_eq!(document.sent_at, Some(1_136_239_445));
        assert_eq!(document.sent_day, Some(13_150));
    }
}
