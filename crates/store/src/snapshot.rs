//! What a session that keeps its own copy of a mailbox reads: the whole mailbox once, in
//! a compact form, then only what changed (`Store::changes_since`), plus the counts that
//! STATUS reports.

use futures::TryStreamExt;
use rusqlite::named_params;

use crate::direct_read::optional_row;
use crate::mailbox::mailbox_not_found;
use crate::message::EXPUNGED_SINCE;
use crate::pool::Pool;
use crate::{Result, Store};

const SNAPSHOT_COUNTERS: &str =
    "SELECT uid_validity, uid_next, highest_modseq FROM mailboxes WHERE id = $1";

/// An empty keyword list (nearly all of them) comes as NULL, which allocates nothing.
const SNAPSHOT_MESSAGES: &str =
    "SELECT uid, modseq, flags, CASE WHEN keywords = '' THEN NULL ELSE keywords END
       FROM messages WHERE mailbox_id = $1 ORDER BY uid";

const HIGHEST_MODSEQ: &str = "SELECT highest_modseq FROM mailboxes WHERE id = $1";

/// One message as a mailbox listing needs it: no body, no blob, no dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFlags {
    pub uid: i64,
    pub modseq: i64,
    /// System flags as bits (see [`crate::flags`]).
    pub flags: i64,
    /// Keywords, space separated, sorted.
    pub keywords: String,
}

/// Every message of a mailbox, in UID order, and the mailbox's counters.
///
/// `highest_modseq` is read before the messages, so the listing holds at least every
/// change up to it (perhaps some after it): a reader that later asks for the changes
/// after `highest_modseq` misses nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxSnapshot {
    pub uid_validity: i64,
    pub uid_next: i64,
    pub highest_modseq: i64,
    pub messages: Vec<MessageFlags>,
}

/// The numbers STATUS reports of a mailbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxCounts {
    pub messages: i64,
    /// Messages without `\Seen`.
    pub unseen: i64,
    /// Messages with `\Deleted`.
    pub deleted: i64,
    /// Total size in octets.
    pub size: i64,
}

impl Store {
    /// The whole mailbox in one listing (SELECT). One query, whatever the size.
    pub async fn mailbox_snapshot(&self, mailbox_id: i64) -> Result<MailboxSnapshot> {
        self.activity.record();
        match &self.pool {
            Pool::Sqlite { direct, .. } => {
                direct
                    .scan(move |db| {
                        // One read transaction for both, so the counters match the rows.
                        let tx = db.unchecked_transaction()?;
                        let counters = optional_row(
                            &tx,
                            SNAPSHOT_COUNTERS,
                            named_params! {"$1": mailbox_id},
                            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                        )?;
                        let (uid_validity, uid_next, highest_modseq) =
                            counters.ok_or_else(|| mailbox_not_found(mailbox_id))?;
                        let mut query = tx.prepare_cached(SNAPSHOT_MESSAGES)?;
                        let mut rows = query.query(named_params! {"$1": mailbox_id})?;
                        let mut messages = Vec::new();
                        while let Some(row) = rows.next()? {
                            let keywords: Option<String> = row.get(3)?;
                            messages.push(MessageFlags {
                                uid: row.get(0)?,
                                modseq: row.get(1)?,
                                flags: row.get(2)?,
                                keywords: keywords.unwrap_or_default(),
                            });
                        }
                        drop(rows);
                        drop(query);
                        tx.finish()?;
                        Ok(MailboxSnapshot {
                            uid_validity,
                            uid_next,
                            highest_modseq,
                            messages,
                        })
                    })
                    .await
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                let (uid_validity, uid_next, highest_modseq): (i64, i64, i64) =
                    sqlx::query_as(SNAPSHOT_COUNTERS)
                        .bind(mailbox_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or_else(|| mailbox_not_found(mailbox_id))?;
                // Streamed into the compact form: no row is held beyond its own decoding,
                // and an empty keyword list (nearly all of them) allocates nothing.
                let mut messages = Vec::new();
                let mut rows =
                    sqlx::query_as::<_, (i64, i64, i64, Option<String>)>(SNAPSHOT_MESSAGES)
                        .bind(mailbox_id)
                        .fetch(&mut *tx);
                while let Some((uid, modseq, flags, keywords)) = rows.try_next().await? {
                    messages.push(MessageFlags {
                        uid,
                        modseq,
                        flags,
                        keywords: keywords.unwrap_or_default(),
                    });
                }
                drop(rows);
                tx.commit().await?;
                Ok(MailboxSnapshot {
                    uid_validity,
                    uid_next,
                    highest_modseq,
                    messages,
                })
            }
        }
    }

    /// The mailbox's highest MODSEQ: a session compares it with its own before asking
    /// for changes.
    pub async fn highest_modseq(&self, mailbox_id: i64) -> Result<i64> {
        let modseq: Option<i64> = match &self.pool {
            Pool::Sqlite { direct, .. } => direct.lookup(|db| {
                optional_row(
                    db,
                    HIGHEST_MODSEQ,
                    named_params! {"$1": mailbox_id},
                    |row| row.get(0),
                )
            })?,
            Pool::Postgres(p) => {
                sqlx::query_scalar(HIGHEST_MODSEQ)
                    .bind(mailbox_id)
                    .fetch_optional(p)
                    .await?
            }
        };
        modseq.ok_or_else(|| mailbox_not_found(mailbox_id))
    }

    /// UIDs expunged from a mailbox after `since`, in UID order (QRESYNC's VANISHED).
    pub async fn expunged_since(&self, mailbox_id: i64, since: i64) -> Result<Vec<i64>> {
        let uids = dispatch!(&self.pool, read, |p| {
            sqlx::query_scalar(EXPUNGED_SINCE)
                .bind(mailbox_id)
                .bind(since)
                .fetch_all(p)
                .await?
        });
        Ok(uids)
    }

    /// Message count, unseen, deleted and total size of a mailbox, in one query.
    pub async fn mailbox_counts(&self, mailbox_id: i64) -> Result<MailboxCounts> {
        let sql = format!(
            "SELECT COUNT(*),
                    CAST(COALESCE(SUM(CASE WHEN (flags & {seen}) = 0 THEN 1 ELSE 0 END), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN (flags & {deleted}) <> 0 THEN 1 ELSE 0 END), 0) AS BIGINT),
                    CAST(COALESCE(SUM(size), 0) AS BIGINT)
             FROM messages WHERE mailbox_id = $1",
            seen = crate::flags::SEEN,
            deleted = crate::flags::DELETED,
        );
        let (messages, unseen, deleted, size): (i64, i64, i64, i64) =
            dispatch!(&self.pool, read, |p| {
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(mailbox_id)
                    .fetch_one(p)
                    .await?
            });
        Ok(MailboxCounts {
            messages,
            unseen,
            deleted,
            size,
        })
    }
}
