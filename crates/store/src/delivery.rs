//! Delivery: a stored blob becomes a message in each recipient's INBOX and an entry in
//! the outbound queue for each remote recipient, all in one transaction.
//!
//! On SQLite, where one writer commits at a time and each commit costs an fsync,
//! deliveries that arrive together are committed together (see `group_commit`).
//! PostgreSQL commits concurrent transactions in parallel (and groups their WAL
//! flushes itself), so there each delivery is its own transaction.

use crate::pool::{WritePool, retry_conflicts};
use crate::{Change, Result, StagedBlob, Store, StoreError, now};

/// One message to deliver. Its body is durable already, or written by the delivery's
/// own transaction (rule 1; see [`Store::stage_blob`]).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub blob: StagedBlob,
    pub size: i64,
    /// When the message arrived (IMAP INTERNALDATE), Unix seconds.
    pub internal_date: i64,
    pub message_id: Option<String>,
    /// The IMAP summary (`postcell_mime::Summary::to_bytes`), cached with each copy.
    pub summary: Option<Vec<u8>>,
    /// The envelope sender; empty for the null sender `<>`.
    pub sender: String,
    /// Who told us about the message (for the delivery log), e.g. `smtp from 192.0.2.1`.
    pub remote: Option<String>,
    pub targets: Vec<DeliveryTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryTarget {
    /// Into the INBOX of a local account. `recipient` is the address the mail was
    /// sent to, for the delivery log.
    Local { account_id: i64, recipient: String },
    /// Into the outbound queue, for the relay to deliver.
    Remote { recipient: String },
    /// Into the outbound queue with an envelope sender of its own: a forward, whose
    /// sender is rewritten (SRS) so that the next hop's SPF check sees our domain.
    Forward { recipient: String, sender: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientOutcome {
    Delivered {
        mailbox_id: i64,
        uid: i64,
        modseq: i64,
    },
    Queued {
        queue_id: i64,
    },
}

/// What a delivery did. Either every target was served (committed) or, when a local
/// account had no room, nothing was committed at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Committed; one outcome per target, in the order given.
    Done(Vec<RecipientOutcome>),
    /// Nothing committed: these accounts lack room. `permanent` when the message is
    /// larger than an account's whole quota, so no amount of waiting will help.
    OverQuota { accounts: Vec<i64>, permanent: bool },
}

pub(crate) const MAX_EXPIRY: i64 = 5 * 24 * 3600;

/// Charges a delivery's size to an account if it has room; returns its id if so.
pub(crate) const CHARGE_ACCOUNT: &str = "UPDATE accounts SET used_bytes = used_bytes + $2
     WHERE id = $1 AND (quota_bytes = 0 OR used_bytes + $2 <= quota_bytes)
     RETURNING id";

pub(crate) const QUOTA_OF: &str = "SELECT quota_bytes FROM accounts WHERE id = $1";

/// Takes the next UID (and modseq) of an account's INBOX.
pub(crate) const NEXT_INBOX_UID: &str =
    "UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
     WHERE account_id = $1 AND name = 'INBOX'
     RETURNING id, uid_next - 1, highest_modseq";

pub(crate) const INSERT_MESSAGE: &str = "INSERT INTO messages
       (mailbox_id, uid, modseq, blob_id, size, internal_date, message_id, summary)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// The statements of one delivery, run inside the caller's transaction `$tx`. Evaluates
/// to `Result<(DeliveryOutcome, Vec<Change>)>`. On `OverQuota` the caller must roll back
/// what the delivery wrote: the whole transaction, or the delivery's savepoint.
macro_rules! deliver_in_transaction {
    ($tx:ident, $delivery:expr, $node:expr) => {
        async {
            let delivery: &Delivery = $delivery;
            let node: &str = $node;
            let at = now();
            // Lock accounts in id order so concurrent deliveries cannot deadlock.
            let mut order: Vec<usize> = (0..delivery.targets.len()).collect();
            order.sort_by_key(|&i| match &delivery.targets[i] {
                DeliveryTarget::Local { account_id, .. } => (0, *account_id),
                DeliveryTarget::Remote { .. } | DeliveryTarget::Forward { .. } => (1, i as i64),
            });
            let mut outcomes: Vec<Option<RecipientOutcome>> = vec![None; delivery.targets.len()];
            let mut changes = Vec::new();
            let mut over_quota = Vec::new();
            let mut permanent = false;
            if let Some(bytes) = &delivery.blob.inline {
                sqlx::query(crate::blob::INSERT_ROW)
                    .bind(delivery.blob.id().as_str())
                    .bind(&bytes[..])
                    .bind(at)
                    .execute(&mut *$tx)
                    .await?;
            }
            for &i in &order {
                match &delivery.targets[i] {
                    DeliveryTarget::Local { account_id, recipient } => {
                        let charged: Option<i64> = sqlx::query_scalar(crate::delivery::CHARGE_ACCOUNT)
                        .bind(account_id)
                        .bind(delivery.size)
                        .fetch_optional(&mut *$tx)
                        .await?;
                        if charged.is_none() {
                            let quota: Option<i64> =
                                sqlx::query_scalar(crate::delivery::QUOTA_OF)
                                    .bind(account_id)
                                    .fetch_optional(&mut *$tx)
                                    .await?;
                            let quota = quota
                                .ok_or_else(|| StoreError::NotFound(format!("account {account_id}")))?;
                            permanent |= delivery.size > quota;
                            over_quota.push(*account_id);
                            continue;
                        }
                        let (mailbox_id, uid, modseq): (i64, i64, i64) = sqlx::query_as(crate::delivery::NEXT_INBOX_UID)
                        .bind(account_id)
                        .fetch_optional(&mut *$tx)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(format!("INBOX of account {account_id}")))?;
                        sqlx::query(crate::delivery::INSERT_MESSAGE)
                        .bind(mailbox_id)
                        .bind(uid)
                        .bind(modseq)
                        .bind(delivery.blob.id().as_str())
                        .bind(delivery.size)
                        .bind(delivery.internal_date)
                        .bind(delivery.message_id.as_deref())
                        .bind(delivery.summary.as_deref())
                        .execute(&mut *$tx)
                        .await?;
                        insert_record!(&mut *$tx, &$crate::log::NewRecord {
                            at,
                            node,
                            direction: $crate::log::Direction::Inbound,
                            queue_id: None,
                            message_id: delivery.message_id.as_deref(),
                            sender: &delivery.sender,
                            recipient,
                            status: $crate::log::DeliveryStatus::Delivered,
                            remote: delivery.remote.as_deref(),
                            reply: None,
                        })?;
                        changes.push(Change::Mailbox { account_id: *account_id, mailbox_id, modseq });
                        outcomes[i] = Some(RecipientOutcome::Delivered { mailbox_id, uid, modseq });
                    }
                    DeliveryTarget::Remote { recipient }
                    | DeliveryTarget::Forward { recipient, .. } => {
                        let sender = match &delivery.targets[i] {
                            DeliveryTarget::Forward { sender, .. } => sender,
                            _ => &delivery.sender,
                        };
                        let queue_id: i64 = sqlx::query_scalar(
                            "INSERT INTO outbound_queue
                               (created_at, sender, recipient, blob_id, size, message_id, next_attempt_at, expires_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $1, $7) RETURNING id",
                        )
                        .bind(at)
                        .bind(sender)
                        .bind(recipient)
                        .bind(delivery.blob.id().as_str())
                        .bind(delivery.size)
                        .bind(delivery.message_id.as_deref())
                        .bind(at + $crate::delivery::MAX_EXPIRY)
                        .fetch_one(&mut *$tx)
                        .await?;
                        insert_record!(&mut *$tx, &$crate::log::NewRecord {
                            at,
                            node,
                            direction: $crate::log::Direction::Inbound,
                            queue_id: Some(queue_id),
                            message_id: delivery.message_id.as_deref(),
                            sender,
                            recipient,
                            status: $crate::log::DeliveryStatus::Queued,
                            remote: delivery.remote.as_deref(),
                            reply: None,
                        })?;
                        outcomes[i] = Some(RecipientOutcome::Queued { queue_id });
                    }
                }
            }
            if !over_quota.is_empty() {
                return Ok((DeliveryOutcome::OverQuota { accounts: over_quota, permanent }, Vec::new()));
            }
            // One index row for the blob, however many mailboxes it went to, written
            // later by the indexer (see `crate::indexing`).
            if !changes.is_empty() {
                queue_for_index!($tx, delivery.blob.id(), at)?;
            }
            let outcomes = outcomes.into_iter().flatten().collect();
            Ok::<_, StoreError>((DeliveryOutcome::Done(outcomes), changes))
        }
    };
}

pub(crate) type Committed = Result<(DeliveryOutcome, Vec<Change>)>;

impl Store {
    /// Delivers one message to all its targets in one transaction and returns only
    /// once that transaction is committed: the caller may acknowledge on `Done`.
    pub async fn deliver(&self, delivery: &Delivery) -> Result<DeliveryOutcome> {
        if delivery.targets.is_empty() {
            return Err(StoreError::Invalid(
                "a delivery needs at least one target".into(),
            ));
        }
        let (outcome, changes) = match &self.group_commit {
            Some(group) => group.submit(delivery).await?,
            None => retry_conflicts(|| self.deliver_once(delivery)).await?,
        };
        self.feed.publish(&changes);
        if let DeliveryOutcome::Done(_) = &outcome {
            self.activity.record();
            metrics::counter!("postcell_store_messages_stored_total")
                .increment(changes.len() as u64);
        }
        Ok(outcome)
    }

    async fn deliver_once(&self, delivery: &Delivery) -> Committed {
        dispatch!(&self.pool, write, |p| {
            let mut tx = p.begin_write().await?;
            let (outcome, changes) = deliver_in_transaction!(tx, delivery, &self.node_id).await?;
            if matches!(outcome, DeliveryOutcome::OverQuota { .. }) {
                tx.rollback().await?;
            } else {
                p.notify_changes(&mut tx, &changes).await?;
                tx.commit().await?;
            }
            Ok((outcome, changes))
        })
    }
}
