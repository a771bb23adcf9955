//! Metric samples: every node writes its own counters and gauges into the store now and
//! then, so one console can graph the whole cell (R14) without scraping each node.

use crate::{Result, Store};

impl Store {
    /// Stores one sample of this node's series (`name` with its labels) taken at `at`.
    pub async fn record_metric_samples(&self, at: i64, samples: &[(String, f64)]) -> Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        dispatch!(&self.pool, write, |p| {
            let mut tx = p.begin().await?;
            for (name, value) in samples {
                sqlx::query(
                    "INSERT INTO metric_samples (node, at, name, value) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (node, at, name) DO UPDATE SET value = excluded.value",
                )
                .bind(self.node_id.as_ref())
                .bind(at)
                .bind(name)
                .bind(value)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The samples of one series, oldest first: `(node, at, value)`.
    pub async fn metric_samples(&self, name: &str, since: i64) -> Result<Vec<(String, i64, f64)>> {
        let rows = dispatch!(&self.pool, read, |p| {
            sqlx::query_as(
                "SELECT node, at, value FROM metric_samples WHERE name = $1 AND at >= $2
                 ORDER BY at, node",
            )
            .bind(name)
            .bind(since)
            .fetch_all(p)
            .await?
        });
        Ok(rows)
    }
}
