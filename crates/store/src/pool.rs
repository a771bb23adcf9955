//! The two backends behind one enum, and the macro that runs one body on either.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{BackendConfig, Change, Result, StoreError};

/// Which engine holds the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// How SQLite makes a commit durable (`PRAGMA synchronous`). `Full` survives power
/// loss; `Normal` survives a crash of the process but may lose the last commits on
/// power loss. Postcell acknowledges mail only after a commit, so `Full` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    #[default]
    Full,
    Normal,
}

#[derive(Clone)]
pub(crate) enum Pool {
    /// SQLite allows one writer at a time; a dedicated single-connection writer pool
    /// queues writers in-process instead of having them spin on `SQLITE_BUSY`, and
    /// readers never wait for it (WAL).
    ///
    /// The search index lives in a file of its own beside the database (see
    /// [`search_index_path`]), with its own write lock: writing a message's trigrams
    /// takes about a millisecond, and in the database's one writer that time was taken
    /// from the deliveries waiting behind it. `index` is its writer, a single
    /// connection that attaches the index file and writes nothing else; readers attach
    /// it too, and the writer does not, so that its transactions never lock it.
    ///
    /// `direct` runs the reads of the hot paths without sqlx (see `direct_read`).
    Sqlite {
        reader: SqlitePool,
        writer: SqlitePool,
        index: SqlitePool,
        direct: std::sync::Arc<crate::direct_read::DirectReaders>,
    },
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the reader (`read`), writer (`write`) or search index
/// writer (`index`: on PostgreSQL, the one pool) of whichever backend is open. The body
/// is compiled once per backend.
macro_rules! dispatch {
    ($pool:expr, read, |$p:ident| $body:expr) => {
        match $pool {
            $crate::pool::Pool::Sqlite { reader: $p, .. } => $body,
            $crate::pool::Pool::Postgres($p) => $body,
        }
    };
    ($pool:expr, write, |$p:ident| $body:expr) => {
        match $pool {
            $crate::pool::Pool::Sqlite { writer: $p, .. } => $body,
            $crate::pool::Pool::Postgres($p) => $body,
        }
    };
    ($pool:expr, index, |$p:ident| $body:expr) => {
        match $pool {
            $crate::pool::Pool::Sqlite { index: $p, .. } => $body,
            $crate::pool::Pool::Postgres($p) => $body,
        }
    };
}

/// What differs between the backends inside a write transaction.
pub(crate) trait WritePool {
    type Db: sqlx::Database;

    /// Begins a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a transaction that reads before it writes cannot fail
    /// half-way when another process (the command line) wrote in between.
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;

    /// Queues change notices for other nodes, delivered by PostgreSQL only if the
    /// transaction commits. SQLite has no other nodes: the in-process feed suffices.
    fn notify_changes(
        &self,
        tx: &mut sqlx::Transaction<'static, Self::Db>,
        changes: &[Change],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl WritePool for SqlitePool {
    type Db = sqlx::Sqlite;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }

    async fn notify_changes(
        &self,
        _tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        _changes: &[Change],
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl WritePool for PgPool {
    type Db = sqlx::Postgres;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }

    async fn notify_changes(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        changes: &[Change],
    ) -> Result<(), sqlx::Error> {
        for change in changes {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::feed::PG_CHANNEL)
                .bind(change.to_payload())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

impl Pool {
    pub(crate) async fn open(config: &BackendConfig) -> Result<Pool> {
        match config {
            BackendConfig::Sqlite { path, durability } => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(match durability {
                        Durability::Full => SqliteSynchronous::Full,
                        Durability::Normal => SqliteSynchronous::Normal,
                    })
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    // A batch's savepoints keep their undo pages here rather than in a
                    // temporary file once they pass 64 KiB.
                    .pragma("temp_store", "memory");
                // The writer keeps the hot pages of the tables every delivery touches;
                // most of its checkpointing is done beside it (see `Checkpointer`).
                let writer_options = options
                    .clone()
                    .pragma("cache_size", WRITER_CACHE_KIB)
                    .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_FRAMES);
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(60))
                    .connect_with(writer_options)
                    .await?;
                let attach = AttachIndex::new(path, *durability);
                let reader = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(attach.hook())
                    .connect_with(options.clone())
                    .await?;
                let index = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(60))
                    .after_connect(attach.hook())
                    .connect_with(options)
                    .await?;
                Ok(Pool::Sqlite {
                    reader,
                    writer,
                    index,
                    direct: std::sync::Arc::new(crate::direct_read::DirectReaders::new(path)),
                })
            }
            BackendConfig::Postgres {
                url,
                max_connections,
            } => {
                let url = check_postgres_url(url)?;
                let options = PgConnectOptions::from_str(&url)
                    .map_err(|e| StoreError::Invalid(format!("PostgreSQL URL: {e}")))?
                    .application_name("postcell");
                // A dead server must show within seconds, as temporary failures: a
                // session waits at most PG_ACQUIRE_TIMEOUT for a connection, and every
                // pooled connection is pinged before use, so one that died with its
                // server is replaced rather than handed out.
                let pool = PgPoolOptions::new()
                    .max_connections(*max_connections)
                    .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                    .test_before_acquire(true)
                    .after_connect(|connection, _| {
                        Box::pin(async move { refuse_standby(connection).await })
                    })
                    .connect_with(options)
                    .await?;
                Ok(Pool::Postgres(pool))
            }
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pool::Sqlite { .. } => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) async fn migrate(&self) -> Result<()> {
        match self {
            Pool::Sqlite { writer, index, .. } => {
                sqlx::migrate!("./migrations/sqlite").run(writer).await?;
                crate::indexing::prepare_index_file(index, writer).await?;
            }
            Pool::Postgres(pool) => {
                // Several nodes may start at once; sqlx takes an advisory lock for us.
                sqlx::migrate!("./migrations/postgres").run(pool).await?
            }
        }
        Ok(())
    }

    pub(crate) async fn close(&self) {
        match self {
            Pool::Sqlite {
                reader,
                writer,
                index,
                direct,
            } => {
                direct.close();
                reader.close().await;
                index.close().await;
                writer.close().await;
            }
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// Where the search index of the database at `database` lives: beside it, named after
/// it (`postcell.db` → `postcell.search.db`). It holds nothing that cannot be rebuilt:
/// deleted, it is created empty and every message is indexed again.
pub fn search_index_path(database: &Path) -> PathBuf {
    let stem = database
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    database.with_file_name(format!("{stem}.search.db"))
}

/// Attaches the search index file to each new connection of a pool, as schema `search`.
#[derive(Clone)]
struct AttachIndex {
    path: std::sync::Arc<str>,
    synchronous: &'static str,
}

impl AttachIndex {
    fn new(database: &Path, durability: Durability) -> AttachIndex {
        AttachIndex {
            path: search_index_path(database).to_string_lossy().into(),
            // The index's rows and the queue's entries live in two files: an index
            // commit lost to a power cut after its queue entries were removed would
            // leave messages unsearchable, so the index is as durable as the mail.
            synchronous: match durability {
                Durability::Full => "FULL",
                Durability::Normal => "NORMAL",
            },
        }
    }

    fn hook(
        &self,
    ) -> impl for<'c> Fn(
        &'c mut sqlx::SqliteConnection,
        sqlx::pool::PoolConnectionMetadata,
    ) -> futures::future::BoxFuture<'c, Result<(), sqlx::Error>>
    + Send
    + Sync
    + 'static {
        let this = self.clone();
        move |connection, _| {
            let this = this.clone();
            Box::pin(async move {
                use sqlx::Executor;
                sqlx::query("ATTACH DATABASE $1 AS search")
                    .bind(&*this.path)
                    .execute(&mut *connection)
                    .await?;
                connection
                    .execute(sqlx::AssertSqlSafe(format!(
                        "PRAGMA search.journal_mode = WAL; PRAGMA search.synchronous = {};",
                        this.synchronous
                    )))
                    .await?;
                Ok(())
            })
        }
    }
}

/// The writer's page cache, in KiB (negative `cache_size`: SQLite counts KiB then).
const WRITER_CACHE_KIB: &str = "-16384";

/// How often the WAL is copied back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The WAL length (4 KiB pages) past which the writer checkpoints after a commit. Only
/// a writer starting after a checkpoint has copied every page rewinds the WAL, and
/// under steady load the task below is always a little behind, so without this the
/// file would grow as long as mail kept coming. By then the task has copied nearly
/// every page: the writer's checkpoint is short, and the next transaction rewinds.
const WRITER_CHECKPOINT_FRAMES: &str = "8192";

/// SQLite copies the WAL back into the database (a checkpoint) inside the commit that
/// pushes the WAL past 1,000 pages: the writer's, which then waits for the copy and an
/// fsync of the database file, with the whole next batch of deliveries behind it. This
/// task does that copying instead, with passive checkpoints (beside the writer, never
/// blocking it or readers) on a reader connection; the writer's own are put off to
/// `WRITER_CHECKPOINT_FRAMES`.
pub(crate) struct Checkpointer {
    task: tokio::task::AbortHandle,
}

impl Checkpointer {
    pub(crate) fn start(reader: SqlitePool) -> Checkpointer {
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // The search index file's WAL too, though only its own writer waits
                // for its checkpoints.
                let done: std::result::Result<(i64, i64, i64), sqlx::Error> =
                    match sqlx::query("PRAGMA search.wal_checkpoint(PASSIVE)")
                        .execute(&reader)
                        .await
                    {
                        Ok(_) => {
                            sqlx::query_as("PRAGMA main.wal_checkpoint(PASSIVE)")
                                .fetch_one(&reader)
                                .await
                        }
                        Err(e) => Err(e),
                    };
                match done {
                    Ok((_, wal_frames, _)) => {
                        metrics::gauge!("postcell_store_wal_frames").set(wal_frames as f64)
                    }
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
                }
            }
        })
        .abort_handle();
        Checkpointer { task }
    }

    pub(crate) fn stop(&self) {
        self.task.abort();
    }
}

/// How long a caller waits for a PostgreSQL connection before it gets an error (and
/// its client a temporary failure).
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The driver takes one host; a list of hosts would fail later with a confusing name
/// lookup, so it is refused here with what to do instead. `target_session_attrs`,
/// which the driver does not know, is taken out: every connection is checked to be
/// on a primary anyway ([`refuse_standby`]).
fn check_postgres_url(url: &str) -> Result<String> {
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""))
        .unwrap_or("");
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hosts.contains(',') {
        return Err(StoreError::Invalid(
            "PostgreSQL URL: several hosts are not supported; point the URL at the \
             primary through a virtual IP or a Patroni-aware proxy (docs/cell.md)"
                .into(),
        ));
    }
    let Some((base, query)) = url.split_once('?') else {
        return Ok(url.to_owned());
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.starts_with("target_session_attrs="))
        .collect();
    Ok(if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    })
}

/// Postcell writes on every path that acknowledges mail, so a connection to a
/// read-only standby (a demoted primary after a failover) is refused at once rather
/// than failing each write later.
async fn refuse_standby(connection: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut *connection)
        .await?;
    if in_recovery {
        return Err(sqlx::Error::Configuration(
            "the PostgreSQL server is a read-only standby; Postcell needs the primary".into(),
        ));
    }
    Ok(())
}

/// Runs a write transaction again when it lost a race (deadlock, serialisation
/// failure, busy database). The closure must be safe to run again from the start.
pub(crate) async fn retry_conflicts<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if e.is_retryable_conflict() && tries < 5 => {
                tries += 1;
                tracing::debug!(error = %e, tries, "write conflict, retrying");
                tokio::time::sleep(Duration::from_millis(5 << tries)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_postgres_url;

    #[test]
    fn postgres_urls_take_one_host() {
        assert_eq!(
            check_postgres_url("postgres://u:p@db:5432/mail?sslmode=verify-full").unwrap(),
            "postgres://u:p@db:5432/mail?sslmode=verify-full"
        );
        assert_eq!(
            check_postgres_url("postgres://db/mail?target_session_attrs=read-write").unwrap(),
            "postgres://db/mail"
        );
        assert_eq!(
            check_postgres_url("postgres://db/mail?sslmode=require&target_session_attrs=primary")
                .unwrap(),
            "postgres://db/mail?sslmode=require"
        );
        let err = check_postgres_url("postgres://u@db1:5432,db2:5432/mail")
            .unwrap_err()
            .to_string();
        assert!(err.contains("several hosts"), "{err}");
    }
}
