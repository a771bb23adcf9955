//! The POP3 view of a mailbox: INBOX as a numbered list, and deletion in one
//! transaction at QUIT.

use rusqlite::named_params;
use sqlx::Row;

use crate::pool::{Pool, WritePool, retry_conflicts};
use crate::{BlobId, Change, Result, Store, StoreError};

const MAILDROP: &str = "SELECT uid, size, blob_id FROM messages WHERE mailbox_id = $1 ORDER BY uid";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaildropMessage {
    pub uid: i64,
    pub size: i64,
    pub blob_id: BlobId,
}

/// Removes the messages with UIDs in `$list` (integers, comma separated) from a mailbox
/// inside the caller's transaction, keeping a tombstone with `$modseq` for each (QRESYNC).
/// Evaluates to the number of messages removed. Every expunge goes through here.
macro_rules! expunge_in_transaction {
    ($tx:ident, $mailbox_id:expr, $modseq:expr, $list:expr) => {{
        let (mailbox_id, modseq, list): (i64, i64, &str) = ($mailbox_id, $modseq, $list);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO expunged (mailbox_id, uid, modseq)
             SELECT mailbox_id, uid, $2 FROM messages WHERE mailbox_id = $1 AND uid IN ({list})
             ON CONFLICT DO NOTHING"
        )))
        .bind(mailbox_id)
        .bind(modseq)
        .execute(&mut *$tx)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM messages WHERE mailbox_id = $1 AND uid IN ({list})"
        )))
        .bind(mailbox_id)
        .execute(&mut *$tx)
        .await?
        .rows_affected()
    }};
}

impl Store {
    /// The INBOX of an account in UID order, with the mailbox's id and UIDVALIDITY.
    pub async fn maildrop(&self, account_id: i64) -> Result<(i64, i64, Vec<MaildropMessage>)> {
        self.activity.record();
        let mailbox = self
            .mailbox_by_name(account_id, "INBOX")
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("INBOX of account {account_id}")))?;
        let messages = match &self.pool {
            Pool::Sqlite { direct, .. } => {
                let mailbox_id = mailbox.id;
                direct
                    .scan(move |db| {
                        let mut query = db.prepare_cached(MAILDROP)?;
                        let mut rows = query.query(named_params! {"$1": mailbox_id})?;
                        let mut messages = Vec::new();
                        while let Some(row) = rows.next()? {
                            let blob: String = row.get("blob_id")?;
                            messages.push(MaildropMessage {
                                uid: row.get("uid")?,
                                size: row.get("size")?,
                                blob_id: BlobId::parse(&blob)?,
                            });
                        }
                        Ok(messages)
                    })
                    .await?
            }
            Pool::Postgres(p) => sqlx::query(MAILDROP)
                .bind(mailbox.id)
                .fetch_all(p)
                .await?
                .into_iter()
                .map(|row| {
                    let blob: String = row.try_get("blob_id")?;
                    Ok(MaildropMessage {
                        uid: row.try_get("uid")?,
                        size: row.try_get("size")?,
                        blob_id: BlobId::parse(&blob)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        };
        Ok((mailbox.id, mailbox.uid_validity, messages))
    }

    /// Expunges messages by UID in one transaction: the rows go, tombstones are kept
    /// for QRESYNC, the quota is credited, and the mailbox gets a new MODSEQ. Returns
    /// how many were removed (messages already gone are skipped).
    pub async fn expunge_uids(
        &self,
        account_id: i64,
        mailbox_id: i64,
        uids: &[i64],
    ) -> Result<u64> {
        self.activity.record();
        if uids.is_empty() {
            return Ok(0);
        }
        // The list is built from integers only, so formatting it into SQL is safe.
        let list = uids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let (removed, change) = retry_conflicts(|| async {
            dispatch!(&self.pool, write, |p| {
                let mut tx = p.begin_write().await?;
                // Account before mailbox: the order every writer locks them in.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE accounts SET used_bytes = used_bytes - CAST((SELECT COALESCE(SUM(size), 0)
                       FROM messages WHERE mailbox_id = $2 AND uid IN ({list})) AS BIGINT)
                     WHERE id = $1"
                )))
                .bind(account_id)
                .bind(mailbox_id)
                .execute(&mut *tx)
                .await?;
                let modseq: i64 = sqlx::query_scalar(
                    "UPDATE mailboxes SET highest_modseq = highest_modseq + 1
                     WHERE id = $1 AND account_id = $2 RETURNING highest_modseq",
                )
                .bind(mailbox_id)
                .bind(account_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox_id}")))?;
                let removed = expunge_in_transaction!(tx, mailbox_id, modseq, &list);
                let change = Change::Mailbox { account_id, mailbox_id, modseq };
                p.notify_changes(&mut tx, &[change]).await?;
                tx.commit().await?;
                Ok((removed, change))
            })
        })
        .await?;
        self.feed.publish(&[change]);
        Ok(removed)
    }
}
