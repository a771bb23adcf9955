//! IDLE (RFC 2177, RFC 9051 section 6.3.13): the client waits and the server tells it
//! of changes as they happen, until `DONE`.
//!
//! ```text
//! C: a5 IDLE
//! S: + idling
//! S: * 4 EXISTS                       (a delivery, over SMTP or APPEND)
//! S: * 2 FETCH (UID 7 FLAGS (\Seen))  (another session's STORE)
//! S: * 1 EXPUNGE                      (another session's EXPUNGE)
//! C: DONE
//! S: a5 OK IDLE terminated
//! ```
//!
//! The session wakes on a change-feed hint for its mailbox (a lost hint or a lagging
//! receiver counts as one), and on a poll timer as a backstop; either way it reads
//! `changes_since` its MODSEQ and flushes at once. The idle timeout still applies,
//! and a server shutdown ends the wait with `* BYE`.

use postcell_imap_proto::response::{Continuation, StatusResponse};
use postcell_net::LineError;
use tokio::time::{Instant, MissedTickBehavior};

use crate::command::select::sync;
use crate::selected::SelectedMailbox;
use crate::session::{RawLine, Session};

pub(crate) async fn idle(
    session: &mut Session,
    tag: String,
    mut selected: Option<&mut SelectedMailbox>,
) -> Result<(), LineError> {
    session.write_continuation(&Continuation::Text("idling".to_owned()));
    if let Some(selected) = selected.as_deref_mut() {
        // What changed before the IDLE began is reported at once.
        Box::pin(sync(session, selected, true)).await;
    }
    let deadline = Instant::now() + session.server.config.idle_timeout;
    let mut poll = tokio::time::interval(session.server.config.poll_interval);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    poll.reset();
    loop {
        // Flushed here so that reading below never has anything to write: a cancelled
        // write could not be resumed.
        session.flush().await?;
        let woke = tokio::select! {
            line = session.read_raw_line(true) => Some(line?),
            () = next_hint(selected.as_deref_mut()) => None,
            _ = poll.tick() => None,
            () = tokio::time::sleep_until(deadline) => return Err(LineError::Timeout),
        };
        match woke {
            Some(RawLine::Line(line)) if line.eq_ignore_ascii_case(b"DONE") => {
                session.write_status(StatusResponse::ok(Some(tag), "IDLE terminated"));
                return Ok(());
            }
            Some(RawLine::Line(_)) => {
                session.write_status(StatusResponse::bad(Some(tag), "Expected DONE to end IDLE"));
                return Ok(());
            }
            Some(RawLine::TooLong) => {
                session.write_status(StatusResponse::bad(Some(tag), "Line too long during IDLE"));
                return Ok(());
            }
            None => {
                if let Some(selected) = selected.as_deref_mut() {
                    // Boxed: the sync's state, large, would otherwise be held by every
                    // idling session while it waits (see `state::execute`).
                    Box::pin(sync(session, selected, true)).await;
                }
            }
        }
    }
}

/// A hint for the selected mailbox; never, when there is none.
async fn next_hint(selected: Option<&mut SelectedMailbox>) {
    match selected {
        Some(selected) => selected.next_hint().await,
        None => std::future::pending().await,
    }
}
