//! Whether this node is taking itself out of rotation.
//!
//! Draining starts once (SIGUSR1, `postcell drain` seen in the store, or a stop) and
//! never ends: a drained node exits, and starting it again puts it back in rotation.
//! The health endpoint reads [`Drain::is_draining`], so `/readyz` fails from the first
//! moment, before any listener closes.

use std::sync::Arc;

use tokio::sync::watch;

#[derive(Clone)]
pub struct Drain {
    state: Arc<watch::Sender<Option<&'static str>>>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain::new()
    }
}

impl Drain {
    pub fn new() -> Drain {
        Drain {
            state: Arc::new(watch::Sender::new(None)),
        }
    }

    /// Starts draining, saying why; later calls change nothing. Returns whether this
    /// call started it.
    pub fn start(&self, why: &'static str) -> bool {
        let started = self.state.send_if_modified(|state| {
            if state.is_some() {
                false
            } else {
                *state = Some(why);
                true
            }
        });
        if started {
            tracing::info!(reason = why, "draining: /readyz now fails");
            metrics::gauge!("postcell_node_draining").set(1.0);
        }
        started
    }

    pub fn is_draining(&self) -> bool {
        self.state.borrow().is_some()
    }

    /// Why the node drains, once it does.
    pub fn reason(&self) -> Option<&'static str> {
        *self.state.borrow()
    }

    /// Waits until draining starts; returns its reason.
    pub async fn started(&self) -> &'static str {
        let mut watch = self.state.subscribe();
        loop {
            if let Some(why) = *watch.borrow_and_update() {
                return why;
            }
            if watch.changed().await.is_err() {
                // The sender lives as long as any clone of `self`: unreachable, but
                // never spin.
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn draining_starts_once_and_wakes_the_waiters() {
        let drain = Drain::new();
        assert!(!drain.is_draining());
        let waiter = tokio::spawn({
            let drain = drain.clone();
            async move { drain.started().await }
        });
        assert!(drain.start("SIGUSR1"));
        assert!(!drain.start("postcell drain"));
        assert_eq!(waiter.await.unwrap(), "SIGUSR1");
        assert_eq!(drain.reason(), Some("SIGUSR1"));
        assert_eq!(drain.started().await, "SIGUSR1");
    }
}
