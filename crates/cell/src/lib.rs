//! Cell mode: what lets identical nodes share one store and come and go while mail keeps
//! flowing.
//!
//! * [`registry`]: each node's identity (a stable node id, and an instance id per
//!   process) and its heartbeat into the store, which also carries the drain flag an
//!   operator sets with `postcell drain` from any node;
//! * [`drain`]: the node's drain state, watched by the health endpoint and the
//!   shutdown sequence;
//! * [`health`]: the `http` listener: `/healthz`, `/readyz` and Prometheus `/metrics`;
//! * [`jobs`]: periodic work that must run once per cell (blob collection, expiry),
//!   each job held by one node at a time under a lease in the store;
//! * [`maintenance`]: the jobs themselves: unreferenced-blob collection and expiry;
//! * [`samples`]: every node's metrics written into the store now and then, so one
//!   console can show the cell.
//!
//! The store holds every fact; this crate holds no SQL (the store's methods do it).

pub mod drain;
pub mod health;
pub mod jobs;
pub mod maintenance;
pub mod registry;
pub mod samples;

pub use drain::Drain;
pub use jobs::{Job, JobRunner};
pub use registry::{CellError, NodeIdentity};

use std::sync::Arc;

/// Renders the node's metrics in the Prometheus text format.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;
