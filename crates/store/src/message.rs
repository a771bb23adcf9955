//! Messages in mailboxes, as IMAP needs them: listing, changes since a MODSEQ, flags,
//! APPEND, COPY, MOVE and EXPUNGE. Every change takes the mailbox's next MODSEQ in the
//! same transaction (rule 2) and publishes a hint after commit (rule 4).

use rusqlite::named_params;
use sqlx::Row;
use sqlx::postgres::PgPool;

use crate::direct_read::{Params, all_rows, optional_row};
use crate::mailbox::mailbox_not_found;
use crate::pool::{Pool, WritePool, retry_conflicts};
use crate::{BlobId, Change, Result, Store, StoreError, now};

/// A set of UIDs as inclusive ranges, e.g. `[(1, 3), (7, 7)]` for `1:3,7`. Ranges are
/// written into SQL as integers, so they need no placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UidRanges(pub Vec<(i64, i64)>);

impl UidRanges {
    pub fn all() -> UidRanges {
        UidRanges(vec![(1, i64::MAX)])
    }

    pub fn from_uids(uids: &[i64]) -> UidRanges {
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut ranges: Vec<(i64, i64)> = Vec::new();
        for uid in sorted {
            match ranges.last_mut() {
                Some((_, hi)) if *hi + 1 == uid => *hi = uid,
                _ => ranges.push((uid, uid)),
            }
        }
        UidRanges(ranges)
    }

    /// How many UIDs the ranges span (whether or not messages have them).
    pub(crate) fn span(&self) -> u64 {
        self.0
            .iter()
            .map(|&(lo, hi)| lo.abs_diff(hi).saturating_add(1))
            .fold(0, u64::saturating_add)
    }

    /// `(uid BETWEEN a AND b OR ...)`; `FALSE` for an empty set.
    fn sql(&self) -> String {
        self.sql_for("uid")
    }

    /// The same test on another column name (`m.uid` in a join).
    pub(crate) fn sql_for(&self, column: &str) -> String {
        if self.0.is_empty() {
            return "(1 = 0)".to_owned();
        }
        let terms: Vec<String> = self
            .0
            .iter()
            .map(|(lo, hi)| {
                let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                if lo == hi {
                    format!("{column} = {lo}")
                } else {
                    format!("{column} BETWEEN {lo} AND {hi}")
                }
            })
            .collect();
        format!("({})", terms.join(" OR "))
    }
}

/// What a message row holds, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: i64,
    pub modseq: i64,
    /// System flags as bits (see [`crate::flags`]).
    pub flags: i64,
    /// Keywords, space separated, sorted.
    pub keywords: String,
    pub size: i64,
    pub internal_date: i64,
    pub blob_id: BlobId,
}

/// Changes in a mailbox since a MODSEQ: rows changed or added, and UIDs expunged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailboxChanges {
    pub changed: Vec<MessageMeta>,
    pub expunged: Vec<i64>,
    pub highest_modseq: i64,
    /// The mailbox's UIDNEXT as of the same read.
    pub uid_next: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOperation {
    Add,
    Remove,
    Replace,
}

/// A STORE: which flags, how, and (CONDSTORE) only on messages not modified since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    pub operation: FlagOperation,
    pub flags: i64,
    pub keywords: Vec<String>,
    pub unchanged_since: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlagOutcome {
    /// Messages whose flags changed, with their new state and MODSEQ.
    pub updated: Vec<MessageMeta>,
    /// UIDs skipped because they changed after `unchanged_since` (RFC 7162 MODIFIED).
    pub modified: Vec<i64>,
}

/// A message for [`Store::append`]; its blob must already be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub blob_id: BlobId,
    pub size: i64,
    pub flags: i64,
    pub keywords: Vec<String>,
    pub internal_date: i64,
    pub summary: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    Appended {
        uid_validity: i64,
        uid: i64,
        modseq: i64,
    },
    OverQuota,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutcome {
    /// `(source UID, new UID)` pairs in source UID order, for COPYUID.
    Copied {
        uid_validity: i64,
        pairs: Vec<(i64, i64)>,
    },
    OverQuota,
}

macro_rules! meta_columns {
    () => {
        "uid, modseq, flags, keywords, size, internal_date, blob_id"
    };
}

const META_COLUMNS: &str = meta_columns!();

const CHANGES_COUNTERS: &str = "SELECT highest_modseq, uid_next FROM mailboxes WHERE id = $1";

const CHANGED_MESSAGES: &str = concat!(
    "SELECT ",
    meta_columns!(),
    " FROM messages WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid"
);

pub(crate) const EXPUNGED_SINCE: &str =
    "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid";

fn meta_from_row<R: Row>(row: &R) -> Result<MessageMeta>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let blob: String = row.try_get("blob_id")?;
    Ok(MessageMeta {
        uid: row.try_get("uid")?,
        modseq: row.try_get("modseq")?,
        flags: row.try_get("flags")?,
        keywords: row.try_get("keywords")?,
        size: row.try_get("size")?,
        internal_date: row.try_get("internal_date")?,
        blob_id: BlobId::parse(&blob)?,
    })
}

fn meta_from_sqlite(row: &rusqlite::Row<'_>) -> Result<MessageMeta> {
    let blob: String = row.get("blob_id")?;
    Ok(MessageMeta {
        uid: row.get("uid")?,
        modseq: row.get("modseq")?,
        flags: row.get("flags")?,
        keywords: row.get("keywords")?,
        size: row.get("size")?,
        internal_date: row.get("internal_date")?,
        blob_id: BlobId::parse(&blob)?,
    })
}

/// Every row `query` finds with `params`, as metadata.
fn metas_of(query: &mut rusqlite::Statement<'_>, params: Params<'_>) -> Result<Vec<MessageMeta>> {
    let mut rows = query.query(params)?;
    let mut metas = Vec::new();
    while let Some(row) = rows.next()? {
        metas.push(meta_from_sqlite(row)?);
    }
    Ok(metas)
}

/// The mailbox's highest MODSEQ and UIDNEXT, read together.
fn changes_counters(db: &rusqlite::Connection, mailbox_id: i64) -> Result<(i64, i64)> {
    optional_row(
        db,
        CHANGES_COUNTERS,
        named_params! {"$1": mailbox_id},
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?
    .ok_or_else(|| mailbox_not_found(mailbox_id))
}

const MESSAGE_WITH_BODY: &str =
    "SELECT m.uid, m.modseq, m.flags, m.keywords, m.size, m.internal_date, m.blob_id, b.data
       FROM messages m LEFT JOIN blobs b ON b.id = m.blob_id
      WHERE m.mailbox_id = $1 AND m.uid = $2";

/// [`Store::changes_since`] on PostgreSQL: the three reads in one transaction, so the
/// MODSEQ matches the rows.
async fn changes_on_postgres(p: &PgPool, mailbox_id: i64, since: i64) -> Result<MailboxChanges> {
    let mut tx = p.begin().await?;
    let (highest_modseq, uid_next): (i64, i64) = sqlx::query_as(CHANGES_COUNTERS)
        .bind(mailbox_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| mailbox_not_found(mailbox_id))?;
    let changed = sqlx::query(CHANGED_MESSAGES)
        .bind(mailbox_id)
        .bind(since)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(meta_from_row)
        .collect::<Result<Vec<_>>>()?;
    let expunged = sqlx::query_scalar(EXPUNGED_SINCE)
        .bind(mailbox_id)
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(MailboxChanges {
        changed,
        expunged,
        highest_modseq,
        uid_next,
    })
}

/// Keywords after a change, sorted and without duplicates.
fn apply_keywords(current: &str, change: &FlagChange) -> String {
    let mut words: Vec<&str> = match change.operation {
        FlagOperation::Replace => Vec::new(),
        _ => current.split(' ').filter(|w| !w.is_empty()).collect(),
    };
    match change.operation {
        FlagOperation::Add | FlagOperation::Replace => {
            words.extend(change.keywords.iter().map(String::as_str))
        }
        FlagOperation::Remove => {
            words.retain(|w| !change.keywords.iter().any(|k| k.eq_ignore_ascii_case(w)))
        }
    }
    words.sort_unstable_by_key(|w| w.to_ascii_lowercase());
    words.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    words.join(" ")
}

const NEXT_MODSEQ: &str = "UPDATE mailboxes SET highest_modseq = highest_modseq + 1
     WHERE id = $1 AND account_id = $2 RETURNING highest_modseq";

const SET_FLAGS: &str = "UPDATE messages SET flags = $3, keywords = $4, modseq = $5
     WHERE mailbox_id = $1 AND uid = $2";

/// What `change` does to `metas` with the new `modseq`: the messages it changes, with
/// their new state, and those it skips as modified after UNCHANGEDSINCE.
fn flag_changes(metas: Vec<MessageMeta>, change: &FlagChange, modseq: i64) -> FlagOutcome {
    let mut outcome = FlagOutcome::default();
    for mut meta in metas {
        if change
            .unchanged_since
            .is_some_and(|since| meta.modseq > since)
        {
            outcome.modified.push(meta.uid);
            continue;
        }
        let flags = apply_flags(meta.flags, change);
        let keywords = apply_keywords(&meta.keywords, change);
        if flags == meta.flags && keywords == meta.keywords {
            continue;
        }
        (meta.flags, meta.keywords, meta.modseq) = (flags, keywords, modseq);
        outcome.updated.push(meta);
    }
    outcome
}

/// A flag change on SQLite, inside the group commit's savepoint: the statements of
/// the PostgreSQL path of [`Store::store_flags`], with the mailbox's change when
/// anything changed (else the savepoint is rolled back).
fn store_flags_on(
    db: &rusqlite::Connection,
    account_id: i64,
    mailbox_id: i64,
    select: &str,
    change: &FlagChange,
) -> Result<(FlagOutcome, Option<Change>)> {
    let modseq: i64 = optional_row(
        db,
        NEXT_MODSEQ,
        named_params! {"$1": mailbox_id, "$2": account_id},
        |row| row.get(0),
    )?
    .ok_or_else(|| mailbox_not_found(mailbox_id))?;
    // Read whole before anything is written, as on PostgreSQL.
    let metas = metas_of(&mut db.prepare(select)?, named_params! {"$1": mailbox_id})?;
    let outcome = flag_changes(metas, change, modseq);
    let mut set = db.prepare_cached(SET_FLAGS)?;
    for meta in &outcome.updated {
        set.execute(named_params! {
            "$1": mailbox_id, "$2": meta.uid, "$3": meta.flags, "$4": &meta.keywords,
            "$5": modseq,
        })?;
    }
    let changed = (!outcome.updated.is_empty()).then_some(Change::Mailbox {
        account_id,
        mailbox_id,
        modseq,
    });
    Ok((outcome, changed))
}

fn apply_flags(current: i64, change: &FlagChange) -> i64 {
    match change.operation {
        FlagOperation::Add => current | change.flags,
        FlagOperation::Remove => current & !change.flags,
        FlagOperation::Replace => change.flags,
    }
}

impl Store {
    /// Every message of a mailbox in UID order (SELECT).
    pub async fn mailbox_messages(&self, mailbox_id: i64) -> Result<Vec<MessageMeta>> {
        self.message_meta(mailbox_id, &UidRanges::all()).await
    }

    /// The messages of a mailbox with UIDs in `uids`, in UID order.
    pub async fn message_meta(
        &self,
        mailbox_id: i64,
        uids: &UidRanges,
    ) -> Result<Vec<MessageMeta>> {
        self.activity.record();
        let sql = format!(
            "SELECT {META_COLUMNS} FROM messages WHERE mailbox_id = $1 AND {} ORDER BY uid",
            uids.sql()
        );
        match &self.pool {
            Pool::Sqlite { direct, .. } => {
                direct
                    .read_rows(uids.span(), move |db| {
                        // The ranges are in the text: a statement of its own each time,
                        // not one to keep in the cache.
                        metas_of(&mut db.prepare(&sql)?, named_params! {"$1": mailbox_id})
                    })
                    .await
            }
            Pool::Postgres(p) => sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(mailbox_id)
                .fetch_all(p)
                .await?
                .iter()
                .map(meta_from_row)
                .collect(),
        }
    }

    /// One message's metadata and body. A body kept in the `blobs` table (most under
    /// `INLINE_MAX`) comes in the same query; this is what a FETCH of bodies reads per
    /// message, and clients that download a mailbox fetch one message per command.
    pub async fn message_with_body(
        &self,
        mailbox_id: i64,
        uid: i64,
    ) -> Result<Option<(MessageMeta, Vec<u8>)>> {
        self.activity.record();
        let found = match &self.pool {
            Pool::Sqlite { direct, .. } => {
                let read = move |db: &rusqlite::Connection| {
                    let mut query = db.prepare_cached(MESSAGE_WITH_BODY)?;
                    let mut rows = query.query(named_params! {"$1": mailbox_id, "$2": uid})?;
                    match rows.next()? {
                        Some(row) => {
                            let data: Option<Vec<u8>> = row.get("data")?;
                            Ok(Some((meta_from_sqlite(row)?, data)))
                        }
                        None => Ok(None),
                    }
                };
                if self.blobs.in_files() {
                    direct.lookup(read)?
                } else {
                    direct.scan(read).await?
                }
            }
            Pool::Postgres(p) => {
                let row = sqlx::query(MESSAGE_WITH_BODY)
                    .bind(mailbox_id)
                    .bind(uid)
                    .fetch_optional(p)
                    .await?;
                match row {
                    Some(row) => {
                        let data: Option<Vec<u8>> = row.try_get("data")?;
                        Some((meta_from_row(&row)?, data))
                    }
                    None => None,
                }
            }
        };
        let Some((meta, data)) = found else {
            return Ok(None);
        };
        let body = match data {
            Some(data) => data,
            None => self.get_blob(&meta.blob_id).await?,
        };
        Ok(Some((meta, body)))
    }

    /// What changed in a mailbox after `since` (RFC 7162 CHANGEDSINCE, QRESYNC).
    pub async fn changes_since(&self, mailbox_id: i64, since: i64) -> Result<MailboxChanges> {
        self.activity.record();
        let direct = match &self.pool {
            Pool::Sqlite { direct, .. } => direct,
            Pool::Postgres(p) => return changes_on_postgres(p, mailbox_id, since).await,
        };
        // Every change takes the mailbox's next MODSEQ (rule 2): when it has not moved,
        // nothing changed, which is the common answer and a lookup.
        let (highest_modseq, uid_next) = direct.lookup(|db| changes_counters(db, mailbox_id))?;
        if highest_modseq <= since {
            return Ok(MailboxChanges {
                changed: Vec::new(),
                expunged: Vec::new(),
                highest_modseq,
                uid_next,
            });
        }
        direct
            .scan(move |db| {
                // One snapshot for all three reads, so the MODSEQ matches the rows.
                let tx = db.unchecked_transaction()?;
                let (highest_modseq, uid_next) = changes_counters(&tx, mailbox_id)?;
                let since_params = named_params! {"$1": mailbox_id, "$2": since};
                let changed = metas_of(&mut *tx.prepare_cached(CHANGED_MESSAGES)?, since_params)?;
                let expunged = all_rows(&tx, EXPUNGED_SINCE, since_params, |row| row.get(0))?;
                tx.finish()?;
                Ok(MailboxChanges {
                    changed,
                    expunged,
                    highest_modseq,
                    uid_next,
                })
            })
            .await
    }

    /// Changes flags on the messages in `uids` with one new MODSEQ (STORE).
    pub async fn store_flags(
        &self,
        account_id: i64,
        mailbox_id: i64,
        uids: &UidRanges,
        change: &FlagChange,
    ) -> Result<FlagOutcome> {
        self.activity.record();
        let select = format!(
            "SELECT {META_COLUMNS} FROM messages WHERE mailbox_id = $1 AND {} ORDER BY uid",
            uids.sql()
        );
        let (outcome, modseq) = match &self.group_commit {
            // A flag change is small: it shares the deliveries' commit (and fsync).
            Some(group) => {
                let change = change.clone();
                group
                    .write(move |db| {
                        let done = store_flags_on(db, account_id, mailbox_id, &select, &change)?;
                        let keep = done.1.is_some();
                        Ok((done, keep))
                    })
                    .await?
            }
            None => {
                retry_conflicts(|| async {
                    dispatch!(&self.pool, write, |p| {
                        let mut tx = p.begin_write().await?;
                        // The mailbox row lock serialises every writer of this mailbox.
                        let modseq: i64 = sqlx::query_scalar(NEXT_MODSEQ)
                            .bind(mailbox_id)
                            .bind(account_id)
                            .fetch_optional(&mut *tx)
                            .await?
                            .ok_or_else(|| mailbox_not_found(mailbox_id))?;
                        let metas = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
                            .bind(mailbox_id)
                            .fetch_all(&mut *tx)
                            .await?
                            .iter()
                            .map(meta_from_row)
                            .collect::<Result<Vec<_>>>()?;
                        let outcome = flag_changes(metas, change, modseq);
                        for meta in &outcome.updated {
                            sqlx::query(SET_FLAGS)
                                .bind(mailbox_id)
                                .bind(meta.uid)
                                .bind(meta.flags)
                                .bind(&meta.keywords)
                                .bind(modseq)
                                .execute(&mut *tx)
                                .await?;
                        }
                        if outcome.updated.is_empty() {
                            // Nothing changed: give the MODSEQ back rather than burn one.
                            tx.rollback().await?;
                            return Ok((outcome, None));
                        }
                        let change = Change::Mailbox {
                            account_id,
                            mailbox_id,
                            modseq,
                        };
                        p.notify_changes(&mut tx, &[change]).await?;
                        tx.commit().await?;
                        Ok((outcome, Some(change)))
                    })
                })
                .await?
            }
        };
        if let Some(change) = modseq {
            self.feed.publish(&[change]);
        }
        Ok(outcome)
    }

    /// Adds a message (its blob already written) to a mailbox (APPEND).
    pub async fn append(
        &self,
        account_id: i64,
        mailbox_id: i64,
        message: &NewMessage,
    ) -> Result<AppendOutcome> {
        let (blob_id, size, flags, internal_date) = (
            &message.blob_id,
            message.size,
            message.flags,
            message.internal_date,
        );
        let keywords = apply_keywords(
            "",
            &FlagChange {
                operation: FlagOperation::Add,
                flags,
                keywords: message.keywords.clone(),
                unchanged_since: None,
            },
        );
        let (outcome, change) = retry_conflicts(|| async {
            dispatch!(&self.pool, write, |p| {
                let mut tx = p.begin_write().await?;
                let charged: Option<i64> = sqlx::query_scalar(
                    "UPDATE accounts SET used_bytes = used_bytes + $2
                     WHERE id = $1 AND (quota_bytes = 0 OR used_bytes + $2 <= quota_bytes) RETURNING id",
                )
                .bind(account_id)
                .bind(size)
                .fetch_optional(&mut *tx)
                .await?;
                if charged.is_none() {
                    tx.rollback().await?;
                    return Ok((AppendOutcome::OverQuota, None));
                }
                let (uid_validity, uid, modseq): (i64, i64, i64) = sqlx::query_as(
                    "UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
                     WHERE id = $1 AND account_id = $2
                     RETURNING uid_validity, uid_next - 1, highest_modseq",
                )
                .bind(mailbox_id)
                .bind(account_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox_id}")))?;
                sqlx::query(
                    "INSERT INTO messages (mailbox_id, uid, modseq, blob_id, size, internal_date, flags, keywords, summary)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(mailbox_id)
                .bind(uid)
                .bind(modseq)
                .bind(blob_id.as_str())
                .bind(size)
                .bind(internal_date)
                .bind(flags)
                .bind(&keywords)
                .bind(message.summary.as_deref())
                .execute(&mut *tx)
                .await?;
                queue_for_index!(tx, blob_id, now())?;
                let change = Change::Mailbox { account_id, mailbox_id, modseq };
                p.notify_changes(&mut tx, &[change]).await?;
                tx.commit().await?;
                Ok((AppendOutcome::Appended { uid_validity, uid, modseq }, Some(change)))
            })
        })
        .await?;
        if let Some(change) = change {
            self.feed.publish(&[change]);
            self.activity.record();
        }
        Ok(outcome)
    }

    /// Copies messages to another mailbox of the same account (COPY), or moves them
    /// (MOVE: the copies and the expunge in one transaction, RFC 6851).
    pub async fn copy_messages(
        &self,
        account_id: i64,
        source: i64,
        uids: &UidRanges,
        destination: i64,
        remove_source: bool,
    ) -> Result<CopyOutcome> {
        self.activity.record();
        let select = format!(
            "SELECT {META_COLUMNS} FROM messages WHERE mailbox_id = $1 AND {} ORDER BY uid",
            uids.sql()
        );
        let (outcome, changes) = retry_conflicts(|| async {
            dispatch!(&self.pool, write, |p| {
                let mut tx = p.begin_write().await?;
                let rows = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
                    .bind(source)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(meta_from_row)
                    .collect::<Result<Vec<_>>>()?;
                let added: i64 = if remove_source { 0 } else { rows.iter().map(|m| m.size).sum() };
                // Account, then mailboxes in id order: the order every writer locks in.
                let charged: Option<i64> = sqlx::query_scalar(
                    "UPDATE accounts SET used_bytes = used_bytes + $2
                     WHERE id = $1 AND (quota_bytes = 0 OR $2 = 0 OR used_bytes + $2 <= quota_bytes)
                     RETURNING id",
                )
                .bind(account_id)
                .bind(added)
                .fetch_optional(&mut *tx)
                .await?;
                if charged.is_none() {
                    tx.rollback().await?;
                    return Ok((CopyOutcome::OverQuota, Vec::new()));
                }
                let mut changes = Vec::new();
                let mut locked = vec![source, destination];
                locked.sort_unstable();
                locked.dedup();
                let mut state = std::collections::HashMap::new();
                for id in locked {
                    if id == source && !remove_source && id != destination {
                        continue;
                    }
                    let row: Option<(i64, i64, i64)> = sqlx::query_as(
                        "UPDATE mailboxes SET highest_modseq = highest_modseq + 1
                         WHERE id = $1 AND account_id = $2 RETURNING uid_validity, uid_next, highest_modseq",
                    )
                    .bind(id)
                    .bind(account_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let row = row.ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))?;
                    state.insert(id, row);
                }
                let (uid_validity, uid_next, modseq) = state[&destination];
                let mut pairs = Vec::with_capacity(rows.len());
                for (i, meta) in rows.iter().enumerate() {
                    let uid = uid_next + i as i64;
                    sqlx::query(
                        "INSERT INTO messages
                           (mailbox_id, uid, modseq, blob_id, size, internal_date, flags, keywords, message_id, summary)
                         SELECT $1, $2, $3, blob_id, size, internal_date, flags, keywords, message_id, summary
                         FROM messages WHERE mailbox_id = $4 AND uid = $5",
                    )
                    .bind(destination)
                    .bind(uid)
                    .bind(modseq)
                    .bind(source)
                    .bind(meta.uid)
                    .execute(&mut *tx)
                    .await?;
                    pairs.push((meta.uid, uid));
                }
                sqlx::query("UPDATE mailboxes SET uid_next = $2 WHERE id = $1")
                    .bind(destination)
                    .bind(uid_next + rows.len() as i64)
                    .execute(&mut *tx)
                    .await?;
                changes.push(Change::Mailbox { account_id, mailbox_id: destination, modseq });
                if remove_source && source != destination && !rows.is_empty() {
                    let (_, _, source_modseq) = state[&source];
                    let list = rows.iter().map(|m| m.uid.to_string()).collect::<Vec<_>>().join(",");
                    expunge_in_transaction!(tx, source, source_modseq, &list);
                    changes.push(Change::Mailbox { account_id, mailbox_id: source, modseq: source_modseq });
                }
                p.notify_changes(&mut tx, &changes).await?;
                tx.commit().await?;
                Ok((CopyOutcome::Copied { uid_validity, pairs }, changes))
            })
        })
        .await?;
        self.feed.publish(&changes);
        Ok(outcome)
    }

    /// The cached summaries of the messages in `uids`, in UID order (`None` where none
    /// was stored).
    pub async fn message_summaries(
        &self,
        mailbox_id: i64,
        uids: &UidRanges,
    ) -> Result<Vec<(i64, Option<Vec<u8>>)>> {
        self.activity.record();
        let sql = format!(
            "SELECT uid, summary FROM messages WHERE mailbox_id = $1 AND {} ORDER BY uid",
            uids.sql()
        );
        match &self.pool {
            Pool::Sqlite { direct, .. } => {
                direct
                    .read_rows(uids.span(), move |db| {
                        let mut query = db.prepare(&sql)?;
                        let rows = query
                            .query_map(named_params! {"$1": mailbox_id}, |row| {
                                Ok((row.get(0)?, row.get(1)?))
                            })?
                            .collect::<rusqlite::Result<_>>()?;
                        Ok(rows)
                    })
                    .await
            }
            Pool::Postgres(p) => Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(mailbox_id)
                .fetch_all(p)
                .await?),
        }
    }

    /// Stores a summary computed on demand for a message that had none.
    pub async fn set_message_summary(
        &self,
        mailbox_id: i64,
        uid: i64,
        summary: &[u8],
    ) -> Result<()> {
        dispatch!(&self.pool, write, |p| {
            sqlx::query("UPDATE messages SET summary = $3 WHERE mailbox_id = $1 AND uid = $2")
                .bind(mailbox_id)
                .bind(uid)
                .bind(summary)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Expunges the messages flagged `\Deleted` (within `uids`, for UID EXPUNGE) and
    /// returns their UIDs.
    pub async fn expunge_deleted(
        &self,
        account_id: i64,
        mailbox_id: i64,
        uids: &UidRanges,
    ) -> Result<Vec<i64>> {
        self.activity.record();
        let sql = format!(
            "SELECT uid FROM messages WHERE mailbox_id = $1 AND (flags & {}) <> 0 AND {} ORDER BY uid",
            crate::flags::DELETED,
            uids.sql()
        );
        let deleted: Vec<i64> = dispatch!(&self.pool, read, |p| {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(mailbox_id)
                .fetch_all(p)
                .await?
        });
        self.expunge_uids(account_id, mailbox_id, &deleted).await?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_ranges_compact_and_render() {
        assert_eq!(
            UidRanges::from_uids(&[5, 1, 2, 3, 9, 3]).0,
            vec![(1, 3), (5, 5), (9, 9)]
        );
        assert_eq!(
            UidRanges::from_uids(&[1, 2, 3]).sql(),
            "(uid BETWEEN 1 AND 3)"
        );
        assert_eq!(UidRanges(vec![(7, 4)]).sql(), "(uid BETWEEN 4 AND 7)");
        assert_eq!(UidRanges::default().sql(), "(1 = 0)");
    }

    #[test]
    fn keyword_changes_are_case_insensitive_sets() {
        let change = |operation, words: &[&str]| FlagChange {
            operation,
            flags: 0,
            keywords: words.iter().map(|w| w.to_string()).collect(),
            unchanged_since: None,
        };
        assert_eq!(
            apply_keywords(
                "$Junk work",
                &change(FlagOperation::Add, &["Work", "$label1"])
            ),
            "$Junk $label1 work"
        );
        assert_eq!(
            apply_keywords("$Junk work", &change(FlagOperation::Remove, &["WORK"])),
            "$Junk"
        );
        assert_eq!(
            apply_keywords("$Junk work", &change(FlagOperation::Replace, &["a"])),
            "a"
        );
    }
}
