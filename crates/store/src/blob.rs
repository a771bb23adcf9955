//! Immutable, content-addressed message bodies.
//!
//! A blob is named by the SHA-256 of its bytes, so writing the same bytes twice is a
//! no-op and a blob never changes once written: nodes sharing a folder (a CephFS or
//! GlusterFS mount in a cell) need no locks to read or write blobs. Rule 1 of the
//! store: a blob is durable before the metadata that points to it is committed.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use rusqlite::named_params;
use sha2::{Digest, Sha256};

use crate::direct_read::optional_row;
use crate::pool::Pool;
use crate::{BlobConfig, Result, Store, StoreError};

/// The SHA-256 of a blob's bytes, as 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(String);

impl BlobId {
    pub fn of(data: &[u8]) -> BlobId {
        BlobId(hex::encode(Sha256::digest(data)))
    }

    /// Checks a stored id before it is turned into a path.
    pub fn parse(text: &str) -> Result<BlobId> {
        if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(BlobId(text.to_owned()))
        } else {
            Err(StoreError::Invalid(format!("malformed blob id {text:?}")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `ids` as the inside of an SQL `IN (...)`: `'id','id',...`. Safe to write into a
/// statement because a `BlobId` is checked hex ([`BlobId::parse`], [`BlobId::of`]).
pub(crate) fn sql_list<'a>(ids: impl IntoIterator<Item = &'a BlobId>) -> String {
    ids.into_iter()
        .map(|id| format!("'{}'", id.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bodies up to this size go into the `blobs` table, written by the same transaction
/// as the delivery that first refers to them, even when the blob store is a folder.
/// A file of its own costs a message two fsyncs (the file, then its folder) before
/// the delivery's commit can start; a row rides on that commit's one WAL flush.
/// SQLite's own measurements put the size past which a file reads faster than a row
/// near 100 KB (4 KiB pages); bigger bodies keep their own files, which keep the
/// database small and are read without going through it.
pub const INLINE_MAX: usize = 128 * 1024;

/// A body a delivery can refer to: either durable already (a file, or a row written
/// by [`Store::put_blob`]), or held here to be written by the delivery's own
/// transaction (see [`Store::stage_blob`]). Rule 1 holds either way: the body is
/// durable no later than the metadata that points to it.
#[derive(Debug, Clone)]
pub struct StagedBlob {
    id: BlobId,
    /// The bytes still to write, in the `blobs` table.
    pub(crate) inline: Option<Arc<[u8]>>,
}

impl StagedBlob {
    pub fn id(&self) -> &BlobId {
        &self.id
    }
}

/// A blob already written by [`Store::put_blob`].
impl From<BlobId> for StagedBlob {
    fn from(id: BlobId) -> StagedBlob {
        StagedBlob { id, inline: None }
    }
}

/// Where blob bodies live, for `postcell status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobStorage {
    Folder(PathBuf),
    Database,
}

#[derive(Clone)]
pub(crate) enum BlobStore {
    /// Files under `root`; bodies up to `INLINE_MAX` that came through a delivery are
    /// rows of the `blobs` table in `pool`.
    Folder {
        root: PathBuf,
        durable: Arc<DurableFolders>,
        pool: Pool,
    },
    Database(Pool),
}

/// The fan-out folders whose entry in the folder above this process has made durable
/// (or seen made durable). A blob's rename is durable only once its folder's entry is,
/// and that of the folder above it; a folder another writer has just created may not
/// be durable yet, so every folder's entry is synced once per process, at its first
/// use, rather than once per blob.
pub(crate) struct DurableFolders {
    /// One bit per first-level folder (`ab`).
    top: [AtomicU64; 4],
    /// One bit per second-level folder (`ab/cd`).
    second: Vec<AtomicU64>,
}

impl DurableFolders {
    fn new() -> DurableFolders {
        DurableFolders {
            top: Default::default(),
            second: (0..65_536 / 64).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn bit(words: &[AtomicU64], index: usize) -> (&AtomicU64, u64) {
        (&words[index / 64], 1 << (index % 64))
    }

    /// Syncs `parent` unless the entry of folder `index` in it is known durable.
    fn ensure(words: &[AtomicU64], index: usize, parent: &Path) -> std::io::Result<()> {
        let (word, mask) = Self::bit(words, index);
        if word.load(Ordering::Acquire) & mask == 0 {
            sync_dir(parent)?;
            word.fetch_or(mask, Ordering::Release);
        }
        Ok(())
    }
}

impl BlobStore {
    pub(crate) async fn open(config: &BlobConfig, pool: Pool) -> Result<BlobStore> {
        match config {
            BlobConfig::Folder(root) => {
                let root = root.clone();
                let prepared = root.clone();
                tokio::task::spawn_blocking(move || std::fs::create_dir_all(prepared.join(TMP)))
                    .await
                    .map_err(|e| StoreError::Blob(std::io::Error::other(e)))??;
                Ok(BlobStore::Folder {
                    root,
                    durable: Arc::new(DurableFolders::new()),
                    pool,
                })
            }
            BlobConfig::Database => Ok(BlobStore::Database(pool)),
        }
    }

    async fn put(&self, data: Vec<u8>) -> Result<BlobId> {
        let id = BlobId::of(&data);
        match self {
            BlobStore::Folder { root, durable, .. } => {
                let root = root.clone();
                let durable = Arc::clone(durable);
                let file_id = id.clone();
                tokio::task::spawn_blocking(move || {
                    write_blob_file(&root, &durable, &file_id, &data)
                })
                .await
                .map_err(|e| StoreError::Blob(std::io::Error::other(e)))??;
            }
            BlobStore::Database(pool) => {
                dispatch!(pool, write, |p| {
                    sqlx::query(INSERT_ROW)
                        .bind(id.as_str())
                        .bind(&data)
                        .bind(crate::now())
                        .execute(p)
                        .await?;
                });
            }
        }
        Ok(id)
    }

    async fn get(&self, id: &BlobId) -> Result<Vec<u8>> {
        match self {
            BlobStore::Folder { root, pool, .. } => {
                let path = blob_path(root, id);
                match tokio::fs::read(&path).await {
                    Ok(data) => Ok(data),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        // A small body lives in the table (see `INLINE_MAX`).
                        if let Some(data) = get_row(pool, id, true).await? {
                            return Ok(data);
                        }
                        // The collector may have set it aside a moment before a message
                        // that refers to it committed; it puts it back on its next run.
                        match tokio::fs::read(quarantine_path(root, id)).await {
                            Ok(data) => Ok(data),
                            Err(_) => Err(StoreError::BlobMissing(id.to_string())),
                        }
                    }
                    Err(e) => Err(e.into()),
                }
            }
            BlobStore::Database(pool) => get_row(pool, id, false)
                .await?
                .ok_or_else(|| StoreError::BlobMissing(id.to_string())),
        }
    }

    /// Keeps a body for the delivery's transaction to write, or writes it now.
    async fn stage(&self, data: Vec<u8>) -> Result<StagedBlob> {
        let inline = match self {
            BlobStore::Folder { .. } => data.len() <= INLINE_MAX,
            BlobStore::Database(_) => true,
        };
        if inline {
            Ok(StagedBlob {
                id: BlobId::of(&data),
                inline: Some(data.into()),
            })
        } else {
            self.put(data).await.map(StagedBlob::from)
        }
    }

    /// Bodies over `INLINE_MAX` have files of their own; the table holds only smaller ones.
    pub(crate) fn in_files(&self) -> bool {
        matches!(self, BlobStore::Folder { .. })
    }

    fn storage(&self) -> BlobStorage {
        match self {
            BlobStore::Folder { root, .. } => BlobStorage::Folder(root.clone()),
            BlobStore::Database(_) => BlobStorage::Database,
        }
    }
}

/// Writing bytes that are already stored refreshes the blob's age, so the collector's
/// grace period starts again (see `gc`).
pub(crate) const INSERT_ROW: &str = "INSERT INTO blobs (id, data, created_at) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at";

const BLOB_ROW: &str = "SELECT data FROM blobs WHERE id = $1";

/// A body in the table. `small` when it has at most `INLINE_MAX` bytes (all of them
/// do when blobs live in files), which are copied on this thread faster than a
/// hand-off would take; a larger one is read on the blocking pool.
async fn get_row(pool: &Pool, id: &BlobId, small: bool) -> Result<Option<Vec<u8>>> {
    match pool {
        Pool::Sqlite { direct, .. } => {
            let id = id.as_str().to_owned();
            let read = move |db: &rusqlite::Connection| {
                optional_row(db, BLOB_ROW, named_params! {"$1": id}, |row| row.get(0))
            };
            if small {
                direct.lookup(read)
            } else {
                direct.scan(read).await
            }
        }
        Pool::Postgres(p) => Ok(sqlx::query_scalar(BLOB_ROW)
            .bind(id.as_str())
            .fetch_optional(p)
            .await?),
    }
}

/// `root/ab/cd/abcd...`: two levels of fan-out keep folders small with millions of blobs.
pub(crate) fn blob_path(root: &Path, id: &BlobId) -> PathBuf {
    let hex = id.as_str();
    root.join(&hex[0..2]).join(&hex[2..4]).join(hex)
}

/// Where the collector sets aside a blob it found unreferenced, until its next run
/// confirms nothing refers to it (see `gc`).
pub(crate) fn quarantine_path(root: &Path, id: &BlobId) -> PathBuf {
    root.join(QUARANTINE).join(id.as_str())
}

pub(crate) const QUARANTINE: &str = "quarantine";
pub(crate) const TMP: &str = "tmp";

/// Writes to a temporary file, makes it durable, then renames it into place and makes
/// the rename durable: a reader sees the whole blob or none, and after a crash a blob
/// that was reported written is still there.
fn write_blob_file(
    root: &Path,
    durable: &DurableFolders,
    id: &BlobId,
    data: &[u8],
) -> std::io::Result<()> {
    let path = blob_path(root, id);
    if path.exists() {
        // Refresh its age: the collector leaves alone blobs touched within its grace
        // period, and a message about to refer to this one is not committed yet.
        if let Err(e) = std::fs::File::open(&path).and_then(|f| f.set_modified(SystemTime::now())) {
            tracing::warn!(blob = %id, error = %e, "cannot refresh the time of a blob");
        }
        return Ok(());
    }
    let dir = path.parent().unwrap_or(root);
    let top = dir.parent().unwrap_or(root);
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = tempfile_in(&root.join(TMP))?;
    tmp.1.write_all(data)?;
    tmp.1.sync_all()?;
    std::fs::rename(&tmp.0, &path)?;
    sync_dir(dir)?;
    // The fan-out folders must be durable too, or the rename could vanish with them.
    let (top_index, second_index) = fan_out_index(id);
    DurableFolders::ensure(&durable.top, top_index, root)?;
    DurableFolders::ensure(&durable.second, second_index, top)?;
    Ok(())
}

/// The numbers of a blob's first-level (`ab`, 0..256) and second-level (`abcd`,
/// 0..65,536) folders.
fn fan_out_index(id: &BlobId) -> (usize, usize) {
    let hex = id.as_str();
    let number = |digits: &str| usize::from_str_radix(digits, 16).unwrap_or(0);
    (number(&hex[0..2]), number(&hex[0..4]))
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    loop {
        let name = format!("{:016x}", rand::random::<u64>());
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Store {
    /// Writes a blob durably and returns its id. Call before committing anything that
    /// refers to it.
    pub async fn put_blob(&self, data: Vec<u8>) -> Result<BlobId> {
        self.blobs.put(data).await
    }

    /// Readies a body for [`Store::deliver`]: a small one (or any, when blobs live in
    /// the database) is kept in memory and written by the delivery's own transaction,
    /// a larger one is written to its file now.
    pub async fn stage_blob(&self, data: Vec<u8>) -> Result<StagedBlob> {
        self.blobs.stage(data).await
    }

    pub async fn get_blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        self.blobs.get(id).await
    }

    /// The body of a message of `size` bytes. One that fits `INLINE_MAX` is looked
    /// for in the table first, where every delivered one is, and only then in the
    /// folder: trying the folder first cost a failed open, on the blocking pool.
    pub async fn get_message_blob(&self, id: &BlobId, size: i64) -> Result<Vec<u8>> {
        if let BlobStore::Folder { pool, .. } = &self.blobs
            && usize::try_from(size).is_ok_and(|size| size <= INLINE_MAX)
            && let Some(data) = get_row(pool, id, true).await?
        {
            return Ok(data);
        }
        self.blobs.get(id).await
    }

    pub fn blob_storage(&self) -> BlobStorage {
        self.blobs.storage()
    }
}
