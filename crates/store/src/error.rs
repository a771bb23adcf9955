use thiserror::Error;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The database refused or could not be reached. Protocol layers answer with a
    /// temporary failure: nothing was committed.
    #[error("database: {0}")]
    Database(sqlx::Error),
    /// The same, from a statement run with rusqlite (`direct_read`, `group_commit`).
    #[error("database: {0}")]
    Sqlite(rusqlite::Error),
    #[error("schema migration: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error("blob store: {0}")]
    Blob(std::io::Error),
    #[error("blob {0} is missing")]
    BlobMissing(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    Invalid(String),
    /// The store was closed (the node is stopping): nothing more is read or written.
    #[error("the store is closed")]
    Closed,
    /// A group commit failed; nothing in it was committed.
    #[error("commit failed: {0}")]
    CommitFailed(String),
}

// Written by hand rather than with `#[from]`, which would also make the inner error the
// `source()`: the message already includes it, and error reports would print it twice.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e)
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Blob(e)
    }
}

impl StoreError {
    /// True when retrying later may succeed (the database is away, a lock timed out,
    /// a serialisation conflict), as opposed to a request that can never succeed.
    pub fn is_temporary(&self) -> bool {
        match self {
            StoreError::Database(e) => !matches!(
                e,
                sqlx::Error::RowNotFound
                    | sqlx::Error::ColumnNotFound(_)
                    | sqlx::Error::TypeNotFound { .. }
            ),
            StoreError::Sqlite(e) => !matches!(
                e,
                rusqlite::Error::QueryReturnedNoRows
                    | rusqlite::Error::InvalidColumnIndex(_)
                    | rusqlite::Error::InvalidColumnName(_)
                    | rusqlite::Error::InvalidColumnType(..)
            ),
            StoreError::Blob(_) | StoreError::CommitFailed(_) | StoreError::Closed => true,
            _ => false,
        }
    }

    /// A write lost a race with another writer (PostgreSQL deadlock or serialisation
    /// failure, SQLite busy): the whole transaction can simply be run again.
    pub(crate) fn is_retryable_conflict(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(db)) = self else {
            return false;
        };
        matches!(
            db.code().as_deref(),
            Some("40001") | Some("40P01") | Some("5") | Some("517") | Some("6")
        )
    }

    pub(crate) fn unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(db)) if db.is_unique_violation())
    }
}
