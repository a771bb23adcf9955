//! Writing the search index after delivery, not during it.
//!
//! Tokenizing a message into trigrams and merging index segments costs several times
//! what the rest of a delivery does. So a delivery or an APPEND only queues its blob
//! (`search_pending`, in its own transaction), and the index rows are written later by
//! whichever comes first (on SQLite, into a file of their own with its own writer, so
//! that the database's one writer never waits for them: see `pool::Pool`):
//!
//! * the background indexer ([`Store::run_indexer`]), which every node runs: it claims
//!   a batch of queued blobs for a while (so the nodes of a cell do not index the same
//!   blobs), extracts their text, and writes their rows and removes them from the queue
//!   in short transactions. It gives way to mail and to clients: while messages are
//!   arriving or sessions are at work it takes small batches and rests between them
//!   ([`IndexerSettings`]), and catches up when all is quiet;
//! * a search ([`Store::index_mailbox`]): before it queries, it indexes whatever of its
//!   mailbox is still queued, claimed or not, so a search never misses a message.
//!
//! A claim is a lease on a queue entry: a node that dies while indexing leaves entries
//! that another node takes once [`CLAIM_SECONDS`] have passed. Writing a row twice is
//! harmless (the second write of the same [`INDEX_VERSION`] changes nothing).
//!
//! Rows of an older extraction are queued again when a store opens
//! (`queue_outdated_index_rows`), before anything else uses it; so is every message
//! when the SQLite index file is new (`prepare_index_file`).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::named_params;

use crate::direct_read::all_rows;
use crate::pool::{Pool, WritePool, retry_conflicts};
use crate::search::{INDEX_VERSION, SearchDocument};
use crate::{BlobId, Result, Store, StoreError, now};

/// How long a claimed batch stays with the node that claimed it.
pub const CLAIM_SECONDS: i64 = 120;

/// Blobs indexed per transaction before a search.
const SEARCH_BATCH: usize = 64;

/// A queue this short is read whole before a search, instead of the mailbox being
/// looked up in it (see `Store::index_mailbox`).
const SHORT_QUEUE: usize = 256;

/// The first `$2` blobs of the queue, each with whether a message of mailbox `$1` has it.
const QUEUE_HEAD_IN_MAILBOX: &str = "SELECT q.blob_id, EXISTS (SELECT 1 FROM messages m
                              WHERE m.blob_id = q.blob_id AND m.mailbox_id = $1)
       FROM (SELECT blob_id FROM search_pending LIMIT $2) q";

/// Queues a blob for the indexer (see [`queue_for_index!`]).
pub(crate) const QUEUE_FOR_INDEX: &str = "INSERT INTO search_pending (blob_id, queued_at)
     VALUES ($1, $2) ON CONFLICT (blob_id) DO NOTHING";

/// Queues the blob of a message just stored for the indexer, in the caller's
/// transaction `$tx`. Even when another message shares the blob and its text is
/// indexed: the writer does not look into the index file (see `pool::Pool`), and
/// writing a row again at the same version changes nothing.
macro_rules! queue_for_index {
    ($tx:ident, $blob_id:expr, $at:expr) => {{
        let blob_id: &$crate::BlobId = $blob_id;
        sqlx::query($crate::indexing::QUEUE_FOR_INDEX)
            .bind(blob_id.as_str())
            .bind($at)
            .execute(&mut *$tx)
            .await
    }};
}

/// Writes (or, when an older extraction wrote it, replaces) the index row of a blob,
/// in the caller's transaction `$tx`, if a message still refers to the blob.
macro_rules! insert_search_text {
    ($tx:ident, $blob_id:expr, $document:expr) => {{
        let blob_id: &$crate::BlobId = $blob_id;
        let document: &$crate::SearchDocument = $document;
        sqlx::query(
            "INSERT INTO search_text (blob_id, version, from_text, to_text, cc_text, bcc_text,
               subject_text, headers, body, refs, sent_at, sent_day)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12
             WHERE EXISTS (SELECT 1 FROM messages WHERE blob_id = $1)
             ON CONFLICT (blob_id) DO UPDATE SET version = excluded.version,
               from_text = excluded.from_text, to_text = excluded.to_text,
               cc_text = excluded.cc_text, bcc_text = excluded.bcc_text,
               subject_text = excluded.subject_text, headers = excluded.headers,
               body = excluded.body, refs = excluded.refs, sent_at = excluded.sent_at,
               sent_day = excluded.sent_day
             WHERE search_text.version < excluded.version",
        )
        .bind(blob_id.as_str())
        .bind(INDEX_VERSION)
        .bind(&document.from)
        .bind(&document.to)
        .bind(&document.cc)
        .bind(&document.bcc)
        .bind(&document.subject)
        .bind(&document.headers)
        .bind(&document.body)
        .bind(&document.references)
        .bind(document.sent_at)
        .bind(document.sent_day)
        .execute(&mut *$tx)
        .await
    }};
}

/// How the background indexer paces itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexerSettings {
    /// Blobs claimed at a time when neither mail nor clients are at work (written
    /// `WRITE_CHUNK` to a transaction).
    pub batch: usize,
    /// Blobs claimed at a time while they are: small, so that the indexer's CPU and
    /// transactions come in short bursts.
    pub busy_batch: usize,
    /// The share of time (above 0, at most 1) the indexer may work while mail
    /// arrives or clients are at work; it sleeps the rest. When all is quiet, it
    /// works without pause.
    pub busy_share: f64,
    /// How often an idle indexer looks at the queue.
    pub poll: Duration,
}

impl Default for IndexerSettings {
    fn default() -> Self {
        IndexerSettings {
            batch: 200,
            busy_batch: 20,
            busy_share: 0.25,
            poll: Duration::from_millis(500),
        }
    }
}

impl IndexerSettings {
    /// How long to rest after a batch that took `worked` at a busy moment.
    fn rest_after(&self, worked: Duration) -> Duration {
        let share = self.busy_share.clamp(0.01, 1.0);
        worked.mul_f64((1.0 - share) / share)
    }
}

/// Work done for arriving mail and for client sessions (a delivery, a SELECT, a flag
/// change, a POP3 maildrop...), counted so the indexer can tell a busy moment: it then
/// gives way, since its CPU and its transactions would slow what clients wait for.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    work: AtomicU64,
}

impl Activity {
    pub(crate) fn record(&self) {
        self.work.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.work.load(Ordering::Relaxed)
    }
}

/// Index rows written per transaction.
const WRITE_CHUNK: usize = 20;

/// How often the indexer counts its queue for `postcell_store_search_pending`.
const GAUGE_EVERY: Duration = Duration::from_secs(1);

impl Store {
    /// Indexes the whole queue, batch after batch, until `stop` completes. Gives way
    /// to deliveries as [`IndexerSettings`] says; errors are logged and retried.
    pub async fn run_indexer(self, settings: IndexerSettings, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut seen = self.activity.count();
        let mut counted: Option<Instant> = None;
        loop {
            // Work for mail or clients since the last batch: a busy moment.
            let busy = self.activity.count() != seen;
            seen = self.activity.count();
            let limit = if busy {
                settings.busy_batch.min(settings.batch)
            } else {
                settings.batch
            };
            let started = Instant::now();
            let pause = match self.index_queued(limit.max(1)).await {
                Ok(0) => settings.poll,
                Ok(_) if busy => settings.rest_after(started.elapsed()),
                Ok(_) => Duration::ZERO,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot index queued messages; trying again");
                    settings.poll.max(Duration::from_secs(1))
                }
            };
            if counted.is_none_or(|at| at.elapsed() >= GAUGE_EVERY) {
                counted = Some(Instant::now());
                match self.search_queue_len().await {
                    Ok(queued) => {
                        metrics::gauge!("postcell_store_search_pending").set(queued as f64)
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot count the index queue"),
                }
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Claims up to `limit` queued blobs that no other node holds, indexes them, and
    /// returns how many it indexed.
    pub async fn index_queued(&self, limit: usize) -> Result<usize> {
        let at = now();
        let claimed: Vec<String> = retry_conflicts(|| async {
            dispatch!(&self.pool, write, |p| {
                Ok(sqlx::query_scalar(
                    "UPDATE search_pending SET claimed_by = $1, claimed_until = $2
                     WHERE claimed_until <= $3 AND blob_id IN (
                       SELECT blob_id FROM search_pending WHERE claimed_until <= $3
                       ORDER BY queued_at LIMIT $4)
                     RETURNING blob_id",
                )
                .bind(&*self.node_id)
                .bind(at + CLAIM_SECONDS)
                .bind(at)
                .bind(limit as i64)
                .fetch_all(p)
                .await?)
            })
        })
        .await?;
        self.index_blobs(&claimed).await
    }

    /// Indexes what of mailbox `mailbox_id` is still queued (a search is about to run
    /// on it). Returns how many blobs it indexed.
    pub async fn index_mailbox(&self, mailbox_id: i64) -> Result<usize> {
        // The queue is nearly always short (empty, once the indexer has caught up): then
        // looking its entries up in the mailbox is cheaper than looking the mailbox's
        // messages up in it (0.3 to 1.7 ms for 1,000 messages before every SEARCH).
        let limit = SHORT_QUEUE as i64 + 1;
        let head: Vec<(String, bool)> = match &self.pool {
            // At most SHORT_QUEUE + 1 rows, each one index lookup.
            Pool::Sqlite { direct, .. } => direct.lookup(|db| {
                all_rows(
                    db,
                    QUEUE_HEAD_IN_MAILBOX,
                    named_params! {"$1": mailbox_id, "$2": limit},
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
            })?,
            Pool::Postgres(p) => {
                sqlx::query_as(QUEUE_HEAD_IN_MAILBOX)
                    .bind(mailbox_id)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
        };
        let queued: Vec<String> = if head.len() <= SHORT_QUEUE {
            head.into_iter()
                .filter_map(|(blob_id, here)| here.then_some(blob_id))
                .collect()
        } else {
            dispatch!(&self.pool, read, |p| {
                sqlx::query_scalar(
                    "SELECT DISTINCT q.blob_id FROM search_pending q
                     JOIN messages m ON m.blob_id = q.blob_id
                     WHERE m.mailbox_id = $1",
                )
                .bind(mailbox_id)
                .fetch_all(p)
                .await?
            })
        };
        let mut indexed = 0;
        for chunk in queued.chunks(SEARCH_BATCH) {
            indexed += self.index_blobs(chunk).await?;
        }
        if indexed > 0 {
            metrics::counter!("postcell_store_search_indexed_on_demand_total")
                .increment(indexed as u64);
            tracing::debug!(
                mailbox_id,
                indexed,
                "indexed queued messages before a search"
            );
        }
        Ok(indexed)
    }

    /// How many blobs wait for the indexer.
    pub async fn search_queue_len(&self) -> Result<i64> {
        dispatch!(&self.pool, read, |p| {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM search_pending")
                .fetch_one(p)
                .await?)
        })
    }

    /// Extracts the text of `blobs` and writes their rows, taking them off the queue,
    /// `WRITE_CHUNK` to a transaction. A blob that is gone gets an empty row (its messages match
    /// no text), so that it is not read again at every search.
    async fn index_blobs(&self, blobs: &[String]) -> Result<usize> {
        if blobs.is_empty() {
            return Ok(0);
        }
        let mut raws = Vec::with_capacity(blobs.len());
        for blob in blobs {
            let blob_id = BlobId::parse(blob)?;
            let raw = match self.get_blob(&blob_id).await {
                Ok(raw) => Some(raw),
                Err(StoreError::BlobMissing(_)) => {
                    tracing::warn!(blob = %blob_id, "cannot index a message whose blob is missing");
                    None
                }
                Err(error) => return Err(error),
            };
            raws.push((blob_id, raw));
        }
        let documents = tokio::task::spawn_blocking(move || {
            raws.into_iter()
                .map(|(blob_id, raw)| {
                    let document = raw.map(|raw| SearchDocument::of(&raw)).unwrap_or_default();
                    (blob_id, document)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("extracting search text: {e}")))?;
        // The rows are committed before their queue entries are removed, in two
        // transactions (on SQLite, in two files): a crash in between only means the
        // same rows are written again. Short ones: a search waiting to index its
        // mailbox, or the queue's DELETE, waits for at most one chunk.
        for chunk in documents.chunks(WRITE_CHUNK) {
            retry_conflicts(|| async {
                dispatch!(&self.pool, index, |p| {
                    let mut tx = p.begin().await?;
                    for (blob_id, document) in chunk {
                        insert_search_text!(tx, blob_id, document)?;
                    }
                    tx.commit().await?;
                    Ok(())
                })
            })
            .await?;
            let dequeue = format!(
                "DELETE FROM search_pending WHERE blob_id IN ({})",
                crate::blob::sql_list(chunk.iter().map(|(blob_id, _)| blob_id))
            );
            dispatch!(&self.pool, write, |p| {
                sqlx::query(sqlx::AssertSqlSafe(dequeue)).execute(p).await?;
            });
        }
        metrics::counter!("postcell_store_search_indexed_total").increment(documents.len() as u64);
        Ok(documents.len())
    }
}

/// Queues again the blobs whose index row an older extraction wrote. Returns how
/// many it queued. The rows are found on a reader (on SQLite the writer does not see
/// the index file), along the `search_text_version` index.
pub(crate) async fn queue_outdated_index_rows(pool: &Pool) -> Result<u64> {
    let outdated: Vec<String> = dispatch!(pool, read, |p| {
        sqlx::query_scalar("SELECT blob_id FROM search_text WHERE version < $1")
            .bind(INDEX_VERSION)
            .fetch_all(p)
            .await?
    });
    let mut queued = 0;
    for chunk in outdated.chunks(500) {
        queued += requeue(pool, chunk.iter().map(String::as_str)).await?;
    }
    if queued > 0 {
        tracing::info!(queued, "queued messages indexed by an older version");
    }
    Ok(queued)
}

/// Queues `blobs` for the indexer (those not queued already); returns how many.
async fn requeue<'a>(pool: &Pool, blobs: impl Iterator<Item = &'a str>) -> Result<u64> {
    let at = now();
    let mut queued = 0;
    dispatch!(pool, write, |p| {
        let mut tx = p.begin_write().await?;
        for blob in blobs {
            queued += sqlx::query(
                "INSERT INTO search_pending (blob_id, queued_at) VALUES ($1, $2)
                 ON CONFLICT (blob_id) DO NOTHING",
            )
            .bind(blob)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
    });
    Ok(queued)
}

/// The layout of the SQLite search index file (its `user_version`). A file of another
/// layout (or a new, empty one) is set up anew and every message is queued for it.
const INDEX_FILE_LAYOUT: i64 = 1;

/// Sets up the SQLite search index file, attached to `index` as schema `search`, if
/// it is new or of another layout.
pub(crate) async fn prepare_index_file(
    index: &sqlx::SqlitePool,
    writer: &sqlx::SqlitePool,
) -> Result<()> {
    use sqlx::Executor;
    let layout: i64 = sqlx::query_scalar("PRAGMA search.user_version")
        .fetch_one(index)
        .await?;
    if layout == INDEX_FILE_LAYOUT {
        return Ok(());
    }
    // Queued first: if the process stops before the layout is written, the next start
    // comes here again and queues nothing twice.
    let queued = sqlx::query(
        "INSERT INTO search_pending (blob_id, queued_at)
         SELECT DISTINCT blob_id, $1 FROM messages WHERE true
         ON CONFLICT (blob_id) DO NOTHING",
    )
    .bind(now())
    .execute(writer)
    .await?
    .rows_affected();
    let mut tx = index.begin().await?;
    tx.execute("DROP TABLE IF EXISTS search.search_fts; DROP TABLE IF EXISTS search.search_text;")
        .await?;
    tx.execute(include_str!("../migrations/sqlite-search/schema.sql"))
        .await?;
    tx.execute(sqlx::AssertSqlSafe(format!(
        "PRAGMA search.user_version = {INDEX_FILE_LAYOUT}"
    )))
    .await?;
    tx.commit().await?;
    tracing::info!(
        layout,
        queued,
        "set up the search index file; its messages are queued to be indexed"
    );
    Ok(())
}
