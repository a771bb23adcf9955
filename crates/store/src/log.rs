//! The delivery log: one record per delivery, refusal and attempt, inbound and outbound,
//! so an operator (and later the user page) can answer "what happened to my mail?".

use crate::{Result, Store, now};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Stored in a local mailbox, or accepted by the remote host.
    Delivered,
    /// Put in the outbound queue.
    Queued,
    /// A temporary failure; it will be tried again.
    Deferred,
    /// A permanent failure after acceptance; the sender gets a bounce.
    Bounced,
    /// Refused during the SMTP dialogue; the sending client was told.
    Rejected,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Deferred => "deferred",
            DeliveryStatus::Bounced => "bounced",
            DeliveryStatus::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        Some(match text {
            "delivered" => DeliveryStatus::Delivered,
            "queued" => DeliveryStatus::Queued,
            "deferred" => DeliveryStatus::Deferred,
            "bounced" => DeliveryStatus::Bounced,
            "rejected" => DeliveryStatus::Rejected,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRecord {
    pub id: i64,
    pub at: i64,
    pub node: String,
    pub direction: String,
    pub queue_id: Option<i64>,
    pub message_id: Option<String>,
    pub sender: String,
    pub recipient: String,
    pub status: String,
    pub remote: Option<String>,
    pub reply: Option<String>,
}

/// Filters for [`Store::search_log`]; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Matches the sender or the recipient.
    pub address: Option<String>,
    pub since: Option<i64>,
    pub status: Option<DeliveryStatus>,
    pub limit: i64,
}

/// One record to insert, borrowed from the caller.
pub(crate) struct NewRecord<'a> {
    pub at: i64,
    pub node: &'a str,
    pub direction: Direction,
    pub queue_id: Option<i64>,
    pub message_id: Option<&'a str>,
    pub sender: &'a str,
    pub recipient: &'a str,
    pub status: DeliveryStatus,
    pub remote: Option<&'a str>,
    pub reply: Option<&'a str>,
}

/// Adds a record to the delivery log (see [`insert_record!`]).
pub(crate) const INSERT_RECORD: &str = "INSERT INTO delivery_log
       (at, node, direction, queue_id, message_id, sender, recipient, status, remote, reply)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Inserts a [`NewRecord`] with whatever executor the caller holds (a transaction, so
/// the record commits together with what it describes).
macro_rules! insert_record {
    ($executor:expr, $record:expr) => {{
        let record: &$crate::log::NewRecord<'_> = $record;
        sqlx::query($crate::log::INSERT_RECORD)
            .bind(record.at)
            .bind(record.node)
            .bind(record.direction.as_str())
            .bind(record.queue_id)
            .bind(record.message_id)
            .bind(record.sender)
            .bind(record.recipient)
            .bind(record.status.as_str())
            .bind(record.remote)
            .bind(record.reply)
            .execute($executor)
            .await
    }};
}

/// A record to add on its own (a refusal, a relay attempt).
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub direction: Direction,
    pub queue_id: Option<i64>,
    pub message_id: Option<String>,
    pub sender: String,
    pub recipient: String,
    pub status: DeliveryStatus,
    pub remote: Option<String>,
    pub reply: Option<String>,
}

impl Store {
    pub async fn record_delivery(&self, entry: &LogEntry) -> Result<()> {
        let record = NewRecord {
            at: now(),
            node: &self.node_id,
            direction: entry.direction,
            queue_id: entry.queue_id,
            message_id: entry.message_id.as_deref(),
            sender: &entry.sender,
            recipient: &entry.recipient,
            status: entry.status,
            remote: entry.remote.as_deref(),
            reply: entry.reply.as_deref(),
        };
        dispatch!(&self.pool, write, |p| {
            insert_record!(p, &record)?;
        });
        Ok(())
    }

    /// Every record about one queue entry, oldest first: its queuing and each attempt.
    pub async fn queue_log(&self, queue_id: i64) -> Result<Vec<DeliveryRecord>> {
        let records = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, DeliveryRecord>(
                "SELECT id, at, node, direction, queue_id, message_id, sender, recipient, status, remote, reply
                 FROM delivery_log WHERE queue_id = $1 ORDER BY id",
            )
            .bind(queue_id)
            .fetch_all(p)
            .await?
        });
        Ok(records)
    }

    /// Newest first.
    pub async fn search_log(&self, query: &LogQuery) -> Result<Vec<DeliveryRecord>> {
        let limit = if query.limit <= 0 { 100 } else { query.limit };
        let records = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, DeliveryRecord>(
                "SELECT id, at, node, direction, queue_id, message_id, sender, recipient, status, remote, reply
                 FROM delivery_log
                 WHERE ($1 IS NULL OR sender = $1 OR recipient = $1)
                   AND at >= $2
                   AND ($3 IS NULL OR status = $3)
                 ORDER BY id DESC LIMIT $4",
            )
            .bind(query.address.as_deref())
            .bind(query.since.unwrap_or(0))
            .bind(query.status.map(|s| s.as_str()))
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        Ok(records)
    }
}
