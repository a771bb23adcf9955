//! Mailboxes: each holds its own UID and MODSEQ counters (rule 2 of the store).

use crate::{Result, Store};

/// RFC 6154 special-use attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialUse {
    Sent,
    Drafts,
    Trash,
    Junk,
    Archive,
}

impl SpecialUse {
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Trash => "\\Trash",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Archive => "\\Archive",
        }
    }
}

/// The mailboxes every new account gets.
pub const DEFAULT_MAILBOXES: &[(&str, Option<SpecialUse>)] = &[
    ("INBOX", None),
    ("Sent", Some(SpecialUse::Sent)),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Archive", Some(SpecialUse::Archive)),
];

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Mailbox {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub special_use: Option<String>,
    pub subscribed: bool,
    pub uid_validity: i64,
    pub uid_next: i64,
    pub highest_modseq: i64,
}

/// A UIDVALIDITY that differs from any earlier mailbox of the same name: the clock in
/// seconds, which fits the 32 bits IMAP allows until 2106.
pub(crate) fn new_uid_validity() -> i64 {
    crate::now().clamp(1, u32::MAX as i64)
}

const MAILBOX_COLUMNS: &str =
    "id, account_id, name, special_use, subscribed, uid_validity, uid_next, highest_modseq";

impl Store {
    pub async fn mailboxes(&self, account_id: i64) -> Result<Vec<Mailbox>> {
        let mailboxes = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, Mailbox>(sqlx::AssertSqlSafe(format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 ORDER BY name"
            )))
            .bind(account_id)
            .fetch_all(p)
            .await?
        });
        Ok(mailboxes)
    }

    pub async fn mailbox_by_name(&self, account_id: i64, name: &str) -> Result<Option<Mailbox>> {
        let mailbox = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, Mailbox>(sqlx::AssertSqlSafe(format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 AND name = $2"
            )))
            .bind(account_id)
            .bind(name)
            .fetch_optional(p)
            .await?
        });
        Ok(mailbox)
    }

    /// Number of messages and their total size in a mailbox.
    pub async fn mailbox_totals(&self, mailbox_id: i64) -> Result<(i64, i64)> {
        let totals: (i64, i64) = dispatch!(&self.pool, read, |p| {
            sqlx::query_as(
                "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM messages WHERE mailbox_id = $1",
            )
            .bind(mailbox_id)
            .fetch_one(p)
            .await?
        });
        Ok(totals)
    }
}
