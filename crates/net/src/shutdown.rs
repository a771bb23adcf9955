//! Stopping a node's sessions in order: the accept loops stop (their sockets close, so
//! a new connection is refused at once and a load balancer or client tries another
//! node), idle sessions are told to go (SMTP `421`, POP3 `-ERR [SYS/TEMP]`, IMAP
//! `* BYE [UNAVAILABLE]`: each protocol answers [`crate::LineError::Shutdown`]), and
//! sessions in the middle of something get a bounded time to finish it.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How the sessions ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Sessions still running when the bound passed (they end with the process).
    pub still_running: usize,
}

/// Stops the accept loops and waits until their sockets are closed, then cancels
/// `shutdown` (every session's connection watches it) and waits for the sessions, at
/// most `bound`. The sockets close first so that a client told to go (and reconnecting
/// at once) is refused here and reaches another node.
pub async fn stop_sessions(
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
    accept_loops: Vec<JoinHandle<()>>,
    bound: Duration,
) -> Stopped {
    for task in accept_loops {
        // Dropping an accept loop drops its listener, which closes the socket.
        task.abort();
        let _ = task.await;
    }
    shutdown.cancel();
    tracker.close();
    let still_running = match tokio::time::timeout(bound, tracker.wait()).await {
        Ok(()) => 0,
        Err(_) => tracker.len(),
    };
    Stopped { still_running }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_get_a_bounded_time() {
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let quick = shutdown.clone();
        tracker.spawn(async move { quick.cancelled().await });
        tracker.spawn(tokio::time::sleep(Duration::from_secs(30)));
        let accept = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.cancelled().await }
        });
        let stopped = stop_sessions(
            &shutdown,
            &tracker,
            vec![accept],
            Duration::from_millis(200),
        )
        .await;
        assert_eq!(stopped.still_running, 1);
    }
}
