//! The change feed: after a commit, a hint that a mailbox reached a new MODSEQ.
//!
//! Rule 4 of the store: hints are not the truth. A session that receives one reads the
//! changes from the tables; a session also polls on a timer, so a lost hint delays an
//! update but never loses it. In one process the feed is a broadcast channel; in a
//! cell, PostgreSQL `NOTIFY` carries the hints between nodes and each node re-broadcasts
//! what it hears.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::broadcast;

use crate::Result;
use crate::pool::Pool;

pub(crate) const PG_CHANNEL: &str = "postcell_change";

/// One hint on the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The mailbox changed; its highest MODSEQ is now at least `modseq`.
    Mailbox {
        account_id: i64,
        mailbox_id: i64,
        modseq: i64,
    },
    /// Hints may have been missed (the feed's connection dropped): re-read everything.
    Resync,
}

impl Change {
    pub(crate) fn to_payload(self) -> String {
        match self {
            Change::Mailbox {
                account_id,
                mailbox_id,
                modseq,
            } => format!("{account_id}:{mailbox_id}:{modseq}"),
            Change::Resync => "resync".to_owned(),
        }
    }

    fn from_payload(payload: &str) -> Option<Change> {
        if payload == "resync" {
            return Some(Change::Resync);
        }
        let mut parts = payload.split(':').map(|p| p.parse::<i64>().ok());
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Some(account_id)), Some(Some(mailbox_id)), Some(Some(modseq)), None) => {
                Some(Change::Mailbox {
                    account_id,
                    mailbox_id,
                    modseq,
                })
            }
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct ChangeFeed {
    sender: broadcast::Sender<Change>,
    /// The task relaying PostgreSQL notifications; it holds a pooled connection, so it
    /// must stop before the pool can close.
    relay: Option<tokio::task::AbortHandle>,
}

impl ChangeFeed {
    pub(crate) async fn start(pool: &Pool) -> Result<ChangeFeed> {
        let (sender, _) = broadcast::channel(4096);
        let mut relay = None;
        if let Pool::Postgres(pg) = pool {
            let listener = listen(pg).await?;
            relay = Some(
                tokio::spawn(relay_notifications(pg.clone(), listener, sender.clone()))
                    .abort_handle(),
            );
        }
        Ok(ChangeFeed { sender, relay })
    }

    pub(crate) fn stop(&self) {
        if let Some(relay) = &self.relay {
            relay.abort();
        }
    }

    /// Receives every hint published from now on. A receiver that falls behind gets
    /// `RecvError::Lagged`, which it must treat like [`Change::Resync`].
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }

    /// Publishes hints to this process's sessions (after the commit they describe).
    pub(crate) fn publish(&self, changes: &[Change]) {
        for change in changes {
            // No receiver is not an error: nobody is watching that mailbox.
            let _ = self.sender.send(*change);
        }
    }
}

/// A connection that LISTENs on the channel. The listener does not reconnect by itself
/// (`eager_reconnect` off, and we never call it again after a loss): the relay makes a
/// new one, so it knows when LISTEN is active again.
async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.eager_reconnect(false);
    listener.listen(PG_CHANNEL).await?;
    Ok(listener)
}

/// How long to wait between attempts to LISTEN again after the connection was lost.
const RECONNECT_BACKOFF: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
];

async fn relay_notifications(
    pool: PgPool,
    mut listener: PgListener,
    sender: broadcast::Sender<Change>,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                if let Some(change) = Change::from_payload(notification.payload()) {
                    let _ = sender.send(change);
                }
                continue;
            }
            Ok(None) => tracing::warn!("change feed connection lost; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "change feed error; reconnecting"),
        }
        metrics::counter!("postcell_store_feed_reconnects_total").increment(1);
        listener = reconnect(&pool).await;
        // Whatever was notified while we were away is lost. Only now, with LISTEN active
        // again, can a session that re-reads be sure to miss nothing after it.
        tracing::info!("change feed listening again; asking sessions to resync");
        let _ = sender.send(Change::Resync);
    }
}

/// Tries until LISTEN works again, backing off up to a few seconds.
async fn reconnect(pool: &PgPool) -> PgListener {
    let mut attempt = 0;
    loop {
        tokio::time::sleep(RECONNECT_BACKOFF[attempt.min(RECONNECT_BACKOFF.len() - 1)]).await;
        match listen(pool).await {
            Ok(listener) => return listener,
            Err(e) => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "change feed still cannot LISTEN");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips() {
        let change = Change::Mailbox {
            account_id: 7,
            mailbox_id: 42,
            modseq: 9001,
        };
        assert_eq!(Change::from_payload(&change.to_payload()), Some(change));
        assert_eq!(Change::from_payload("resync"), Some(Change::Resync));
        assert_eq!(Change::from_payload("1:2"), None);
        assert_eq!(Change::from_payload("1:2:3:4"), None);
        assert_eq!(Change::from_payload("a:2:3"), None);
    }
}
