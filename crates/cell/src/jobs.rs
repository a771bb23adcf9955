//! Periodic work that must run once per cell, each job under a lease in the store.
//!
//! Every node that takes part runs one loop per job. The node that holds the job's
//! lease (`job:NAME`) is its runner: it renews the lease every third of its time to
//! live and runs the job whenever `interval` has passed since the job last started
//! anywhere (the `job_runs` table). The others try to take the lease now and then;
//! they get it when the holder releases it (drain, stop) or dies and stops renewing.
//!
//! A holder that cannot renew (the lease was taken, or the store is unreachable) stops
//! the run at its next check and goes back to trying. Leases use the nodes' clocks, so
//! a stalled or clock-skewed node could overlap with its successor for a moment: the
//! jobs are written to be safe even then (collection sets blobs aside before deleting
//! them, expiry deletes are idempotent).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use postcell_store::{Store, StoreError, now_ms};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a job does: given the store and a token that is cancelled when it must stop
/// early, returns a one-line report for the record.
pub type JobWork = Arc<
    dyn Fn(Store, CancellationToken) -> BoxFuture<'static, Result<String, StoreError>>
        + Send
        + Sync,
>;

#[derive(Clone)]
pub struct Job {
    pub name: &'static str,
    pub interval: Duration,
    pub work: JobWork,
}

pub struct JobRunner {
    pub store: Store,
    /// The lease owner: this node's id, so a restarted node finds its own leases.
    pub owner: String,
    /// How long a lease lasts unrenewed: how soon a dead holder's job moves on.
    pub lease_ttl: Duration,
    pub jobs: Vec<Job>,
}

impl JobRunner {
    /// Runs every job's loop until `stop`; the returned tracker is done once every
    /// loop has ended and released its lease.
    pub fn spawn(self, stop: CancellationToken) -> TaskTracker {
        let tracker = TaskTracker::new();
        let runner = Arc::new(self);
        for job in runner.jobs.clone() {
            let runner = runner.clone();
            let stop = stop.clone();
            tracker.spawn(async move { runner.follow(job, stop).await });
        }
        tracker.close();
        tracker
    }

    fn lease(job: &Job) -> String {
        format!("job:{}", job.name)
    }

    /// Tries to become the job's runner, again and again.
    async fn follow(&self, job: Job, stop: CancellationToken) {
        let retry = (self.lease_ttl / 3).max(Duration::from_millis(500));
        let lease = Self::lease(&job);
        loop {
            match self
                .store
                .acquire_lease(&lease, &self.owner, self.lease_ttl)
                .await
            {
                Ok(true) => self.lead(&job, &lease, &stop).await,
                Ok(false) => {}
                Err(e) => tracing::debug!(job = job.name, error = %e, "cannot try the job lease"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(retry) => {}
            }
        }
    }

    /// Runs the job while the lease is ours; gives the lease back when it ends.
    async fn lead(&self, job: &Job, lease: &str, stop: &CancellationToken) {
        tracing::info!(job = job.name, "this node now runs the job");
        metrics::gauge!("postcell_job_leader", "job" => job.name).set(1.0);
        let halt = stop.child_token();
        let renewer = tokio::spawn(renew(
            self.store.clone(),
            lease.to_owned(),
            self.owner.clone(),
            self.lease_ttl,
            halt.clone(),
        ));
        let retry = (self.lease_ttl / 3).max(Duration::from_millis(500));
        while !halt.is_cancelled() {
            let wait = match self.store.job_last_started(job.name).await {
                Ok(None) => Some(Duration::ZERO),
                Ok(Some(last)) => {
                    let next = last + job.interval.as_millis() as i64;
                    Some(Duration::from_millis((next - now_ms()).max(0) as u64))
                }
                Err(e) => {
                    tracing::debug!(job = job.name, error = %e, "cannot read the job's last run");
                    None
                }
            };
            tokio::select! {
                _ = halt.cancelled() => break,
                _ = tokio::time::sleep(wait.unwrap_or(retry)) => {}
            }
            if wait.is_some() {
                self.run_once(job, &halt).await;
            }
        }
        renewer.abort();
        metrics::gauge!("postcell_job_leader", "job" => job.name).set(0.0);
        // Given back at once, so another node takes the job without waiting for the
        // lease to expire (a no-op if it went to someone else already).
        if let Err(e) = self.store.release_lease(lease, &self.owner).await {
            tracing::debug!(job = job.name, error = %e, "cannot release the job lease");
        }
        tracing::info!(job = job.name, "this node no longer runs the job");
    }

    async fn run_once(&self, job: &Job, halt: &CancellationToken) {
        let run = match self.store.job_started(job.name).await {
            Ok(run) => run,
            Err(e) => {
                tracing::warn!(job = job.name, error = %e, "cannot record the job's start");
                return;
            }
        };
        let started = std::time::Instant::now();
        let result = (job.work)(self.store.clone(), halt.clone()).await;
        let (outcome, detail) = match &result {
            Ok(report) if halt.is_cancelled() => ("cancelled", report.clone()),
            Ok(report) => ("ok", report.clone()),
            Err(e) => ("failed", e.to_string()),
        };
        metrics::counter!("postcell_job_runs_total", "job" => job.name, "outcome" => outcome)
            .increment(1);
        match &result {
            Ok(_) => {
                tracing::info!(job = job.name, outcome, %detail, elapsed = ?started.elapsed(), "job run")
            }
            Err(e) => tracing::warn!(job = job.name, error = %e, "job run failed"),
        }
        if let Err(e) = self.store.job_finished(run, outcome, &detail).await {
            tracing::warn!(job = job.name, error = %e, "cannot record the job's end");
        }
    }
}

/// Renews the lease every third of its life; cancels `halt` when it cannot.
async fn renew(store: Store, lease: String, owner: String, ttl: Duration, halt: CancellationToken) {
    let every = (ttl / 3).max(Duration::from_millis(300));
    loop {
        tokio::select! {
            _ = halt.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match store.renew_lease(&lease, &owner, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%lease, "job lease lost to another node");
                halt.cancel();
                return;
            }
            Err(e) => {
                tracing::warn!(%lease, error = %e, "cannot renew the job lease; stopping the job");
                halt.cancel();
                return;
            }
        }
    }
}
