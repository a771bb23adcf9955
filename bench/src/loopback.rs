//! The load generators' one rule about targets: loopback only.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};

/// Resolves `target` (host:port) and refuses anything that is not a loopback
/// address.
pub async fn resolve_loopback(target: &str) -> Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(target)
        .await
        .with_context(|| format!("resolving {target}"))?
        .collect();
    let Some(first) = addrs.first().copied() else {
        bail!("{target} resolves to no address");
    };
    if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        bail!(
            "refusing to load {target} ({bad}): the load generators only target loopback addresses"
        );
    }
    Ok(first)
}
