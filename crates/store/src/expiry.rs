//! Expiry of old rows: expunge tombstones, delivery-log records, metric samples and
//! job runs past their retention. Deletes go in small batches so no transaction holds
//! locks for long while the cell keeps working.

use std::time::Duration;

use crate::pool::{WritePool, retry_conflicts};
use crate::{Result, Store, now};

/// Rows deleted per statement.
const BATCH: i64 = 5000;

/// How long each kind of row is kept.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Expunge tombstones (QRESYNC's memory of what vanished).
    pub expunged: Duration,
    pub delivery_log: Duration,
    pub metric_samples: Duration,
    pub job_runs: Duration,
}

/// How many rows one expiry run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpiryReport {
    pub expunged: u64,
    pub delivery_log: u64,
    pub metric_samples: u64,
    pub job_runs: u64,
}

impl std::fmt::Display for ExpiryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "expunged={} delivery_log={} metric_samples={} job_runs={}",
            self.expunged, self.delivery_log, self.metric_samples, self.job_runs
        )
    }
}

impl Store {
    /// Removes what is older than its retention. `keep_going` is asked between
    /// batches; when it says no, the run stops early.
    pub async fn expire(
        &self,
        retention: &Retention,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Result<ExpiryReport> {
        let at = now();
        let mut report = ExpiryReport {
            expunged: self
                .expire_tombstones(at - secs(retention.expunged), keep_going)
                .await?,
            ..ExpiryReport::default()
        };
        let tables = [
            ("delivery_log", "at", 1, retention.delivery_log),
            ("metric_samples", "at", 1, retention.metric_samples),
            ("job_runs", "started_ms", 1000, retention.job_runs),
        ];
        for (table, column, unit, keep) in tables {
            if !keep_going() {
                break;
            }
            let removed = self
                .delete_older(table, column, (at - secs(keep)) * unit, keep_going)
                .await?;
            match table {
                "delivery_log" => report.delivery_log = removed,
                "metric_samples" => report.metric_samples = removed,
                _ => report.job_runs = removed,
            }
        }
        Ok(report)
    }

    async fn delete_older(
        &self,
        table: &str,
        column: &str,
        cutoff: i64,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Result<u64> {
        // Table and column names come from the list above, never from input. Metric
        // samples have no id: a batch is a set of sampling times.
        let (key, pick) = if table == "metric_samples" {
            ("at", "DISTINCT at")
        } else {
            ("id", "id")
        };
        let sql = format!(
            "DELETE FROM {table} WHERE {key} IN
               (SELECT {pick} FROM {table} WHERE {column} < $1 LIMIT {BATCH})"
        );
        let mut removed = 0;
        loop {
            let n = dispatch!(&self.pool, write, |p| {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(cutoff)
                    .execute(p)
                    .await?
                    .rows_affected()
            });
            removed += n;
            if n == 0 || !keep_going() {
                return Ok(removed);
            }
        }
    }

    /// Tombstones carry no time of their own: this run stamps the ones it sees for the
    /// first time, and removes those stamped before `cutoff`, one mailbox per
    /// transaction, raising the mailbox's `expunged_purged_modseq` so QRESYNC knows its
    /// memory now starts there.
    async fn expire_tombstones(
        &self,
        cutoff: i64,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Result<u64> {
        let at = now();
        dispatch!(&self.pool, write, |p| {
            sqlx::query("UPDATE expunged SET expunged_at = $1 WHERE expunged_at = 0")
                .bind(at)
                .execute(p)
                .await?;
        });
        let mailboxes: Vec<i64> = dispatch!(&self.pool, read, |p| {
            sqlx::query_scalar(
                "SELECT DISTINCT mailbox_id FROM expunged WHERE expunged_at > 0 AND expunged_at < $1",
            )
            .bind(cutoff)
            .fetch_all(p)
            .await?
        });
        let mut removed = 0;
        for mailbox_id in mailboxes {
            if !keep_going() {
                break;
            }
            removed += retry_conflicts(|| async {
                dispatch!(&self.pool, write, |p| {
                    let mut tx = p.begin_write().await?;
                    sqlx::query(
                        "UPDATE mailboxes SET expunged_purged_modseq = CASE
                           WHEN m.purged > expunged_purged_modseq THEN m.purged
                           ELSE expunged_purged_modseq END
                         FROM (SELECT MAX(modseq) AS purged FROM expunged
                               WHERE mailbox_id = $1 AND expunged_at > 0 AND expunged_at < $2) m
                         WHERE id = $1 AND m.purged IS NOT NULL",
                    )
                    .bind(mailbox_id)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?;
                    let n = sqlx::query(
                        "DELETE FROM expunged
                         WHERE mailbox_id = $1 AND expunged_at > 0 AND expunged_at < $2",
                    )
                    .bind(mailbox_id)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    tx.commit().await?;
                    Ok(n)
                })
            })
            .await?;
        }
        Ok(removed)
    }
}

impl Store {
    /// The MODSEQ up to which a mailbox's tombstones were purged (0: none yet).
    pub async fn expunged_purged_modseq(&self, mailbox_id: i64) -> Result<i64> {
        let modseq = dispatch!(&self.pool, read, |p| {
            sqlx::query_scalar("SELECT expunged_purged_modseq FROM mailboxes WHERE id = $1")
                .bind(mailbox_id)
                .fetch_optional(p)
                .await?
        });
        Ok(modseq.unwrap_or(0))
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2000)
}
