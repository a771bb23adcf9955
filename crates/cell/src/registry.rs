//! The node registry: who this node is, and its heartbeat into the store.
//!
//! A **node id** is stable across restarts (configuration, or the host name). An
//! **instance** is one running process: `host/pid/random`. The store lets only one
//! live instance heartbeat under a node id, which is how a collision (two hosts with
//! the same name, a copied configuration) is caught: the second process waits up to
//! three heartbeat intervals for the first one's heartbeats to stop, and refuses to
//! start if they do not. A process that crashed on this very host is recognised at once
//! (its pid is gone), so a supervisor's quick restart after a SIGKILL does not wait.

use std::time::Duration;

use postcell_store::{Heartbeat, Store, StoreError};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::Drain;

#[derive(Debug, Error)]
pub enum CellError {
    #[error(
        "node id {id:?} is in use by another running process ({instance}, listening on \
         {address}, last heartbeat {age}s ago); give this node its own [node] id"
    )]
    NodeIdInUse {
        id: String,
        instance: String,
        address: String,
        age: i64,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What a node tells the cell about itself.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub node_id: String,
    /// `host/pid/random`, unique per process.
    pub instance: String,
    /// Comma-separated roles (`mx,imap,pop3,web`).
    pub roles: String,
    pub version: String,
    /// The listeners, `name=ip:port` separated by spaces.
    pub address: String,
    pub started_at: i64,
    pub heartbeat_interval: Duration,
}

impl NodeIdentity {
    /// A fresh instance id for this process.
    pub fn new_instance() -> String {
        format!(
            "{}/{}/{:08x}",
            host_name(),
            std::process::id(),
            rand::random::<u32>()
        )
    }

    fn beat(&self, draining: bool) -> Heartbeat<'_> {
        Heartbeat {
            instance: &self.instance,
            roles: &self.roles,
            version: &self.version,
            address: &self.address,
            started_at: self.started_at,
            interval_secs: self.heartbeat_interval.as_secs().max(1) as i64,
            draining,
        }
    }
}

fn host_name() -> String {
    gethostname::gethostname()
        .into_string()
        .unwrap_or_else(|_| "unknown".into())
        .replace('/', "_")
}

/// Whether `instance` names a process of this host that no longer exists.
fn is_dead_local_instance(instance: &str) -> bool {
    let mut parts = instance.split('/');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<libc::pid_t>() else {
        return false;
    };
    if host != host_name() || pid <= 0 || pid == std::process::id() as libc::pid_t {
        return false;
    }
    // SAFETY: signal 0 delivers nothing; it only asks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Takes this node's row in the store, waiting out (or refusing) another live process
/// with the same node id. Also clears a drain flag left from before: a node that
/// starts is back in rotation.
pub async fn claim(store: &Store, identity: &NodeIdentity) -> Result<(), CellError> {
    let interval = identity.heartbeat_interval.max(Duration::from_secs(1));
    let deadline = tokio::time::Instant::now() + interval * 3 + Duration::from_secs(2);
    loop {
        if store.heartbeat(&identity.beat(false)).await?.is_some() {
            return Ok(());
        }
        let holder = store.node(&identity.node_id).await?;
        if let Some(holder) = &holder
            && is_dead_local_instance(&holder.instance)
            && store
                .take_over_node(&holder.instance, &identity.beat(false))
                .await?
        {
            tracing::info!(previous = %holder.instance, "took over the node id from a process that died");
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let holder = holder.unwrap_or_else(|| postcell_store::NodeRow {
                id: identity.node_id.clone(),
                instance: "unknown".into(),
                roles: String::new(),
                version: String::new(),
                address: "unknown".into(),
                started_at: 0,
                heartbeat_at: postcell_store::now(),
                heartbeat_interval: 0,
                draining: false,
                stopped_at: None,
            });
            return Err(CellError::NodeIdInUse {
                id: identity.node_id.clone(),
                instance: holder.instance,
                address: holder.address,
                age: postcell_store::now() - holder.heartbeat_at,
            });
        }
        tracing::warn!(node = %identity.node_id, "node id held by another live process; waiting for it to go silent");
        tokio::time::sleep(interval).await;
    }
}

/// Heartbeats until `stop`, then records a clean stop. Each beat reports whether this
/// node drains; if the store says an operator asked it to, draining starts here.
/// A store that cannot be reached is logged and tried again at the next beat.
pub async fn heartbeat(
    store: Store,
    identity: NodeIdentity,
    drain: Drain,
    stop: CancellationToken,
) {
    let mut failing = false;
    loop {
        match store.heartbeat(&identity.beat(drain.is_draining())).await {
            Ok(Some(requested)) => {
                if failing {
                    tracing::info!("heartbeat reaches the store again");
                    failing = false;
                }
                if requested {
                    drain.start("postcell drain");
                }
            }
            Ok(None) => {
                // Our row went to another process (we were silent too long): two
                // processes must not serve under one id.
                tracing::error!(node = %identity.node_id, "another process took this node id; draining");
                drain.start("node id taken by another process");
            }
            Err(e) => {
                metrics::counter!("postcell_heartbeat_failures_total").increment(1);
                if !failing {
                    tracing::warn!(error = %e, "heartbeat failed; the store may be unreachable");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(identity.heartbeat_interval) => {}
            _ = stop.cancelled() => break,
        }
    }
    if let Err(e) = store.node_stopped(&identity.instance).await {
        tracing::warn!(error = %e, "cannot record the clean stop");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_processes_of_this_host_are_dead() {
        let me = format!("{}/{}/0", host_name(), std::process::id());
        assert!(!is_dead_local_instance(&me));
        // pid 1 always exists.
        assert!(!is_dead_local_instance(&format!("{}/1/0", host_name())));
        assert!(!is_dead_local_instance("another-host.example/999999/0"));
        assert!(!is_dead_local_instance("garbage"));
        // The largest pid Linux hands out is 4194304.
        assert!(is_dead_local_instance(&format!(
            "{}/4194305/0",
            host_name()
        )));
    }
}
