//! The SQLite group commit: deliveries that arrive together commit together.
//!
//! One task, on a thread of its own, takes every waiting delivery, runs each inside
//! its own savepoint of one transaction, commits once (one fsync), and only then
//! answers each caller: every caller still learns of its delivery only after the
//! commit that made it durable.
//!
//! The commonest delivery, one local recipient, is written through the writer
//! connection's own SQLite handle (locked out of sqlx's worker thread for the
//! batch), with rusqlite, on this thread. Through sqlx each statement is a hand-off
//! to the connection's thread and back: eight thread switches per delivery, measured
//! as the larger part of the node's context switches under SMTP load, in the one
//! task every delivery waits for. Other deliveries (several targets, a remote one)
//! go through sqlx in a second transaction of the same batch.
//!
//! Other writes that must be durable before their answer and are small (a flag
//! change) can join the batch too ([`GroupCommit::write`]): each runs in a savepoint
//! of the first transaction, and shares its commit.

use std::sync::Arc;

use rusqlite::{OptionalExtension, named_params};
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::delivery::{
    CHARGE_ACCOUNT, Committed, Delivery, DeliveryOutcome, DeliveryTarget, INSERT_MESSAGE,
    NEXT_INBOX_UID, QUOTA_OF, RecipientOutcome,
};
use crate::log::{DeliveryStatus, Direction, INSERT_RECORD};
use crate::{Change, Result, StoreError, now};

/// The most deliveries one group commit takes.
const MAX_BATCH: usize = 256;

struct Job {
    delivery: Delivery,
    done: oneshot::Sender<Committed>,
}

/// A write other than a delivery, run on the batch's SQLite handle in a savepoint of
/// its own. It says whether its changes are kept, and how to answer its caller once
/// the batch's commit is known.
type Write = Box<dyn FnOnce(&rusqlite::Connection) -> Written + Send>;

struct Written {
    keep: bool,
    answer: Box<dyn FnOnce(Result<()>) + Send>,
}

enum Work {
    Deliver(Job),
    Write(Write),
}

/// The group committer's handle: a channel to its task.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<Work>,
    stop: Arc<tokio::sync::Notify>,
}

impl GroupCommit {
    /// Its own thread, because the task waits on the database once per batch and
    /// each of those wake-ups, on the shared runtime, queued behind the sessions'
    /// tasks: that wait, not SQLite, set the pace of the whole batch.
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
                        () = run(writer, node, receiver) => {}
                        () = stopped.notified() => {}
                    }
                })
            })?;
        Ok(GroupCommit { jobs, stop })
    }

    pub(crate) async fn submit(&self, delivery: &Delivery) -> Committed {
        let (done, result) = oneshot::channel();
        let job = Job {
            delivery: delivery.clone(),
            done,
        };
        let stopped = || StoreError::CommitFailed("the store is closed".into());
        self.jobs
            .send(Work::Deliver(job))
            .await
            .map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }

    /// Runs `write` in the next batch and returns its value once the batch has
    /// committed. `write` returns its value and whether its changes are to be kept
    /// (a write that found nothing to change gives back what it took, such as a
    /// MODSEQ); an error rolls its changes back and is its caller's answer.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&rusqlite::Connection) -> Result<(T, bool)> + Send + 'static,
    ) -> Result<T> {
        let (done, result) = oneshot::channel();
        let work = Work::Write(Box::new(move |db| {
            let (keep, written) = match write(db) {
                Ok((value, keep)) => (keep, Ok(value)),
                Err(e) => (false, Err(e)),
            };
            Written {
                keep,
                answer: Box::new(move |committed: Result<()>| {
                    let _ = done.send(committed.and(written));
                }),
            }
        }));
        self.jobs
            .send(work)
            .await
            .map_err(|_| StoreError::CommitFailed("the store is closed".into()))?;
        // Dropped unanswered: its transaction failed before it ran.
        result
            .await
            .map_err(|_| StoreError::CommitFailed("not committed".into()))?
    }

    pub(crate) fn stop(&self) {
        // A permit is kept if the task is not waiting at this moment.
        self.stop.notify_one();
    }
}

async fn run(writer: SqlitePool, node: Arc<str>, mut work: mpsc::Receiver<Work>) {
    while let Some(first) = work.recv().await {
        let mut taken = vec![first];
        while taken.len() < MAX_BATCH {
            match work.try_recv() {
                Ok(more) => taken.push(more),
                Err(_) => break,
            }
        }
        metrics::histogram!("postcell_store_group_commit_size").record(taken.len() as f64);
        let mut batch = Vec::with_capacity(taken.len());
        let mut writes = Vec::new();
        for one in taken {
            match one {
                Work::Deliver(job) => batch.push(job),
                Work::Write(write) => writes.push(write),
            }
        }
        let started = std::time::Instant::now();
        let results = commit_batch(&writer, &node, &batch, writes).await;
        metrics::histogram!("postcell_store_group_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        for (job, result) in batch.into_iter().zip(results) {
            let _ = job.done.send(result);
        }
    }
}

/// A delivery to one local recipient: the one the fast path takes.
struct OneInbox<'a> {
    delivery: &'a Delivery,
    account_id: i64,
    recipient: &'a str,
}

impl<'a> OneInbox<'a> {
    fn of(delivery: &'a Delivery) -> Option<OneInbox<'a>> {
        match &delivery.targets[..] {
            [
                DeliveryTarget::Local {
                    account_id,
                    recipient,
                },
            ] => Some(OneInbox {
                delivery,
                account_id: *account_id,
                recipient,
            }),
            _ => None,
        }
    }
}

/// Commits the batch: the one-inbox deliveries and the other writes in one
/// transaction, the other deliveries in a second. Returns one result per job, in
/// order; the writes answer their callers themselves. When a transaction fails,
/// nothing in it was committed and each of its callers gets a temporary error.
async fn commit_batch(
    writer: &SqlitePool,
    node: &str,
    batch: &[Job],
    writes: Vec<Write>,
) -> Vec<Committed> {
    let mut results: Vec<Option<Committed>> = batch.iter().map(|_| None).collect();
    let (fast_at, other_at): (Vec<usize>, Vec<usize>) =
        (0..batch.len()).partition(|&i| OneInbox::of(&batch[i].delivery).is_some());
    match writer.acquire().await {
        Err(e) => {
            // The writes, dropped unanswered, fail too.
            place(
                &mut results,
                &(0..batch.len()).collect::<Vec<_>>(),
                Err(e.into()),
            )
        }
        Ok(mut conn) => {
            if !fast_at.is_empty() || !writes.is_empty() {
                let fast: Vec<OneInbox<'_>> = fast_at
                    .iter()
                    .filter_map(|&i| OneInbox::of(&batch[i].delivery))
                    .collect();
                let committed = commit_on_handle(&mut conn, node, &fast, writes).await;
                place(&mut results, &fast_at, committed);
            }
            if !other_at.is_empty() {
                let other: Vec<&Delivery> = other_at.iter().map(|&i| &batch[i].delivery).collect();
                let committed = commit_deliveries(&mut conn, node, &other).await;
                place(&mut results, &other_at, committed);
            }
        }
    }
    // Every job has its place filled above; the fallback only keeps results and jobs
    // in step should that ever change.
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(StoreError::CommitFailed("not committed".into()))))
        .collect()
}

/// Puts a transaction's outcomes (or its failure, for each) at their jobs' places.
fn place(results: &mut [Option<Committed>], at: &[usize], committed: Result<Vec<Committed>>) {
    match committed {
        Ok(outcomes) => {
            for (&i, outcome) in at.iter().zip(outcomes) {
                results[i] = Some(outcome);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, deliveries = at.len(), "group commit failed");
            for &i in at {
                results[i] = Some(Err(commit_failed(&e)));
            }
        }
    }
}

/// What each caller of a failed transaction gets: a temporary error.
fn commit_failed(e: &StoreError) -> StoreError {
    match e {
        StoreError::CommitFailed(reason) => StoreError::CommitFailed(reason.clone()),
        other => StoreError::CommitFailed(other.to_string()),
    }
}

/// Deliveries of any kind through sqlx, each in its own savepoint of one
/// transaction. The savepoints are not released: the commit takes them all, and a
/// refused delivery rolls back to its own, the newest of that name.
async fn commit_deliveries(
    conn: &mut SqliteConnection,
    node: &str,
    deliveries: &[&Delivery],
) -> Result<Vec<Committed>> {
    let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
    let mut results = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        sqlx::query("SAVEPOINT delivery").execute(&mut *tx).await?;
        let result = deliver_in_transaction!(tx, delivery, node).await;
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

/// One-inbox deliveries and other writes through the connection's SQLite handle, on
/// this thread.
async fn commit_on_handle(
    conn: &mut SqliteConnection,
    node: &str,
    deliveries: &[OneInbox<'_>],
    writes: Vec<Write>,
) -> Result<Vec<Committed>> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is locked out of sqlx's worker thread until `handle` drops,
    // and `db` (which does not close the handle) drops first, with every statement
    // it prepared. Nothing in between awaits, so the batch cannot be cancelled with a
    // transaction open, and `commit_or_roll_back` leaves none open.
    let db = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) }
        .map_err(sqlite_error)?;
    let mut answers = Vec::with_capacity(writes.len());
    let committed = commit_or_roll_back(&db, node, deliveries, writes, &mut answers);
    drop(db);
    drop(handle);
    for answer in answers {
        answer(match &committed {
            Ok(_) => Ok(()),
            Err(e) => Err(commit_failed(e)),
        });
    }
    committed
}

/// Runs the transaction; each write that ran leaves its answer in `answers`.
fn commit_or_roll_back(
    db: &rusqlite::Connection,
    node: &str,
    deliveries: &[OneInbox<'_>],
    writes: Vec<Write>,
    answers: &mut Vec<Box<dyn FnOnce(Result<()>) + Send>>,
) -> Result<Vec<Committed>> {
    let run = || -> rusqlite::Result<Vec<Committed>> {
        db.execute_batch("BEGIN IMMEDIATE")?;
        let mut results = Vec::with_capacity(deliveries.len());
        for one in deliveries {
            db.execute_batch("SAVEPOINT delivery")?;
            let result = deliver_to_one_inbox(db, one, node)?;
            if !matches!(result, Ok((DeliveryOutcome::Done(_), _))) {
                db.execute_batch("ROLLBACK TO SAVEPOINT delivery")?;
            }
            results.push(result);
        }
        let mut kept = results
            .iter()
            .any(|result| matches!(result, Ok((DeliveryOutcome::Done(_), _))));
        for write in writes {
            db.execute_batch("SAVEPOINT write")?;
            let written = write(db);
            answers.push(written.answer);
            if written.keep {
                kept = true;
            } else {
                db.execute_batch("ROLLBACK TO SAVEPOINT write")?;
            }
        }
        // A transaction whose every part was rolled back to its savepoint would still
        // write the pages it touched, and wait for an fsync, to change nothing.
        db.execute_batch(if kept { "COMMIT" } else { "ROLLBACK" })?;
        Ok(results)
    };
    let committed = run();
    if !db.is_autocommit()
        && let Err(e) = db.execute_batch("ROLLBACK")
    {
        tracing::error!(error = %e, "cannot roll back a failed group commit");
    }
    committed.map_err(sqlite_error)
}

/// The statements of `deliver_in_transaction!` for one local recipient, inside the
/// open savepoint. An SQLite error fails the whole batch (the outer `Result`).
fn deliver_to_one_inbox(
    db: &rusqlite::Connection,
    one: &OneInbox<'_>,
    node: &str,
) -> rusqlite::Result<Committed> {
    let OneInbox {
        delivery,
        account_id,
        recipient,
    } = *one;
    let at = now();
    let blob_id = delivery.blob.id().as_str();
    if let Some(bytes) = &delivery.blob.inline {
        db.prepare_cached(crate::blob::INSERT_ROW)?
            .execute(named_params! {
                "$1": blob_id, "$2": &bytes[..], "$3": at,
            })?;
    }
    let charged: Option<i64> = db
        .prepare_cached(CHARGE_ACCOUNT)?
        .query_row(
            named_params! { "$1": account_id, "$2": delivery.size },
            |row| row.get(0),
        )
        .optional()?;
    if charged.is_none() {
        let quota: Option<i64> = db
            .prepare_cached(QUOTA_OF)?
            .query_row(named_params! { "$1": account_id }, |row| row.get(0))
            .optional()?;
        let Some(quota) = quota else {
            return Ok(Err(StoreError::NotFound(format!("account {account_id}"))));
        };
        let outcome = DeliveryOutcome::OverQuota {
            accounts: vec![account_id],
            permanent: delivery.size > quota,
        };
        return Ok(Ok((outcome, Vec::new())));
    }
    let inbox: Option<(i64, i64, i64)> = db
        .prepare_cached(NEXT_INBOX_UID)?
        .query_row(named_params! { "$1": account_id }, |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    let Some((mailbox_id, uid, modseq)) = inbox else {
        return Ok(Err(StoreError::NotFound(format!(
            "INBOX of account {account_id}"
        ))));
    };
    db.prepare_cached(INSERT_MESSAGE)?.execute(named_params! {
        "$1": mailbox_id,
        "$2": uid,
        "$3": modseq,
        "$4": blob_id,
        "$5": delivery.size,
        "$6": delivery.internal_date,
        "$7": delivery.message_id.as_deref(),
        "$8": delivery.summary.as_deref(),
    })?;
    db.prepare_cached(INSERT_RECORD)?.execute(named_params! {
        "$1": at,
        "$2": node,
        "$3": Direction::Inbound.as_str(),
        "$4": None::<i64>,
        "$5": delivery.message_id.as_deref(),
        "$6": &delivery.sender,
        "$7": recipient,
        "$8": DeliveryStatus::Delivered.as_str(),
        "$9": delivery.remote.as_deref(),
        "$10": None::<&str>,
    })?;
    db.prepare_cached(crate::indexing::QUEUE_FOR_INDEX)?
        .execute(named_params! { "$1": blob_id, "$2": at })?;
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

fn sqlite_error(e: rusqlite::Error) -> StoreError {
    StoreError::CommitFailed(format!("database: {e}"))
}
