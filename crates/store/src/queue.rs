//! The outbound queue: one row per (message, remote recipient), filled by delivery,
//! drained by the relay's workers.
//!
//! Workers claim due entries with a lease (rule 6): the row's `lease_owner` and
//! `lease_expires_at`, set in one statement that only takes rows that are free or whose
//! lease has expired. On PostgreSQL the candidate rows are picked `FOR UPDATE SKIP
//! LOCKED`, so two nodes claiming at once take different rows instead of waiting on
//! each other; on SQLite the single writer serialises claims. A worker renews the
//! leases it holds while it works; a worker that dies stops renewing, and once the
//! lease expires another node's worker claims the entry.
//!
//! Every outcome (delivered, deferred, bounced) is written together with its
//! delivery-log record in one transaction, and only by the lease holder.

use std::time::Duration;

use crate::log::{DeliveryStatus, Direction, NewRecord};
use crate::pool::{Pool, WritePool};
use crate::{Result, Store, now};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboundEntry {
    pub id: i64,
    pub created_at: i64,
    pub sender: String,
    pub recipient: String,
    pub blob_id: String,
    pub size: i64,
    pub message_id: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub expires_at: i64,
    pub last_reply: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    pub last_remote: Option<String>,
}

impl OutboundEntry {
    /// The recipient's domain, lower case (addresses are stored normalised).
    pub fn domain(&self) -> &str {
        self.recipient
            .rsplit_once('@')
            .map(|(_, domain)| domain)
            .unwrap_or("")
    }
}

/// The columns of [`OutboundEntry`], as a literal so that queries stay `&'static str`.
macro_rules! columns {
    () => {
        "id, created_at, sender, recipient, blob_id, size, message_id, state, attempts,
         next_attempt_at, expires_at, last_reply, lease_owner, lease_expires_at,
         last_attempt_at, last_remote"
    };
}

/// The claim statement; `$lock` is the row-lock clause of the candidate query.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE outbound_queue SET lease_owner = $1, lease_expires_at = $2
             WHERE id IN (
                 SELECT id FROM outbound_queue
                 WHERE state = 'queued' AND next_attempt_at <= $3
                   AND (lease_owner IS NULL OR lease_expires_at <= $3)
                 ORDER BY next_attempt_at, id LIMIT $4 ",
            $lock,
            ") RETURNING ",
            columns!()
        )
    };
}

/// What became of one attempt, as the relay saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The remote accepted the recipient (250 after DATA).
    Delivered,
    /// A temporary failure; try again at this time (Unix seconds).
    Deferred { next_attempt_at: i64 },
    /// A permanent failure or the entry expired: the sender gets a DSN.
    Bounced,
}

/// The outcome of one attempt, with what the delivery log records about it.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub outcome: AttemptOutcome,
    /// The host that answered, `mx.example.net[192.0.2.1]:25`, if any was reached.
    pub remote: Option<&'a str>,
    /// The remote's reply, or why no reply was had.
    pub reply: &'a str,
}

impl Store {
    /// Entries still to deliver, oldest first.
    pub async fn queued(&self, limit: i64) -> Result<Vec<OutboundEntry>> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM outbound_queue WHERE state = 'queued' ORDER BY id LIMIT $1"
        );
        let entries = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, OutboundEntry>(sql)
                .bind(limit)
                .fetch_all(p)
                .await?
        });
        Ok(entries)
    }

    pub async fn queue_entry(&self, id: i64) -> Result<Option<OutboundEntry>> {
        let sql = concat!("SELECT ", columns!(), " FROM outbound_queue WHERE id = $1");
        let entry = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, OutboundEntry>(sql)
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        Ok(entry)
    }

    /// Claims up to `limit` due entries for `owner` until `now + ttl`: entries whose
    /// next attempt is due and that nobody holds, or whose holder's lease expired.
    pub async fn claim_due(
        &self,
        owner: &str,
        ttl: Duration,
        limit: i64,
    ) -> Result<Vec<OutboundEntry>> {
        let at = now();
        // Only PostgreSQL has (and needs) row locks that other claimers skip.
        let sql = match &self.pool {
            Pool::Postgres(_) => claim_sql!("FOR UPDATE SKIP LOCKED"),
            Pool::Sqlite { .. } => claim_sql!(""),
        };
        let mut entries = dispatch!(&self.pool, write, |p| {
            sqlx::query_as::<_, OutboundEntry>(sql)
                .bind(owner)
                .bind(at + ttl.as_secs().max(1) as i64)
                .bind(at)
                .bind(limit)
                .fetch_all(p)
                .await?
        });
        entries.sort_by_key(|e| e.id);
        Ok(entries)
    }

    /// Extends every lease `owner` holds; returns how many it still holds.
    pub async fn renew_queue_leases(&self, owner: &str, ttl: Duration) -> Result<u64> {
        let renewed = dispatch!(&self.pool, write, |p| {
            sqlx::query(
                "UPDATE outbound_queue SET lease_expires_at = $2
                 WHERE lease_owner = $1 AND state = 'queued'",
            )
            .bind(owner)
            .bind(now() + ttl.as_secs().max(1) as i64)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(renewed)
    }

    /// Gives an entry back without an attempt (the worker is stopping).
    pub async fn release_queue_entry(&self, id: i64, owner: &str) -> Result<()> {
        dispatch!(&self.pool, write, |p| {
            sqlx::query(
                "UPDATE outbound_queue SET lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Records an attempt and its outcome in one transaction: a delivered or bounced
    /// entry leaves the queue, a deferred one waits for its next attempt, and the
    /// delivery log gets one record. Returns false, and changes nothing, when `owner`
    /// no longer holds the entry's lease (it expired and another worker took it).
    pub async fn finish_attempt(
        &self,
        entry: &OutboundEntry,
        owner: &str,
        attempt: &Attempt<'_>,
    ) -> Result<bool> {
        let at = now();
        let status = match attempt.outcome {
            AttemptOutcome::Delivered => DeliveryStatus::Delivered,
            AttemptOutcome::Deferred { .. } => DeliveryStatus::Deferred,
            AttemptOutcome::Bounced => DeliveryStatus::Bounced,
        };
        let record = NewRecord {
            at,
            node: &self.node_id,
            direction: Direction::Outbound,
            queue_id: Some(entry.id),
            message_id: entry.message_id.as_deref(),
            sender: &entry.sender,
            recipient: &entry.recipient,
            status,
            remote: attempt.remote,
            reply: Some(attempt.reply),
        };
        dispatch!(&self.pool, write, |p| {
            let mut tx = p.begin_write().await?;
            let changed = match attempt.outcome {
                AttemptOutcome::Delivered | AttemptOutcome::Bounced => {
                    sqlx::query("DELETE FROM outbound_queue WHERE id = $1 AND lease_owner = $2")
                        .bind(entry.id)
                        .bind(owner)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                }
                AttemptOutcome::Deferred { next_attempt_at } => sqlx::query(
                    "UPDATE outbound_queue
                         SET attempts = attempts + 1, next_attempt_at = $3, last_reply = $4,
                             last_attempt_at = $5, last_remote = $6,
                             lease_owner = NULL, lease_expires_at = NULL
                         WHERE id = $1 AND lease_owner = $2",
                )
                .bind(entry.id)
                .bind(owner)
                .bind(next_attempt_at)
                .bind(attempt.reply)
                .bind(at)
                .bind(attempt.remote)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            };
            if changed == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            insert_record!(&mut *tx, &record)?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Makes entries due now (`postcell queue retry`): one entry, or all of them.
    /// Returns how many were changed.
    pub async fn retry_queue(&self, id: Option<i64>) -> Result<u64> {
        let changed = dispatch!(&self.pool, write, |p| {
            sqlx::query(
                "UPDATE outbound_queue SET next_attempt_at = $2
                 WHERE state = 'queued' AND ($1 IS NULL OR id = $1)",
            )
            .bind(id)
            .bind(now())
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(changed)
    }

    /// Removes an entry without delivering it or telling the sender
    /// (`postcell queue delete`). Returns whether it existed.
    pub async fn delete_queue_entry(&self, id: i64) -> Result<bool> {
        let deleted = dispatch!(&self.pool, write, |p| {
            sqlx::query("DELETE FROM outbound_queue WHERE id = $1")
                .bind(id)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }
}
