//! The parts of `postcell.toml` for running in a cell: roles, heartbeat and jobs,
//! drain, maintenance, and the PROXY protocol on a listener. `docs/config.md`
//! documents each key.

use std::time::Duration;

use postcell_net::{IpNet, ProxyProtocol};
use serde::{Deserialize, Serialize};

use crate::config::{Interval, ListenerName};

/// What a node does for the cell. Listeners follow from roles; `relay` has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Mx,
    Submission,
    Imap,
    Pop3,
    Relay,
    Web,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Mx => "mx",
            Role::Submission => "submission",
            Role::Imap => "imap",
            Role::Pop3 => "pop3",
            Role::Relay => "relay",
            Role::Web => "web",
        }
    }

    /// The role a listener serves.
    pub fn of_listener(name: ListenerName) -> Role {
        match name {
            ListenerName::Smtp => Role::Mx,
            ListenerName::Submission | ListenerName::Submissions => Role::Submission,
            ListenerName::Imap | ListenerName::Imaps => Role::Imap,
            ListenerName::Pop3 | ListenerName::Pop3s => Role::Pop3,
            ListenerName::Http => Role::Web,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CellSection {
    /// How often this node heartbeats into the store, and so how soon it notices
    /// `postcell drain`. Three missed heartbeats make it "DOWN" in `postcell status`.
    pub heartbeat: Interval,
    /// Whether this node takes part in the once-per-cell jobs.
    pub jobs: bool,
    /// How long a job's lease lasts unrenewed: how soon a job moves on when its node dies.
    pub job_lease: Interval,
    /// How often this node writes a sample of its metrics into the store.
    pub metric_samples: Interval,
}

impl Default for CellSection {
    fn default() -> Self {
        CellSection {
            heartbeat: Interval(Duration::from_secs(5)),
            jobs: true,
            job_lease: Interval(Duration::from_secs(60)),
            metric_samples: Interval(Duration::from_secs(60)),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrainSection {
    /// `postcell drain` / SIGUSR1: how long `/readyz` fails before the listeners close,
    /// so load balancers stop sending new connections first.
    pub announce: Interval,
    /// How long open sessions get to finish once the listeners are closed.
    pub timeout: Interval,
}

impl Default for DrainSection {
    fn default() -> Self {
        DrainSection {
            announce: Interval(Duration::from_secs(10)),
            timeout: Interval(Duration::from_secs(30)),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceSection {
    /// How often unreferenced blobs are collected (by one node of the cell).
    pub blob_gc_interval: Interval,
    /// A blob younger than this is never collected, referenced or not: it may belong
    /// to a transaction not yet committed.
    pub blob_grace: Interval,
    /// How often old rows are expired (by one node of the cell).
    pub expiry_interval: Interval,
    /// Expunge tombstones (for QRESYNC clients that resynchronise).
    pub expunged_retention: Interval,
    pub delivery_log_retention: Interval,
    pub metric_samples_retention: Interval,
    pub job_runs_retention: Interval,
}

impl Default for MaintenanceSection {
    fn default() -> Self {
        let days = |n: u64| Interval(Duration::from_secs(n * 86400));
        MaintenanceSection {
            blob_gc_interval: Interval(Duration::from_secs(3600)),
            blob_grace: Interval(Duration::from_secs(3600)),
            expiry_interval: Interval(Duration::from_secs(3600)),
            expunged_retention: days(30),
            delivery_log_retention: days(90),
            metric_samples_retention: days(14),
            job_runs_retention: days(7),
        }
    }
}

impl MaintenanceSection {
    pub fn retention(&self) -> postcell_store::Retention {
        postcell_store::Retention {
            expunged: self.expunged_retention.0,
            delivery_log: self.delivery_log_retention.0,
            metric_samples: self.metric_samples_retention.0,
            job_runs: self.job_runs_retention.0,
        }
    }
}

/// A listener written as a table: `{ address = "...", proxy_protocol = true, ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTable {
    pub address: String,
    #[serde(default)]
    pub proxy_protocol: bool,
    /// Networks (`"10.0.1.0/24"`) or addresses (`"10.0.1.5"`) of the proxies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// How long a proxy has to send its header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_timeout: Option<Interval>,
}

/// The default time a proxy has to send its whole header.
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks the PROXY settings of a listener table and makes them a policy.
pub fn proxy_policy(
    name: ListenerName,
    table: &ListenerTable,
) -> Result<Option<ProxyProtocol>, String> {
    if !table.proxy_protocol {
        if !table.trusted_proxies.is_empty() || table.proxy_timeout.is_some() {
            return Err(format!(
                "key listen.{name}: trusted_proxies and proxy_timeout need proxy_protocol = true"
            ));
        }
        return Ok(None);
    }
    if name == ListenerName::Http {
        return Err(format!(
            "key listen.{name}: the http listener does not take the PROXY protocol (health checks come straight from the load balancer)"
        ));
    }
    if table.trusted_proxies.is_empty() {
        return Err(format!(
            "key listen.{name}: proxy_protocol = true needs trusted_proxies, the addresses of the proxies (e.g. [\"10.0.1.5\", \"10.0.2.0/24\"])"
        ));
    }
    let mut trusted = Vec::new();
    for text in &table.trusted_proxies {
        let net = text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| {
                format!(
                    "key listen.{name}.trusted_proxies: {text:?} is not an address or a network like \"10.0.1.0/24\""
                )
            })?;
        trusted.push(net);
    }
    Ok(Some(ProxyProtocol {
        trusted,
        timeout: table.proxy_timeout.map_or(PROXY_TIMEOUT, |t| t.0),
    }))
}

/// A node id goes into leases (`NODE:session`), logs and status lines: letters,
/// digits, `.`, `_` and `-`, at most 64.
pub fn check_node_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!("key node.id: {id:?} must be 1 to 64 characters"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "key node.id: {id:?} may hold only letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// The default node id: the host name, with anything a node id may not hold replaced.
pub fn node_id_from_hostname(hostname: &str) -> String {
    let id: String = hostname
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if id.is_empty() { "node".into() } else { id }
}
