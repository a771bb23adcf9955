//! Delivery: a stored blob becomes a message in each recipient's INBOX and an entry in
//! the outbound queue for each remote recipient, all in one transaction.
//!
//! On SQLite, where one writer commits at a time and each commit costs an fsync,
//! deliveries that arrive together are committed together (group commit): one task
//! takes every waiting delivery, runs each inside its own savepoint of one transaction,
//! commits once, and only then answers each caller. Every caller still learns of its
//! delivery only after the commit that made it durable. PostgreSQL commits concurrent
//! transactions in parallel (and groups their WAL flushes itself), so there each
//! delivery is its own transaction.

use std::sync::Arc;

use sqlx::sqlite::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use crate::log::{DeliveryStatus, Direction, NewRecord};
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

const MAX_EXPIRY: i64 = 5 * 24 * 3600;

/// The most deliveries one group commit takes.
const MAX_BATCH: usize = 256;

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
                        let charged: Option<i64> = sqlx::query_scalar(
                            "UPDATE accounts SET used_bytes = used_bytes + $2
                             WHERE id = $1 AND (quota_bytes = 0 OR used_bytes + $2 <= quota_bytes)
                             RETURNING id",
                        )
                        .bind(account_id)
                        .bind(delivery.size)
                        .fetch_optional(&mut *$tx)
                        .await?;
                        if charged.is_none() {
                            let quota: Option<i64> =
                                sqlx::query_scalar("SELECT quota_bytes FROM accounts WHERE id = $1")
                                    .bind(account_id)
                                    .fetch_optional(&mut *$tx)
                                    .await?;
                            let quota = quota
                                .ok_or_else(|| StoreError::NotFound(format!("account {account_id}")))?;
                            permanent |= delivery.size > quota;
                            over_quota.push(*account_id);
                            continue;
                        }
                        let (mailbox_id, uid, modseq): (i64, i64, i64) = sqlx::query_as(
                            "UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
                             WHERE account_id = $1 AND name = 'INBOX'
                             RETURNING id, uid_next - 1, highest_modseq",
                        )
                        .bind(account_id)
                        .fetch_optional(&mut *$tx)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(format!("INBOX of account {account_id}")))?;
                        sqlx::query(
                            "INSERT INTO messages (mailbox_id, uid, modseq, blob_id, size, internal_date, message_id, summary)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        )
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
                        insert_record!(&mut *$tx, &NewRecord {
                            at,
                            node,
                            direction: Direction::Inbound,
                            queue_id: None,
                            message_id: delivery.message_id.as_deref(),
                            sender: &delivery.sender,
                            recipient,
                            status: DeliveryStatus::Delivered,
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
                        .bind(at + MAX_EXPIRY)
                        .fetch_one(&mut *$tx)
                        .await?;
                        insert_record!(&mut *$tx, &NewRecord {
                            at,
                            node,
                            direction: Direction::Inbound,
                            queue_id: Some(queue_id),
                            message_id: delivery.message_id.as_deref(),
                            sender,
                            recipient,
                            status: DeliveryStatus::Queued,
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

type Committed = Result<(DeliveryOutcome, Vec<Change>)>;

struct Job {
    delivery: Delivery,
    done: oneshot::Sender<Committed>,
}

/// The SQLite group committer: one task on a thread of its own, fed through a channel.
/// Its own thread, because the task waits on the connection's thread once per delivery
/// of a batch: on the shared runtime each of those wake-ups queued behind the sessions'
/// tasks, and that wait, not SQLite, set the pace of the whole batch.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    stop: Arc<tokio::sync::Notify>,
}

impl GroupCommit {
    pub(crate) fn start(writer: SqlitePool, node: Arc<str>) -> Result<GroupCommit> {
        let (jobs, receiver) = mpsc::channel(4 * MAX_BATCH);
        let stop = Arc::new(tokio::sync::Notify::new());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stopped = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        () = run_group_commit(writer, node, receiver) => {}
                        () = stopped.notified() => {}
                    }
                })
            })?;
        Ok(GroupCommit { jobs, stop })
    }

    async fn submit(&self, delivery: &Delivery) -> Committed {
        let (done, result) = oneshot::channel();
        let job = Job {
            delivery: delivery.clone(),
            done,
        };
        let stopped = || StoreError::CommitFailed("the store is closed".into());
        self.jobs.send(job).await.map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }

    pub(crate) fn stop(&self) {
        // A permit is kept if the task is not waiting at this moment.
        self.stop.notify_one();
    }
}

async fn run_group_commit(writer: SqlitePool, node: Arc<str>, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("postcell_store_group_commit_size").record(batch.len() as f64);
        let started = std::time::Instant::now();
        let committed = commit_batch(&writer, &node, &batch).await;
        metrics::histogram!("postcell_store_group_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        match committed {
            Ok(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    let _ = job.done.send(result);
                }
            }
            Err(e) => {
                // Nothing in the batch was committed: every caller gets a temporary error.
                tracing::error!(error = %e, deliveries = batch.len(), "group commit failed");
                let reason = e.to_string();
                for job in batch {
                    let _ = job.done.send(Err(StoreError::CommitFailed(reason.clone())));
                }
            }
        }
    }
}

/// One transaction for the whole batch, each delivery in its own savepoint so that one
/// refused delivery leaves the others alone. The savepoints are not released: the
/// commit takes them all, and a refused delivery rolls back to its own, the newest of
/// that name.
async fn commit_batch(writer: &SqlitePool, node: &str, batch: &[Job]) -> Result<Vec<Committed>> {
    let mut tx = writer.begin_write().await?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let result = match &job.delivery.targets[..] {
            [
                DeliveryTarget::Local {
                    account_id,
                    recipient,
                },
            ] => deliver_to_one_inbox(&mut tx, &job.delivery, *account_id, recipient, node).await?,
            _ => {
                sqlx::query("SAVEPOINT delivery").execute(&mut *tx).await?;
                deliver_in_transaction!(tx, &job.delivery, node).await
            }
        };
        if !matches!(result, Ok((DeliveryOutcome::Done(_), _))) {
            sqlx::query("ROLLBACK TO SAVEPOINT delivery")
                .execute(&mut *tx)
                .await?;
        }
        results.push(result);
    }
    tx.commit().await?;
    Ok(results)
}

/// The statements of [`deliver_in_transaction!`] for the commonest delivery, one local
/// recipient, sent to SQLite as one multi-statement query: each statement sent on its
/// own costs a hand-off to the connection's thread and back, and the group commit
/// runs its batch one statement after another, so those hand-offs set its pace.
/// Parameters are numbered across the statements (`$n` is the n-th bound value); `$body`
/// is a statement to run first inside the savepoint, or nothing.
macro_rules! one_inbox_sql {
    ($body:literal) => {
        concat!(
            "SAVEPOINT delivery;",
            $body,
            "UPDATE accounts SET used_bytes = used_bytes + $2
              WHERE id = $1 AND (quota_bytes = 0 OR used_bytes + $2 <= quota_bytes)
              RETURNING id;
             UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
              WHERE account_id = $1 AND name = 'INBOX'
              RETURNING id, uid_next - 1, highest_modseq;
             INSERT INTO messages (mailbox_id, uid, modseq, blob_id, size, internal_date, message_id, summary)
              SELECT id, uid_next - 1, highest_modseq, $3, $2, $4, $5, $6
                FROM mailboxes WHERE account_id = $1 AND name = 'INBOX';
             INSERT INTO delivery_log
               (at, node, direction, queue_id, message_id, sender, recipient, status, remote, reply)
              VALUES ($7, $8, $12, NULL, $5, $9, $10, $13, $11, NULL);
             INSERT INTO search_pending (blob_id, queued_at) VALUES ($3, $7)
              ON CONFLICT (blob_id) DO NOTHING;"
        )
    };
}

const ONE_INBOX: &str = one_inbox_sql!("");

/// [`ONE_INBOX`] writing the body's row too (see `blob::INLINE_MAX`).
const ONE_INBOX_WITH_BODY: &str = one_inbox_sql!(
    "INSERT INTO blobs (id, data, created_at) VALUES ($3, $14, $7)
      ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at;"
);

/// One local recipient in one round trip, inside its own savepoint (see
/// [`commit_batch`]). A statement that fails fails the whole batch (the outer
/// `Result`): the savepoint may not have been opened, and rolling back to the one
/// before would undo another delivery.
async fn deliver_to_one_inbox(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    delivery: &Delivery,
    account_id: i64,
    recipient: &str,
    node: &str,
) -> Result<Committed> {
    use sqlx::Row;
    let sql = match &delivery.blob.inline {
        Some(_) => ONE_INBOX_WITH_BODY,
        None => ONE_INBOX,
    };
    let at = now();
    let mut query = sqlx::query(sql)
        .bind(account_id)
        .bind(delivery.size)
        .bind(delivery.blob.id().as_str())
        .bind(delivery.internal_date)
        .bind(delivery.message_id.as_deref())
        .bind(delivery.summary.as_deref())
        .bind(at)
        .bind(node)
        .bind(&delivery.sender)
        .bind(recipient)
        .bind(delivery.remote.as_deref())
        .bind(Direction::Inbound.as_str())
        .bind(DeliveryStatus::Delivered.as_str());
    if let Some(bytes) = &delivery.blob.inline {
        query = query.bind(&bytes[..]);
    }
    let rows = query.fetch_all(&mut **tx).await?;
    // The account's row comes back (one column) only if the quota had room; the
    // mailbox's (three columns) if the account has an INBOX.
    let charged = rows.iter().any(|row| row.len() == 1);
    let inbox = rows.iter().find(|row| row.len() == 3);
    let Some(inbox) = inbox else {
        return Ok(Err(StoreError::NotFound(format!(
            "INBOX of account {account_id}"
        ))));
    };
    if !charged {
        let quota: Option<i64> =
            sqlx::query_scalar("SELECT quota_bytes FROM accounts WHERE id = $1")
                .bind(account_id)
                .fetch_optional(&mut **tx)
                .await?;
        let Some(quota) = quota else {
            return Ok(Err(StoreError::NotFound(format!("account {account_id}"))));
        };
        let outcome = DeliveryOutcome::OverQuota {
            accounts: vec![account_id],
            permanent: delivery.size > quota,
        };
        return Ok(Ok((outcome, Vec::new())));
    }
    let (mailbox_id, uid, modseq): (i64, i64, i64) =
        (inbox.try_get(0)?, inbox.try_get(1)?, inbox.try_get(2)?);
    let outcome = DeliveryOutcome::Done(vec![RecipientOutcome::Delivered {
        mailbox_id,
        uid,
        modseq,
    }]);
    let change = Change::Mailbox {
        account_id,
        mailbox_id,
        modseq,
    };
    Ok(Ok((outcome, vec![change])))
}

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
