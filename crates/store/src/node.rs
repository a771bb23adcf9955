//! The nodes of a cell, each heartbeating into the store, and the drain flag an
//! operator sets from any node (`postcell drain`).
//!
//! A node id names a node across restarts; the *instance* names one running process
//! (`host/pid/random`). A heartbeat only updates the row when the row is ours, or was
//! left by an instance that stopped or went silent for three heartbeat intervals, so
//! two processes started with the same id cannot both heartbeat under it.

use crate::{Result, Store, now};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NodeRow {
    pub id: String,
    pub instance: String,
    pub roles: String,
    pub version: String,
    pub address: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// Seconds between heartbeats: the node counts as down after three missed ones.
    pub heartbeat_interval: i64,
    pub draining: bool,
    /// When the node stopped cleanly; `None` while it runs (or if it died).
    pub stopped_at: Option<i64>,
}

/// What a node is doing, as far as the store can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Up,
    /// Up, but taking itself out of rotation.
    Draining,
    /// Stopped cleanly (drained, or SIGTERM).
    Stopped,
    /// Silent for more than three heartbeat intervals without saying goodbye.
    Down,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Draining => "draining",
            NodeState::Stopped => "stopped",
            NodeState::Down => "DOWN",
        }
    }
}

impl NodeRow {
    pub fn state(&self, at: i64) -> NodeState {
        if self.stopped_at.is_some() {
            NodeState::Stopped
        } else if at - self.heartbeat_at > 3 * self.heartbeat_interval.max(1) {
            NodeState::Down
        } else if self.draining {
            NodeState::Draining
        } else {
            NodeState::Up
        }
    }
}

/// What one heartbeat says about this node.
#[derive(Debug, Clone)]
pub struct Heartbeat<'a> {
    pub instance: &'a str,
    pub roles: &'a str,
    pub version: &'a str,
    pub address: &'a str,
    pub started_at: i64,
    pub interval_secs: i64,
    /// This node decided to drain by itself (SIGUSR1): record it.
    pub draining: bool,
}

impl Store {
    /// Records that this node is alive, with what it runs. Returns the drain flag as
    /// the store holds it (an operator may have set it), or `None` when the row belongs
    /// to another live instance with the same node id.
    ///
    /// A new instance taking over the row clears the drain flag: starting a node puts
    /// it back in rotation.
    pub async fn heartbeat(&self, beat: &Heartbeat<'_>) -> Result<Option<bool>> {
        let at = now();
        let draining: Option<bool> = dispatch!(&self.pool, write, |p| {
            sqlx::query_scalar(
                "INSERT INTO nodes (id, instance, roles, version, address, started_at, heartbeat_at,
                                    heartbeat_interval, draining, stopped_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)
                 ON CONFLICT (id) DO UPDATE SET
                   draining = CASE WHEN nodes.instance = excluded.instance
                                   THEN (nodes.draining OR excluded.draining)
                                   ELSE excluded.draining END,
                   instance = excluded.instance, roles = excluded.roles,
                   version = excluded.version, address = excluded.address,
                   started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
                   heartbeat_interval = excluded.heartbeat_interval, stopped_at = NULL
                 WHERE nodes.instance = excluded.instance OR nodes.stopped_at IS NOT NULL
                    OR nodes.heartbeat_at < $7 - 3 * nodes.heartbeat_interval
                 RETURNING draining",
            )
            .bind(self.node_id.as_ref())
            .bind(beat.instance)
            .bind(beat.roles)
            .bind(beat.version)
            .bind(beat.address)
            .bind(beat.started_at)
            .bind(at)
            .bind(beat.interval_secs)
            .bind(beat.draining)
            .fetch_optional(p)
            .await?
        });
        Ok(draining)
    }

    /// Takes the row of a node id from an instance known to be dead (a crashed process
    /// on this same host), however recent its last heartbeat.
    pub async fn take_over_node(&self, dead_instance: &str, beat: &Heartbeat<'_>) -> Result<bool> {
        let taken = dispatch!(&self.pool, write, |p| {
            sqlx::query(
                "UPDATE nodes SET instance = $3, roles = $4, version = $5, address = $6,
                   started_at = $7, heartbeat_at = $8, heartbeat_interval = $9,
                   draining = FALSE, stopped_at = NULL
                 WHERE id = $1 AND instance = $2",
            )
            .bind(self.node_id.as_ref())
            .bind(dead_instance)
            .bind(beat.instance)
            .bind(beat.roles)
            .bind(beat.version)
            .bind(beat.address)
            .bind(beat.started_at)
            .bind(now())
            .bind(beat.interval_secs)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(taken > 0)
    }

    /// Says goodbye: the node stopped cleanly (status shows "stopped", not "DOWN").
    pub async fn node_stopped(&self, instance: &str) -> Result<()> {
        dispatch!(&self.pool, write, |p| {
            sqlx::query("UPDATE nodes SET stopped_at = $3 WHERE id = $1 AND instance = $2")
                .bind(self.node_id.as_ref())
                .bind(instance)
                .bind(now())
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Asks a node to drain (it notices at its next heartbeat). Returns false if no
    /// node has that id.
    pub async fn request_drain(&self, node_id: &str) -> Result<bool> {
        let updated = dispatch!(&self.pool, write, |p| {
            sqlx::query("UPDATE nodes SET draining = TRUE WHERE id = $1")
                .bind(node_id)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(updated > 0)
    }

    pub async fn node(&self, node_id: &str) -> Result<Option<NodeRow>> {
        let node = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, NodeRow>(
                "SELECT id, instance, roles, version, address, started_at, heartbeat_at,
                        heartbeat_interval, draining, stopped_at
                 FROM nodes WHERE id = $1",
            )
            .bind(node_id)
            .fetch_optional(p)
            .await?
        });
        Ok(node)
    }

    pub async fn nodes(&self) -> Result<Vec<NodeRow>> {
        let nodes = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, NodeRow>(
                "SELECT id, instance, roles, version, address, started_at, heartbeat_at,
                        heartbeat_interval, draining, stopped_at
                 FROM nodes ORDER BY id",
            )
            .fetch_all(p)
            .await?
        });
        Ok(nodes)
    }

    /// A real round trip to the state database (readiness checks): reads this node's
    /// row through the pool that serves sessions.
    pub async fn ping(&self) -> Result<()> {
        dispatch!(&self.pool, read, |p| {
            let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM nodes WHERE id = $1")
                .bind(self.node_id.as_ref())
                .fetch_one(p)
                .await?;
        });
        Ok(())
    }
}
