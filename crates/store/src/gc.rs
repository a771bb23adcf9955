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

use crate::blob::{BlobStore, QUARANTINE, TMP, blob_path, quarantine_path};
use crate::{BlobId, Result, Store, StoreError, now};

/// Every column that refers to a blob. A table that gains a `blob_id` must be added
/// here, or the collector would take its blobs.
const REFERENCES: &[(&str, &str)] = &[("messages", "blob_id"), ("outbound_queue", "blob_id")];

/// How many candidates are checked against the references in one query.
const BATCH: usize = 500;

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
        }
    }
}

impl std::fmt::Display for GcReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "candidates={} quarantined={} deleted={} bytes_deleted={} restored={}",
            self.candidates, self.quarantined, self.deleted, self.bytes_deleted, self.restored
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
        match &self.blobs {
            BlobStore::Folder { root, .. } => {
                // Small bodies are rows even here (see `blob::INLINE_MAX`).
                let files = self.collect_blob_files(root, grace, keep_going).await?;
                let rows = self.collect_blob_rows(grace, keep_going).await?;
                Ok(files + rows)
            }
            BlobStore::Database(_) => self.collect_blob_rows(grace, keep_going).await,
        }
    }

    async fn collect_blob_rows(
        &self,
        grace: Duration,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Result<GcReport> {
        let cutoff = now() - grace.as_secs() as i64;
        let unreferenced = |alias: &str| {
            REFERENCES
                .iter()
                .map(|(table, column)| {
                    format!("NOT EXISTS (SELECT 1 FROM {table} r WHERE r.{column} = {alias}.id)")
                })
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        // The conditions are repeated on the deleted table itself (not only in the
        // sub-select that picks a batch), so PostgreSQL checks them again on a row a
        // concurrent writer refreshed meanwhile.
        let sql = format!(
            "DELETE FROM blobs WHERE created_at < $1 AND {}
               AND id IN (SELECT b.id FROM blobs b WHERE b.created_at < $1 AND {} LIMIT {BATCH})
             RETURNING CAST(length(data) AS BIGINT)",
            unreferenced("blobs"),
            unreferenced("b"),
        );
        let mut report = GcReport::default();
        loop {
            let sizes: Vec<i64> = dispatch!(&self.pool, write, |p| {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(cutoff)
                    .fetch_all(p)
                    .await?
            });
            report.deleted += sizes.len() as u64;
            report.candidates += sizes.len() as u64;
            report.bytes_deleted += sizes.iter().map(|&n| n.max(0) as u64).sum::<u64>();
            if sizes.len() < BATCH || !keep_going() {
                return Ok(report);
            }
        }
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
        // Blob ids are checked hex (BlobId::parse), so they can be written into the SQL.
        let list = batch
            .iter()
            .map(|(id, _)| format!("'{}'", id.as_str()))
            .collect::<Vec<_>>()
            .join(",");
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
