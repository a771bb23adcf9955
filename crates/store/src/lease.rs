//! Leases: a named right held by one owner until it expires (rule 6 of the store).
//!
//! A holder renews its lease while it works; a holder that dies simply stops renewing,
//! and once the lease expires anyone may take it. Times are the nodes' clocks, so the
//! nodes of a cell must keep time (NTP); a lease's length should dwarf any skew.

use std::time::Duration;

use crate::{Result, Store, now};

impl Store {
    /// Takes the lease `name` for `owner` if it is free, expired, or already ours.
    /// Returns whether `owner` now holds it.
    pub async fn acquire_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let at = now();
        let holder: Option<String> = dispatch!(&self.pool, write, |p| {
            sqlx::query_scalar(
                "INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
                 WHERE leases.expires_at <= $4 OR leases.owner = excluded.owner
                 RETURNING owner",
            )
            .bind(name)
            .bind(owner)
            .bind(at + ttl.as_secs() as i64)
            .bind(at)
            .fetch_optional(p)
            .await?
        });
        Ok(holder.is_some())
    }

    /// Extends a lease we hold. Returns false if we lost it (it expired and someone
    /// else took it): the caller must stop the work the lease protected.
    pub async fn renew_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let renewed = dispatch!(&self.pool, write, |p| {
            sqlx::query("UPDATE leases SET expires_at = $3 WHERE name = $1 AND owner = $2")
                .bind(name)
                .bind(owner)
                .bind(now() + ttl.as_secs() as i64)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(renewed > 0)
    }

    /// Gives a lease back, if we still hold it.
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<()> {
        dispatch!(&self.pool, write, |p| {
            sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
                .bind(name)
                .bind(owner)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Gives back every lease held by this node or one of its sessions (owners
    /// `NODE` and `NODE:...`), when the node stops: nobody waits for them to expire.
    /// Returns how many were released.
    pub async fn release_node_leases(&self) -> Result<u64> {
        let node = self.node_id.as_ref();
        let prefix = format!("{node}:");
        let released = dispatch!(&self.pool, write, |p| {
            sqlx::query("DELETE FROM leases WHERE owner = $1 OR substr(owner, 1, length($2)) = $2")
                .bind(node)
                .bind(&prefix)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(released)
    }

    /// The current holder of a lease and when it expires, if anyone holds it.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<(String, i64)>> {
        let holder = dispatch!(&self.pool, read, |p| {
            sqlx::query_as(
                "SELECT owner, expires_at FROM leases WHERE name = $1 AND expires_at > $2",
            )
            .bind(name)
            .bind(now())
            .fetch_optional(p)
            .await?
        });
        Ok(holder)
    }
}
