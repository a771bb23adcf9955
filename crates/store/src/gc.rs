//! Collecting unreferenced blobs: bodies that no message and no queue entry refers to
//! any more (expunged mail, a crash between a blob and its commit).
//!
//! Rule 1 of the store says a blob is written before the transaction that refers to
//! it commits, so at any moment some blobs are referenced only by transactions still
//! running. Two things keep the collector away from those:
//!
//! * **A grace period.** Only blobs older than it are candidates, and writing bytes that
//!   already exist refreshes the blob's time (the file's mtime, or `blobs.created_at`),
//!   so a delivery that reuses an old blob restarts the clock before it commits.
//! * **For folders, a quarantine.** A candidate is first *renamed* into `quarantine/`
//!   and deleted only on a later run, after its references are checked again. A writer
//!   that finds the blob gone writes it anew; a reader that finds it gone looks in the
//!   quarantine; a message that committed in between is seen by the second check and
//!   its blob is put back. Between two runs lies at least the grace period, far longer
//!   than any transaction.
//!
//! In the database, PostgreSQL re-checks `created_at` on a row that a concurrent writer
//! refreshed before deleting it, and SQLite has one writer at a time.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::blob::{BlobStore, QUARANTINE, TMP, blob_path, quarantine_path, sql_list};
use crate::pool::Pool;
use crate::{BlobId, Result, Store, StoreError, now};

/// Every column that refers to a blob. A table that gains a `blob_id` must be added
/// here, or the collector would take its blobs.
const REFERENCES: &[(&str, &str)] = &[("messages", "blob_id"), ("outbound_queue", "blob_id")];

/// An SQL condition, true when some column of [`REFERENCES`] holds the blob id
/// `id_column` (such as `b.id`).
fn referenced_sql(id_column: &str) -> String {
    let any = REFERENCES
        .iter()
        .map(|(table, column)| {
            format!("EXISTS (SELECT 1 FROM {table} r WHERE r.{column} = {id_column})")
        })
        .collect::<Vec<_>>()
        .join(" OR ");
    format!("({any})")
}

/// How many candidates are checked against the references, or deleted, in one query.
const BATCH: usize = 500;

/// How many rows of `blobs` one read of the candidate scan covers.
const SCAN_PAGE: usize = 2_000;

/// What one collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs looked at (older than the grace period).
    pub candidates: u64,
    /// Set aside this run (folders only), deleted on a later run if still unreferenced.
    pub quarantined: u64,
    /// Deleted for good.
    pub deleted: u64,
    pub bytes_deleted: u64,
    /// Put back from the quarantine: a message referred to them after all.
    pub restored: u64,
    /// Search index rows removed because no message refers to their blob any more
    /// (SQLite; on PostgreSQL a trigger removes them with the last message).
    pub search_rows: u64,
}

impl std::ops::Add for GcReport {
    type Output = GcReport;

    fn add(self, other: GcReport) -> GcReport {
        GcReport {
            candidates: self.candidates + other.candidates,
            quarantined: self.quarantined + other.quarantined,
            deleted: self.deleted + other.deleted,
            bytes_deleted: self.bytes_deleted + other.bytes_deleted,
            restored: self.restored + other.restored,
            search_rows: self.search_rows + other.search_rows,
        }
    }
}

impl std::fmt::Display for GcReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "candidates={} quarantined={} deleted={} bytes_deleted={} restored={} search_rows={}",
            self.candidates,
            self.quarantined,
            self.deleted,
            self.bytes_deleted,
            self.restored,
            self.search_rows
        )
    }
}

impl Store {
    /// Collects blobs that nothing refers to and that are older than `grace`.
    /// `keep_going` is asked between batches; when it says no, the run stops early
    /// (the node is draining), leaving everything consistent.
    pub async fn collect_blobs(
        &self,
        grace: Duration,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Result<GcReport> {
        let blobs = match &self.blobs {
            BlobStore::Folder { root, .. } => {
                // Small bodies are rows even here (see `blob::INLINE_MAX`).
                let files = self.collect_blob_files(root, grace, keep_going).await?;
                let rows = self.collect_blob_rows(grace, keep_going).await?;
                files + rows
            }
            BlobStore::Database(_) => self.collect_blob_rows(grace, keep_going).await?,
        };
        let search = match &self.pool {
            Pool::Sqlite { .. } if keep_going() => self.collect_search_rows(keep_going).await?,
            _ => GcReport::default(),
        };
        Ok(blobs + search)
    }

    /// SQLite: removes the search index rows of blobs no message refers to. The index
    /// is in a file of its own, out of reach of a trigger on `messages`. Found on a
    /// reader a page at a time along the `blob_id` index, then deleted by the index
    /// writer, which checks again.
    async fn collect_search_rows(
        &self,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Result<GcReport> {
        let mut report = GcReport::default();
        let mut after = String::new();
        loop {
            let page: Vec<(String, i32)> = dispatch!(&self.pool, read, |p| {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT t.blob_id,
                       CASE WHEN EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = t.blob_id)
                       THEN 1 ELSE 0 END
                     FROM search_text t WHERE t.blob_id > $1 ORDER BY t.blob_id LIMIT {SCAN_PAGE}"
                )))
                .bind(&after)
                .fetch_all(p)
                .await?
            });
            let Some((last, _)) = page.last() else {
                return Ok(report);
            };
            after = last.clone();
            let orphans: Vec<BlobId> = page
                .iter()
                .filter(|(_, referenced)| *referenced == 0)
                .filter_map(|(id, _)| BlobId::parse(id).ok())
                .collect();
            for batch in orphans.chunks(BATCH) {
                report.search_rows += self.delete_search_rows(batch).await?;
            }
            if page.len() < SCAN_PAGE || !keep_going() {
                return Ok(report);
            }
        }
    }

    /// Deletes the index rows of those of `ids` that no message refers to.
    async fn delete_search_rows(&self, ids: &[BlobId]) -> Result<u64> {
        let list = sql_list(ids);
        let delete = format!(
            "DELETE FROM search_text WHERE blob_id IN ({list})
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = search_text.blob_id)"
        );
        dispatch!(&self.pool, index, |p| {
            let mut tx = p.begin().await?;
            // The index's write lock first, and only then a view of `messages`: a
            // message committed before this view is seen (its row stays); one committed
            // after queued its blob, and the indexer writes the row again once this
            // transaction has ended.
            sqlx::query("DELETE FROM search_text WHERE id = -1")
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query(sqlx::AssertSqlSafe(delete))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(n)
        })
    }

    /// Rows of `blobs` are collected in two steps so that the writer is never held by
    /// the long part. On a store of live mail nearly every row is referenced, and
    /// proving that for each takes time in proportion to the whole store: that is done
    /// on a reader, a page at a time along the `blobs_created` index (which also spares
    /// reading the bodies). The writer then deletes only the rows found unreferenced,
    /// and checks them again as it does, since a delivery may have taken one meanwhile.
    async fn collect_blob_rows(
        &self,
        grace: Duration,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Result<GcReport> {
        let cutoff = now() - grace.as_secs() as i64;
        let mut report = GcReport::default();
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = self.blob_rows_page(cutoff, after.as_ref()).await?;
            let Some((last_id, last_created, _)) = page.last() else {
                return Ok(report);
            };
            after = Some((*last_created, last_id.clone()));
            report.candidates += page.len() as u64;
            let unreferenced: Vec<BlobId> = page
                .iter()
                .filter(|(_, _, referenced)| !referenced)
                .filter_map(|(id, _, _)| BlobId::parse(id).ok())
                .collect();
            for batch in unreferenced.chunks(BATCH) {
                let sizes = self.delete_blob_rows(cutoff, batch).await?;
                report.deleted += sizes.len() as u64;
                report.bytes_deleted += sizes.iter().map(|&n| n.max(0) as u64).sum::<u64>();
            }
            if page.len() < SCAN_PAGE || !keep_going() {
                return Ok(report);
            }
        }
    }

    /// The next `SCAN_PAGE` rows older than `cutoff` after the key `after`, in
    /// (created_at, id) order, each with whether anything refers to it.
    async fn blob_rows_page(
        &self,
        cutoff: i64,
        after: Option<&(i64, String)>,
    ) -> Result<Vec<(String, i64, bool)>> {
        let referenced = referenced_sql("b.id");
        let sql = format!(
            "SELECT b.id, b.created_at, CASE WHEN {referenced} THEN 1 ELSE 0 END
             FROM blobs b
             WHERE b.created_at < $1 AND (b.created_at, b.id) > ($2, $3)
             ORDER BY b.created_at, b.id
             LIMIT {SCAN_PAGE}"
        );
        let (created, id) = after.map_or((i64::MIN, ""), |(c, id)| (*c, id.as_str()));
        let rows: Vec<(String, i64, i32)> = dispatch!(&self.pool, read, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(cutoff)
                .bind(created)
                .bind(id)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, created, referenced)| (id, created, referenced != 0))
            .collect())
    }

    /// Deletes those of `ids` that are still older than `cutoff` and unreferenced;
    /// returns the sizes of the rows deleted.
    async fn delete_blob_rows(&self, cutoff: i64, ids: &[BlobId]) -> Result<Vec<i64>> {
        let list = sql_list(ids);
        let referenced = referenced_sql("blobs.id");
        // PostgreSQL checks `created_at` again on a row a concurrent writer refreshed.
        let sql = format!(
            "DELETE FROM blobs WHERE id IN ({list}) AND created_at < $1 AND NOT {referenced}
             RETURNING CAST(length(data) AS BIGINT)"
        );
        Ok(dispatch!(&self.pool, write, |p| {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(cutoff)
                .fetch_all(p)
                .await?
        }))
    }

    async fn collect_blob_files(
        &self,
        root: &Path,
        grace: Duration,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Result<GcReport> {
        let mut report = GcReport::default();
        let cutoff = SystemTime::now()
            .checked_sub(grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);

        // Second step for what an earlier run set aside: delete or put back.
        let quarantined = blocking({
            let dir = root.join(QUARANTINE);
            move || old_blob_files_in(&dir, cutoff)
        })
        .await?;
        for batch in quarantined.chunks(BATCH) {
            let referenced = self.referenced(batch).await?;
            for (id, _) in batch {
                let (root, id, keep) = (root.to_path_buf(), id.clone(), referenced.contains(id));
                let outcome = blocking(move || settle_quarantined(&root, &id, keep)).await?;
                match outcome {
                    Settled::Restored => report.restored += 1,
                    Settled::Deleted(bytes) => {
                        report.deleted += 1;
                        report.bytes_deleted += bytes;
                    }
                    Settled::Gone => {}
                }
            }
            if !keep_going() {
                return Ok(report);
            }
        }

        // First step: set aside old blobs that nothing refers to.
        let candidates = blocking({
            let root = root.to_path_buf();
            move || old_blob_files(&root, cutoff)
        })
        .await?;
        report.candidates = candidates.len() as u64;
        for batch in candidates.chunks(BATCH) {
            let referenced = self.referenced(batch).await?;
            let unreferenced: Vec<BlobId> = batch
                .iter()
                .filter(|(id, _)| !referenced.contains(id))
                .map(|(id, _)| id.clone())
                .collect();
            let root = root.to_path_buf();
            report.quarantined += blocking(move || quarantine(&root, &unreferenced)).await?;
            if !keep_going() {
                return Ok(report);
            }
        }

        // Temporary files of writers that crashed between write and rename.
        blocking({
            let dir = root.join(TMP);
            move || remove_old_files(&dir, cutoff)
        })
        .await?;
        Ok(report)
    }

    /// Which of these blobs something refers to.
    async fn referenced(&self, batch: &[(BlobId, u64)]) -> Result<HashSet<BlobId>> {
        if batch.is_empty() {
            return Ok(HashSet::new());
        }
        let list = sql_list(batch.iter().map(|(id, _)| id));
        let sql = REFERENCES
            .iter()
            .map(|(table, column)| {
                format!("SELECT DISTINCT {column} FROM {table} WHERE {column} IN ({list})")
            })
            .collect::<Vec<_>>()
            .join(" UNION ");
        let found: Vec<String> = dispatch!(&self.pool, read, |p| {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(p)
                .await?
        });
        Ok(found
            .iter()
            .filter_map(|id| BlobId::parse(id).ok())
            .collect())
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Blob(std::io::Error::other(e)))?
        .map_err(StoreError::Blob)
}

fn modified(path: &Path) -> std::io::Result<(SystemTime, u64)> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.modified()?, meta.len()))
}

/// Blob files under `root/ab/cd/` last written before `cutoff`, with their sizes.
fn old_blob_files(root: &Path, cutoff: SystemTime) -> std::io::Result<Vec<(BlobId, u64)>> {
    let mut found = Vec::new();
    for first in fan_out_dirs(root)? {
        for second in fan_out_dirs(&first)? {
            found.extend(old_blob_files_in(&second, cutoff)?);
        }
    }
    Ok(found)
}

/// The two-hex-digit folders of one fan-out level.
fn fan_out_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.len() == 2
            && name.bytes().all(|b| b.is_ascii_hexdigit())
            && entry.file_type()?.is_dir()
        {
            dirs.push(entry.path());
        }
    }
    Ok(dirs)
}

fn old_blob_files_in(dir: &Path, cutoff: SystemTime) -> std::io::Result<Vec<(BlobId, u64)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Ok(id) = BlobId::parse(&entry.file_name().to_string_lossy()) else {
            continue;
        };
        match modified(&entry.path()) {
            Ok((time, len)) if time < cutoff => found.push((id, len)),
            Ok(_) => {}
            // Renamed or deleted meanwhile by another collector: not ours to count.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// Renames unreferenced blobs into the quarantine and stamps the time they went
/// there. Returns how many were moved.
fn quarantine(root: &Path, ids: &[BlobId]) -> std::io::Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let dir = root.join(QUARANTINE);
    std::fs::create_dir_all(&dir)?;
    let mut moved = 0;
    for id in ids {
        let target = quarantine_path(root, id);
        match std::fs::rename(blob_path(root, id), &target) {
            Ok(()) => {
                std::fs::File::open(&target)?.set_modified(SystemTime::now())?;
                moved += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(moved)
}

enum Settled {
    Restored,
    Deleted(u64),
    Gone,
}

/// The second look at a quarantined blob: back into place if something refers to it,
/// otherwise deleted.
fn settle_quarantined(root: &Path, id: &BlobId, referenced: bool) -> std::io::Result<Settled> {
    let held = quarantine_path(root, id);
    let Ok((_, len)) = modified(&held) else {
        return Ok(Settled::Gone);
    };
    let home = blob_path(root, id);
    if referenced && !home.exists() {
        if let Some(parent) = home.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(&held, &home)?;
        return Ok(Settled::Restored);
    }
    std::fs::remove_file(&held)?;
    if referenced {
        // A writer stored the same bytes again meanwhile: the copy here is spare.
        Ok(Settled::Restored)
    } else {
        Ok(Settled::Deleted(len))
    }
}

fn remove_old_files(dir: &Path, cutoff: SystemTime) -> std::io::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if let Ok((time, _)) = modified(&entry.path())
            && time < cutoff
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackendConfig, BlobConfig, Durability, StoreConfig};

    /// More rows than a few scan pages, all written in the same second: the pages must
    /// still cover every row once, ordered by id within that second.
    #[tokio::test]
    async fn the_row_scan_pages_through_every_old_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig {
            backend: BackendConfig::Sqlite {
                path: dir.path().join("state.db"),
                durability: Durability::Full,
            },
            blobs: BlobConfig::Folder(dir.path().join("blobs")),
            node_id: "node-a".into(),
        })
        .await
        .unwrap();
        let old = 2 * SCAN_PAGE + 7;
        let rows = (0..old)
            .map(|i| (i, 1_000))
            .chain((old..old + 3).map(|i| (i, now())));
        dispatch!(&store.pool, write, |p| {
            let mut tx = p.begin().await.unwrap();
            for (i, created_at) in rows {
                sqlx::query("INSERT INTO blobs (id, data, created_at) VALUES ($1, $2, $3)")
                    .bind(format!("{i:064x}"))
                    .bind(vec![b'x'; 10])
                    .bind(created_at)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        });

        let report = store
            .collect_blob_rows(Duration::from_secs(60), &|| true)
            .await
            .unwrap();
        assert_eq!(report.candidates, old as u64, "{report}");
        assert_eq!(report.deleted, old as u64, "{report}");
        assert_eq!(report.bytes_deleted, 10 * old as u64, "{report}");
        let left: i64 = dispatch!(&store.pool, read, |p| {
            sqlx::query_scalar("SELECT COUNT(*) FROM blobs")
                .fetch_one(p)
                .await
                .unwrap()
        });
        assert_eq!(left, 3, "the young rows stay");
    }
}
