//! A node's life in the cell: joining it (claim the node id, heartbeat, health
//! endpoints, jobs, metric samples) and leaving it in an order that loses nothing.
//!
//! Leaving, whatever the cause (`postcell drain` seen in the store, SIGUSR1, SIGTERM,
//! Ctrl-C):
//! 1. `/readyz` fails at once, and the next heartbeat marks the node draining;
//! 2. for a drain only, the node waits `drain.announce` so load balancers take it out of
//!    rotation while its listeners still accept (a SIGTERM or Ctrl-C cuts this short);
//! 3. its once-per-cell jobs stop and give their leases back;
//! 4. every listener closes (new connections are refused), idle sessions are told to
//!    go, and sessions in the middle of something get `drain.timeout` to finish; the
//!    relay claims nothing more and gets as long to finish the deliveries it holds,
//!    after which it is aborted;
//! 5. leases still held by its sessions are released, the heartbeat records a clean
//!    stop, and the process exits with status 0. A drained node stays stopped until it
//!    is started again; starting it puts it back in rotation.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use postcell_cell::{Drain, JobRunner, NodeIdentity, RenderMetrics};
use postcell_net::{CancellationToken, TaskTracker};
use postcell_store::Store;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

use crate::config::Config;

/// How long stopping jobs may take before the node moves on (a job checks between
/// batches whether to stop).
const JOBS_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Installs the metrics recorder for the whole process; the returned closure renders
/// what `/metrics` shows and what the samples store.
pub fn install_metrics() -> Result<RenderMetrics> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(Arc::new(move || handle.render()))
}

/// A node that has joined its cell.
pub struct Node {
    store: Store,
    drain: Drain,
    /// Stops the heartbeat (which then records the clean stop), the samples and the
    /// health endpoint: the last things to go.
    background: CancellationToken,
    heartbeat: JoinHandle<()>,
    health: Option<JoinHandle<()>>,
    jobs: Option<(CancellationToken, TaskTracker)>,
}

impl Node {
    /// Claims the node id in the store (refusing to start if another live process
    /// holds it) and starts the heartbeat, the health endpoint, the jobs and the
    /// metric samples.
    pub async fn join(
        config: &Config,
        store: Store,
        address: String,
        started_at: i64,
        http: Option<tokio::net::TcpListener>,
        metrics: RenderMetrics,
    ) -> Result<Node> {
        let identity = NodeIdentity {
            node_id: config.node_id(),
            instance: NodeIdentity::new_instance(),
            roles: config
                .roles()
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(","),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            address,
            started_at,
            heartbeat_interval: config.cell.heartbeat.0,
        };
        postcell_cell::registry::claim(&store, &identity)
            .await
            .with_context(|| format!("config file {}: key node.id", config.file.display()))?;
        let drain = Drain::new();
        metrics::gauge!("postcell_node_draining").set(0.0);
        let background = CancellationToken::new();
        let heartbeat = tokio::spawn(postcell_cell::registry::heartbeat(
            store.clone(),
            identity,
            drain.clone(),
            background.clone(),
        ));
        tokio::spawn(store.clone().run_indexer(
            config.search.indexer(),
            background.clone().cancelled_owned(),
        ));
        let health = http.map(|listener| {
            let health = postcell_cell::health::Health {
                store: store.clone(),
                drain: drain.clone(),
                metrics: metrics.clone(),
            };
            tokio::spawn(postcell_cell::health::serve(
                listener,
                health,
                background.clone(),
            ))
        });
        tokio::spawn(postcell_cell::samples::run(
            store.clone(),
            metrics,
            config.cell.metric_samples.0,
            background.clone(),
        ));
        let jobs = config.cell.jobs.then(|| {
            let stop = CancellationToken::new();
            let maintenance = &config.maintenance;
            let runner = JobRunner {
                store: store.clone(),
                owner: config.node_id(),
                lease_ttl: config.cell.job_lease.0,
                jobs: vec![
                    postcell_cell::maintenance::blob_collection(
                        maintenance.blob_gc_interval.0,
                        maintenance.blob_grace.0,
                    ),
                    postcell_cell::maintenance::expiry(
                        maintenance.expiry_interval.0,
                        maintenance.retention(),
                    ),
                ],
            };
            let tracker = runner.spawn(stop.clone());
            (stop, tracker)
        });
        Ok(Node {
            store,
            drain,
            background,
            heartbeat,
            health,
            jobs,
        })
    }

    /// Serves until a stop or a drain, then leaves in the order of the module docs.
    pub async fn run_until_stopped(
        self,
        config: &Config,
        shutdown: CancellationToken,
        tracker: TaskTracker,
        accept_loops: Vec<JoinHandle<()>>,
        relay: Option<JoinHandle<()>>,
    ) -> Result<()> {
        let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        let mut user1 = signal(SignalKind::user_defined1()).context("cannot watch SIGUSR1")?;
        let announce = tokio::select! {
            _ = terminate.recv() => { self.drain.start("SIGTERM"); false }
            _ = interrupt.recv() => { self.drain.start("SIGINT"); false }
            _ = user1.recv() => { self.drain.start("SIGUSR1"); true }
            why = self.drain.started() => { tracing::info!(reason = why, "drain requested"); true }
        };
        if announce {
            let wait = config.drain.announce.0;
            tracing::info!(
                ?wait,
                "draining: /readyz fails; listeners close after the announce time"
            );
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = terminate.recv() => tracing::info!("SIGTERM: closing the listeners now"),
                _ = interrupt.recv() => tracing::info!("SIGINT: closing the listeners now"),
            }
        }
        if let Some((stop, jobs)) = &self.jobs {
            stop.cancel();
            if tokio::time::timeout(JOBS_STOP_TIMEOUT, jobs.wait())
                .await
                .is_err()
            {
                tracing::warn!("jobs still stopping after {JOBS_STOP_TIMEOUT:?}; moving on");
            }
        }
        tracing::info!("no new connections; waiting for sessions to finish");
        let stopped = postcell_net::shutdown::stop_sessions(
            &shutdown,
            &tracker,
            accept_loops,
            config.drain.timeout.0,
        )
        .await;
        if stopped.still_running > 0 {
            tracing::warn!(
                sessions = stopped.still_running,
                "sessions still running after {:?}; they end with the process",
                config.drain.timeout.0
            );
        }
        // The relay stops claiming at once and finishes the deliveries it holds; each
        // outcome it records frees that entry's lease. One still sending after the
        // timeout is aborted, and the abort awaited, before any lease is released or the
        // clean stop recorded: nothing of this node may still talk to a remote once the
        // cell can believe it gone. Its queue leases are not given back (the remote may
        // have the message text already); they expire and another node tries again.
        if let Some(mut relay) = relay
            && tokio::time::timeout(config.drain.timeout.0, &mut relay)
                .await
                .is_err()
        {
            relay.abort();
            let _ = relay.await;
            tracing::warn!(
                "the relay was still sending after {:?}: aborted; its queue leases expire",
                config.drain.timeout.0
            );
        }
        match self.store.release_node_leases().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(leases = n, "released the leases this node still held"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot release leases; they expire by themselves")
            }
        }
        self.background.cancel();
        let _ = self.heartbeat.await;
        if let Some(health) = self.health {
            let _ = health.await;
        }
        Ok(())
    }
}
