//! SQLite reads on the hot paths, run with rusqlite instead of through sqlx.
//!
//! Through sqlx each query on SQLite is a command sent to the connection's own
//! thread, its rows sent back one by one over a channel, and, when the pooled
//! connection is given back, a task spawned to ping that thread once more. A one-row
//! lookup that SQLite answers in 3 µs took 40 to 55 µs that way, and an IMAP command
//! makes several. Here a connection is taken from a list, used, and put back:
//!
//! - [`DirectReaders::lookup`] runs on the calling thread. It is for reads through an
//!   index that return a bounded number of rows (a mailbox by name, a message by UID,
//!   a recipient): they take microseconds when the pages are cached, which is less
//!   than a hand-off to another thread would.
//! - [`DirectReaders::scan`] runs on the blocking pool, for reads whose cost grows
//!   with the mailbox (a listing of every message, a search), which must not hold a
//!   runtime thread for milliseconds.
//!
//! The connections are readers of the WAL: they never wait for the writer, and the
//! writer never waits for them. Each keeps its page cache for as long as the store is
//! open. They are opened with the same bundled SQLite library as sqlx's (rusqlite and
//! sqlx share one `libsqlite3-sys`), so file locks and the WAL index are shared
//! correctly within the process.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql};

use crate::{Result, StoreError};

/// How many scans run at once; the others wait for one to end. Lookups are not
/// counted: each runs to its end on the thread that asked, so there are never more
/// of them at once than threads.
const MAX_SCANS: usize = 4;

/// The most rows a read made on the calling thread may return: a few
/// microseconds each, from cached pages.
const LOOKUP_MAX_ROWS: u64 = 64;

/// Prepared statements kept per connection: every hot query, with room for the
/// UID-range variants of the FETCH listing.
const STATEMENT_CACHE: usize = 64;

pub(crate) struct DirectReaders {
    database: PathBuf,
    search_index: PathBuf,
    idle: Mutex<Vec<Connection>>,
    scans: Arc<tokio::sync::Semaphore>,
}

impl DirectReaders {
    pub(crate) fn new(database: &Path) -> DirectReaders {
        DirectReaders {
            database: database.to_owned(),
            search_index: crate::pool::search_index_path(database),
            idle: Mutex::new(Vec::new()),
            scans: Arc::new(tokio::sync::Semaphore::new(MAX_SCANS)),
        }
    }

    /// Runs a short read on this thread.
    pub(crate) fn lookup<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let connection = self.take()?;
        let result = read(&connection);
        self.give_back(connection);
        result
    }

    /// Runs a read whose cost grows with the data on the blocking pool.
    pub(crate) async fn scan<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let permit = Arc::clone(&self.scans)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let this = Arc::clone(self);
        let ran = tokio::task::spawn_blocking(move || {
            let result = this.lookup(read);
            drop(permit);
            result
        })
        .await;
        ran.map_err(|e| StoreError::Invalid(format!("a read stopped: {e}")))?
    }

    /// Runs a read of about `rows` rows as a lookup when they are few, else as a scan.
    pub(crate) async fn read_rows<T: Send + 'static>(
        self: &Arc<Self>,
        rows: u64,
        read: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if rows <= LOOKUP_MAX_ROWS {
            self.lookup(read)
        } else {
            self.scan(read).await
        }
    }

    /// Closes the idle connections; the ones in use close when their read ends.
    pub(crate) fn close(&self) {
        self.scans.close();
        self.lock().clear();
    }

    fn take(&self) -> Result<Connection> {
        if self.scans.is_closed() {
            return Err(StoreError::Closed);
        }
        match self.lock().pop() {
            Some(connection) => Ok(connection),
            None => Ok(self.open()?),
        }
    }

    fn give_back(&self, connection: Connection) {
        if !self.scans.is_closed() {
            self.lock().push(connection);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // The list holds no invariant a panic could break half-way.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let connection = Connection::open_with_flags(
            &self.database,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Readers wait for nothing in WAL mode but the recovery of a WAL left by a
        // crash, which the first connection of the process does.
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        connection.execute(
            "ATTACH DATABASE ?1 AS search",
            [self.search_index.to_string_lossy()],
        )?;
        connection.pragma_update(None, "query_only", true)?;
        Ok(connection)
    }
}

/// Named parameters, as `rusqlite::named_params!` writes them.
pub(crate) type Params<'a> = &'a [(&'a str, &'a dyn ToSql)];

/// The row `sql` finds with `params`, if any, through the connection's statement cache.
pub(crate) fn optional_row<T>(
    db: &Connection,
    sql: &str,
    params: Params<'_>,
    map: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    Ok(db.prepare_cached(sql)?.query_row(params, map).optional()?)
}

/// Every row `sql` finds with `params`, mapped, in order, through the statement cache.
pub(crate) fn all_rows<T>(
    db: &Connection,
    sql: &str,
    params: Params<'_>,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut query = db.prepare_cached(sql)?;
    let rows = query.query_map(params, map)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}
