//! Mailboxes: each holds its own UID and MODSEQ counters (rule 2 of the store).

use rusqlite::named_params;

use crate::direct_read::{all_rows, optional_row};

use crate::pool::{Pool, WritePool, retry_conflicts};
use crate::{Result, Store, StoreError};

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

pub(crate) fn mailbox_not_found(mailbox_id: i64) -> StoreError {
    StoreError::NotFound(format!("mailbox {mailbox_id}"))
}

/// A UIDVALIDITY that differs from any earlier mailbox of the same name: the clock in
/// seconds, which fits the 32 bits IMAP allows until 2106.
pub(crate) fn new_uid_validity() -> i64 {
    crate::now().clamp(1, u32::MAX as i64)
}

macro_rules! mailbox_columns {
    () => {
        "id, account_id, name, special_use, subscribed, uid_validity, uid_next, highest_modseq"
    };
}

const MAILBOXES_OF_ACCOUNT: &str = concat!(
    "SELECT ",
    mailbox_columns!(),
    " FROM mailboxes WHERE account_id = $1 ORDER BY name"
);

const MAILBOX_BY_NAME: &str = concat!(
    "SELECT ",
    mailbox_columns!(),
    " FROM mailboxes WHERE account_id = $1 AND name = $2"
);

impl Mailbox {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Mailbox> {
        Ok(Mailbox {
            id: row.get("id")?,
            account_id: row.get("account_id")?,
            name: row.get("name")?,
            special_use: row.get("special_use")?,
            subscribed: row.get("subscribed")?,
            uid_validity: row.get("uid_validity")?,
            uid_next: row.get("uid_next")?,
            highest_modseq: row.get("highest_modseq")?,
        })
    }
}

impl Store {
    pub async fn mailboxes(&self, account_id: i64) -> Result<Vec<Mailbox>> {
        match &self.pool {
            // An account may have any number: not a read for the calling thread.
            Pool::Sqlite { direct, .. } => {
                direct
                    .scan(move |db| {
                        all_rows(
                            db,
                            MAILBOXES_OF_ACCOUNT,
                            named_params! {"$1": account_id},
                            Mailbox::from_sqlite,
                        )
                    })
                    .await
            }
            Pool::Postgres(p) => Ok(sqlx::query_as::<_, Mailbox>(MAILBOXES_OF_ACCOUNT)
                .bind(account_id)
                .fetch_all(p)
                .await?),
        }
    }

    pub async fn mailbox_by_name(&self, account_id: i64, name: &str) -> Result<Option<Mailbox>> {
        match &self.pool {
            Pool::Sqlite { direct, .. } => direct.lookup(|db| {
                optional_row(
                    db,
                    MAILBOX_BY_NAME,
                    named_params! {"$1": account_id, "$2": name},
                    Mailbox::from_sqlite,
                )
            }),
            Pool::Postgres(p) => Ok(sqlx::query_as::<_, Mailbox>(MAILBOX_BY_NAME)
                .bind(account_id)
                .bind(name)
                .fetch_optional(p)
                .await?),
        }
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

/// The hierarchy separator of mailbox names.
pub const HIERARCHY_DELIMITER: char = '/';

impl Store {
    /// Creates a mailbox (CREATE). Parents are not created implicitly here; IMAP's
    /// CREATE makes them first.
    pub async fn create_mailbox(
        &self,
        account_id: i64,
        name: &str,
        special_use: Option<&str>,
    ) -> Result<Mailbox> {
        if name.eq_ignore_ascii_case("INBOX") || name.is_empty() {
            return Err(StoreError::AlreadyExists(format!("mailbox {name}")));
        }
        let created = dispatch!(&self.pool, write, |p| {
            sqlx::query(
                "INSERT INTO mailboxes (account_id, name, special_use, uid_validity, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(account_id)
            .bind(name)
            .bind(special_use)
            .bind(new_uid_validity())
            .bind(crate::now())
            .execute(p)
            .await
            .map(|_| ())
            .map_err(StoreError::from)
        });
        match created {
            Ok(_) => {}
            Err(e) if e.unique_violation() => {
                return Err(StoreError::AlreadyExists(format!("mailbox {name}")));
            }
            Err(e) => return Err(e),
        }
        self.mailbox_by_name(account_id, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {name}")))
    }

    /// Deletes a mailbox and its messages, crediting the quota (DELETE). INBOX cannot
    /// be deleted.
    pub async fn delete_mailbox(&self, account_id: i64, name: &str) -> Result<()> {
        if name.eq_ignore_ascii_case("INBOX") {
            return Err(StoreError::Invalid("INBOX cannot be deleted".into()));
        }
        retry_conflicts(|| async {
            dispatch!(&self.pool, write, |p| {
                let mut tx = p.begin_write().await?;
                sqlx::query(
                    "UPDATE accounts SET used_bytes = used_bytes - CAST((SELECT COALESCE(SUM(m.size), 0)
                       FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
                       WHERE b.account_id = $1 AND b.name = $2) AS BIGINT)
                     WHERE id = $1",
                )
                .bind(account_id)
                .bind(name)
                .execute(&mut *tx)
                .await?;
                let deleted = sqlx::query("DELETE FROM mailboxes WHERE account_id = $1 AND name = $2")
                    .bind(account_id)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Err(StoreError::NotFound(format!("mailbox {name}")));
                }
                tx.commit().await?;
                Ok(())
            })
        })
        .await
    }

    /// Renames a mailbox and its children (RENAME). Renaming INBOX moves its messages
    /// to a new mailbox and leaves INBOX empty (RFC 9051 6.3.6).
    pub async fn rename_mailbox(&self, account_id: i64, from: &str, to: &str) -> Result<()> {
        if to.eq_ignore_ascii_case("INBOX") || to.is_empty() {
            return Err(StoreError::AlreadyExists(format!("mailbox {to}")));
        }
        if to.starts_with(&format!("{from}{HIERARCHY_DELIMITER}")) {
            return Err(StoreError::Invalid(format!(
                "cannot rename {from} into itself"
            )));
        }
        if self.mailbox_by_name(account_id, to).await?.is_some() {
            return Err(StoreError::AlreadyExists(format!("mailbox {to}")));
        }
        if from.eq_ignore_ascii_case("INBOX") {
            let inbox = self
                .mailbox_by_name(account_id, "INBOX")
                .await?
                .ok_or_else(|| StoreError::NotFound("INBOX".into()))?;
            let target = self.create_mailbox(account_id, to, None).await?;
            self.copy_messages(
                account_id,
                inbox.id,
                &crate::UidRanges::all(),
                target.id,
                true,
            )
            .await?;
            return Ok(());
        }
        let prefix = format!("{from}{HIERARCHY_DELIMITER}");
        let result = retry_conflicts(|| async {
            dispatch!(&self.pool, write, |p| {
                let mut tx = p.begin_write().await?;
                let renamed = sqlx::query(
                    "UPDATE mailboxes SET name = $3, uid_validity = $4 WHERE account_id = $1 AND name = $2",
                )
                .bind(account_id)
                .bind(from)
                .bind(to)
                .bind(new_uid_validity())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if renamed == 0 {
                    return Err(StoreError::NotFound(format!("mailbox {from}")));
                }
                let children: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT id, name FROM mailboxes WHERE account_id = $1 AND substr(name, 1, $3) = $2",
                )
                .bind(account_id)
                .bind(&prefix)
                .bind(prefix.chars().count() as i32)
                .fetch_all(&mut *tx)
                .await?;
                for (id, name) in children {
                    let new_name = format!("{to}{}", &name[from.len()..]);
                    sqlx::query("UPDATE mailboxes SET name = $2 WHERE id = $1")
                        .bind(id)
                        .bind(new_name)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            })
        })
        .await;
        result.map_err(|e| {
            if e.unique_violation() {
                StoreError::AlreadyExists(format!("mailbox {to}"))
            } else {
                e
            }
        })
    }

    pub async fn set_subscribed(
        &self,
        account_id: i64,
        name: &str,
        subscribed: bool,
    ) -> Result<()> {
        let done = dispatch!(&self.pool, write, |p| {
            sqlx::query("UPDATE mailboxes SET subscribed = $3 WHERE account_id = $1 AND name = $2")
                .bind(account_id)
                .bind(name)
                .bind(subscribed)
                .execute(p)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound(format!("mailbox {name}")));
        }
        Ok(())
    }
}
