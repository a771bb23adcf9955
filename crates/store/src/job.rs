//! The record of once-per-cell jobs: one row per run, with the node that ran it, so
//! the runner knows when a job last ran anywhere in the cell and an operator can see
//! which node did what (`postcell status`).

use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    pub node: String,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub outcome: Option<String>,
    pub detail: Option<String>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Records that this node starts a run of `job`; returns the run's id.
    pub async fn job_started(&self, job: &str) -> Result<i64> {
        let id = dispatch!(&self.pool, write, |p| {
            sqlx::query_scalar(
                "INSERT INTO job_runs (job, node, started_ms) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(job)
            .bind(self.node_id.as_ref())
            .bind(now_ms())
            .fetch_one(p)
            .await?
        });
        Ok(id)
    }

    pub async fn job_finished(&self, run_id: i64, outcome: &str, detail: &str) -> Result<()> {
        dispatch!(&self.pool, write, |p| {
            sqlx::query(
                "UPDATE job_runs SET finished_ms = $2, outcome = $3, detail = $4 WHERE id = $1",
            )
            .bind(run_id)
            .bind(now_ms())
            .bind(outcome)
            .bind(detail)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// When `job` last started anywhere in the cell (milliseconds), if ever.
    pub async fn job_last_started(&self, job: &str) -> Result<Option<i64>> {
        let last = dispatch!(&self.pool, read, |p| {
            sqlx::query_scalar("SELECT MAX(started_ms) FROM job_runs WHERE job = $1")
                .bind(job)
                .fetch_one(p)
                .await?
        });
        Ok(last)
    }

    /// The runs of every job, newest first.
    pub async fn job_runs(&self, limit: i64) -> Result<Vec<JobRun>> {
        let runs = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, JobRun>(
                "SELECT id, job, node, started_ms, finished_ms, outcome, detail
                 FROM job_runs ORDER BY started_ms DESC, id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        Ok(runs)
    }
}
