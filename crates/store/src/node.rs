//! The nodes of a cell, each heartbeating into the store.

use crate::{Result, Store, now};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NodeRow {
    pub id: String,
    pub roles: String,
    pub version: String,
    pub address: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub draining: bool,
}

impl Store {
    /// Records that this node is alive, with what it runs.
    pub async fn heartbeat(
        &self,
        roles: &str,
        version: &str,
        address: &str,
        started_at: i64,
    ) -> Result<()> {
        dispatch!(&self.pool, write, |p| {
            sqlx::query(
                "INSERT INTO nodes (id, roles, version, address, started_at, heartbeat_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET roles = excluded.roles, version = excluded.version,
                   address = excluded.address, started_at = excluded.started_at,
                   heartbeat_at = excluded.heartbeat_at",
            )
            .bind(self.node_id.as_ref())
            .bind(roles)
            .bind(version)
            .bind(address)
            .bind(started_at)
            .bind(now())
            .execute(p)
            .await?;
        });
        Ok(())
    }

    pub async fn nodes(&self) -> Result<Vec<NodeRow>> {
        let nodes = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, NodeRow>(
                "SELECT id, roles, version, address, started_at, heartbeat_at, draining FROM nodes ORDER BY id",
            )
            .fetch_all(p)
            .await?
        });
        Ok(nodes)
    }
}
