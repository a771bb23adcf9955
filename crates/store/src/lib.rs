//! Postcell's store: every piece of state a node keeps, in SQLite (one node, the default)
//! or PostgreSQL (a cell of identical nodes), plus immutable message blobs, the change
//! feed, leases and the search index (`search`: FTS5 trigram or pg_trgm over the
//! decoded text of each blob).
//!
//! Callers see one [`Store`] whatever the backend; the backend is picked by
//! configuration, never by `cfg`. The SQL is written once with `$n` placeholders that
//! both engines accept, and [`dispatch!`] runs the same body against whichever pool
//! is open (compiled once per backend, written once).
//!
//! The concurrency rules this crate keeps (see `docs/design.md`):
//! 1. blob first, then the metadata that points to it;
//! 2. UID and MODSEQ come from the mailbox row in the same transaction as the insert;
//! 3. callers acknowledge only after the method that stores returns `Ok` (committed);
//! 4. change notices are hints published after commit; the tables are the truth;
//! 6. leases, not locks, across nodes;
//! 7. quota usage changes in the same transaction as the message rows.
//!
//! For a cell it also keeps the nodes' heartbeats and drain flags (`node`), the
//! record of once-per-cell jobs (`job`) and their work: collecting unreferenced blobs
//! without breaking rule 1 (`gc`) and expiring old rows (`expiry`), and the nodes'
//! metric samples (`metric`).

// The macros in these two are used by the modules after them.
#[macro_use]
mod pool;
#[macro_use]
mod log;
#[macro_use]
mod indexing;
#[macro_use]
mod search;

mod blob;
#[macro_use]
mod delivery;
mod direct_read;
mod directory;
mod dkim;
mod error;
mod expiry;
mod feed;
pub mod flags;
mod gc;
mod group_commit;
mod job;
mod lease;
mod mailbox;
#[macro_use]
mod maildrop;
mod message;
mod metric;
mod node;
mod queue;
mod settings;
mod snapshot;

pub use blob::{BlobId, BlobStorage, INLINE_MAX, StagedBlob};
pub use delivery::{Delivery, DeliveryOutcome, DeliveryTarget, RecipientOutcome};
pub use directory::{
    Account, AddressEntry, DomainRow, NewAccount, Quota, RecipientLookup, ScramCredentials,
};
pub use dkim::DkimKey;
pub use error::{Result, StoreError};
pub use expiry::{ExpiryReport, Retention};
pub use feed::{Change, ChangeFeed};
pub use gc::GcReport;
pub use indexing::IndexerSettings;
pub use job::{JobRun, now_ms};
pub use log::{DeliveryRecord, DeliveryStatus, Direction, LogEntry, LogQuery};
pub use mailbox::{DEFAULT_MAILBOXES, HIERARCHY_DELIMITER, Mailbox, SpecialUse};
pub use maildrop::MaildropMessage;
pub use message::{
    AppendOutcome, CopyOutcome, FlagChange, FlagOperation, FlagOutcome, MailboxChanges,
    MessageMeta, NewMessage, UidRanges,
};
pub use node::{Heartbeat, NodeRow, NodeState};
pub use pool::{Backend, Durability, search_index_path};
pub use queue::{Attempt, AttemptOutcome, OutboundEntry};
pub use search::{INDEX_VERSION, SearchDocument, SentDay, TextField, fold};
pub use settings::AccountSettings;
pub use snapshot::{MailboxCounts, MailboxSnapshot, MessageFlags};

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub backend: BackendConfig,
    pub blobs: BlobConfig,
    /// Identifies this node in leases, heartbeats and the delivery log.
    pub node_id: String,
}

#[derive(Debug, Clone)]
pub enum BackendConfig {
    Sqlite {
        path: PathBuf,
        durability: Durability,
    },
    Postgres {
        url: String,
        max_connections: u32,
    },
}

#[derive(Debug, Clone)]
pub enum BlobConfig {
    /// Content-addressed files under this folder (local, or a shared mount in a cell).
    Folder(PathBuf),
    /// Blob bodies in the `blobs` table of the state database.
    Database,
}

/// The store one node works with. Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct Store {
    pool: pool::Pool,
    blobs: blob::BlobStore,
    feed: ChangeFeed,
    node_id: std::sync::Arc<str>,
    /// SQLite only: deliveries that arrive together commit together.
    group_commit: Option<group_commit::GroupCommit>,
    /// SQLite only: copies the WAL back into the database beside the writer.
    checkpointer: Option<std::sync::Arc<pool::Checkpointer>>,
    activity: std::sync::Arc<indexing::Activity>,
}

impl Store {
    /// Opens (and creates, for SQLite) the store and brings its schema up to date.
    pub async fn open(config: &StoreConfig) -> Result<Store> {
        let pool = pool::Pool::open(&config.backend).await?;
        pool.migrate().await?;
        indexing::queue_outdated_index_rows(&pool).await?;
        let blobs = blob::BlobStore::open(&config.blobs, pool.clone()).await?;
        let feed = ChangeFeed::start(&pool).await?;
        let node_id: std::sync::Arc<str> = config.node_id.as_str().into();
        let (group_commit, checkpointer) = match &pool {
            pool::Pool::Sqlite { writer, reader, .. } => (
                Some(group_commit::GroupCommit::start(
                    writer.clone(),
                    node_id.clone(),
                )?),
                Some(std::sync::Arc::new(pool::Checkpointer::start(
                    reader.clone(),
                ))),
            ),
            pool::Pool::Postgres(_) => (None, None),
        };
        Ok(Store {
            pool,
            blobs,
            feed,
            node_id,
            group_commit,
            checkpointer,
            activity: Default::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The change feed: (mailbox, modseq) hints published after each commit.
    pub fn feed(&self) -> &ChangeFeed {
        &self.feed
    }

    /// Closes the pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.feed.stop();
        if let Some(group) = &self.group_commit {
            group.stop();
        }
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.stop();
        }
        self.pool.close().await;
    }
}

/// Seconds since the Unix epoch; the store keeps every time in this form.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
