//! The outbound queue, as far as delivery fills it. The relay drains it.

use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboundEntry {
    pub id: i64,
    pub created_at: i64,
    pub sender: String,
    pub recipient: String,
    pub blob_id: String,
    pub size: i64,
    pub message_id: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub expires_at: i64,
    pub last_reply: Option<String>,
}

impl Store {
    /// Entries still to deliver, oldest first.
    pub async fn queued(&self, limit: i64) -> Result<Vec<OutboundEntry>> {
        let entries = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, OutboundEntry>(
                "SELECT id, created_at, sender, recipient, blob_id, size, message_id, state, attempts,
                        next_attempt_at, expires_at, last_reply
                 FROM outbound_queue WHERE state = 'queued' ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        Ok(entries)
    }
}
