//! SELECT and EXAMINE (RFC 9051 section 6.3.2), with CONDSTORE and QRESYNC (RFC 7162);
//! CLOSE; and the sync that tells the client what others changed.
//!
//! ```text
//! C: A02 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541))
//! S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
//! S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Flags permitted
//! S: * 314 EXISTS
//! S: * OK [UIDVALIDITY 67890007] UIDs valid
//! S: * OK [UIDNEXT 567] Predicted next UID
//! S: * OK [HIGHESTMODSEQ 90060128194045007] Highest
//! S: * VANISHED (EARLIER) 41,43:116,118,120:211,214:540
//! S: * 49 FETCH (UID 117 FLAGS (\Seen \Answered) MODSEQ (90060115194045001))
//! S: A02 OK [READ-WRITE] SELECT completed
//! ```

use postcell_imap_proto::command::SelectParameters;
use postcell_imap_proto::response::{Code, Data, FetchItem, StatusResponse};
use postcell_imap_proto::{Flag, MailboxName, SequenceSet};
use postcell_store::{StoreError, UidRanges, flags};

use crate::reply::{self, unavailable};
use crate::selected::{SelectedMailbox, Updates};
use crate::session::Session;
use crate::state::{Login, State};

fn system_flags() -> Vec<Flag> {
    vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ]
}

/// SELECT (`read_only = false`) or EXAMINE. A SELECT that fails leaves no mailbox
/// selected (RFC 9051 section 6.3.2); one refused as BAD changes nothing.
pub(crate) async fn select(
    session: &mut Session,
    tag: String,
    state: State,
    name: &MailboxName,
    parameters: &SelectParameters,
    read_only: bool,
) -> State {
    let (login, was_selected) = match state {
        State::Authenticated(login) => (login, false),
        State::Selected(login, _) => (login, true),
        other => return other,
    };
    if parameters.qresync.is_some() && !session.enabled.qresync {
        // RFC 7162 section 3.2.5.
        session.write_status(StatusResponse::bad(
            Some(tag),
            "QRESYNC must be enabled first (ENABLE QRESYNC)",
        ));
        return State::Authenticated(login);
    }
    if was_selected {
        // RFC 9051 section 7.1, RFC 7162 section 3.2.11: the old mailbox's responses end
        // here.
        session.write_status(
            StatusResponse::ok(None, "Previous mailbox is now closed").with_code(Code::Closed),
        );
    }
    if parameters.condstore || parameters.qresync.is_some() {
        session.enabled.condstore = true;
    }
    let store = session.store().clone();
    let mailbox = match store.mailbox_by_name(login.account_id, name.as_str()).await {
        Ok(Some(mailbox)) => mailbox,
        Ok(None) => {
            reply::no_such_mailbox(session, tag);
            return State::Authenticated(login);
        }
        Err(error) => {
            unavailable(session, tag, &error);
            return State::Authenticated(login);
        }
    };
    let (selected, uid_next) = match open(session, &mailbox, read_only).await {
        Ok(opened) => opened,
        Err(error) => {
            unavailable(session, tag, &error);
            return State::Authenticated(login);
        }
    };
    let highest_modseq = selected.known_modseq();

    session.write_data(&Data::Flags(system_flags()));
    session.write_status(StatusResponse::ok(None, "Flags permitted").with_code(
        Code::PermanentFlags {
            flags: if read_only {
                Vec::new()
            } else {
                system_flags()
            },
            new_keywords: !read_only,
        },
    ));
    session.write_data(&Data::Exists(selected.len() as u32));
    if !session.enabled.imap4rev2 {
        // IMAP4rev1: nothing here is ever \Recent.
        session.write_data(&Data::Recent(0));
        if let Some(first) = selected.messages().iter().position(|m| !m.has(flags::SEEN)) {
            session.write_status(
                StatusResponse::ok(None, "First unseen").with_code(Code::Unseen(first as u32 + 1)),
            );
        }
    }
    session.write_status(
        StatusResponse::ok(None, "UIDs valid").with_code(Code::UidValidity(selected.uid_validity)),
    );
    session.write_status(
        StatusResponse::ok(None, "Predicted next UID")
            .with_code(Code::UidNext(u32::try_from(uid_next).unwrap_or(u32::MAX))),
    );
    session.write_status(
        StatusResponse::ok(None, "Highest")
            .with_code(Code::HighestModSeq(highest_modseq.max(0) as u64)),
    );
    if let Some(qresync) = &parameters.qresync
        && qresync.uid_validity.get() == selected.uid_validity
        && let Err(error) = resync(session, &selected, qresync).await
    {
        unavailable(session, tag, &error);
        return State::Authenticated(login);
    }
    let (code, command) = if read_only {
        (Code::ReadOnly, "EXAMINE")
    } else {
        (Code::ReadWrite, "SELECT")
    };
    session.write_status(
        StatusResponse::ok(Some(tag), format!("{command} completed")).with_code(code),
    );
    State::Selected(login, selected)
}

/// The session's map of `mailbox` and its UIDNEXT: the node's shared map of it brought
/// up to date with the changes since, or else the whole mailbox read at once.
async fn open(
    session: &Session,
    mailbox: &postcell_store::Mailbox,
    read_only: bool,
) -> Result<(SelectedMailbox, i64), StoreError> {
    let store = session.store();
    let maps = &session.server.maps;
    // Subscribed before the read, so no change can fall between the two.
    let feed = store.feed().subscribe();
    if let Some(shared) = maps.get(mailbox.id)
        && i64::from(shared.uid_validity) == mailbox.uid_validity
    {
        let since = shared.modseq;
        let changes = store.changes_since(mailbox.id, since).await?;
        // A mailbox known below the cached MODSEQ is not the one cached (a deleted
        // mailbox's id taken again): read it whole.
        if changes.highest_modseq >= since {
            let uid_next = changes.uid_next;
            let mut selected = SelectedMailbox::from_shared(mailbox.id, read_only, shared, feed);
            // Nothing was reported to this client yet: the updates are the map.
            selected.apply(changes, true);
            if let Some(map) = selected.shared() {
                maps.offer(mailbox.id, map);
            }
            let uid_next = uid_next.max(i64::from(selected.largest_uid()) + 1);
            return Ok((selected, uid_next));
        }
        maps.forget(mailbox.id);
    }
    let snapshot = store.mailbox_snapshot(mailbox.id).await?;
    let uid_next = snapshot.uid_next;
    let selected = SelectedMailbox::new(mailbox.id, read_only, snapshot, feed);
    if let Some(map) = selected.shared() {
        maps.offer(mailbox.id, map);
    }
    Ok((selected, uid_next))
}

/// QRESYNC (RFC 7162 section 3.2.5.1): what the client missed since its MODSEQ. Every
/// tombstone is kept, so the seq-match-data (a hint for servers that forget
/// tombstones) is not needed.
async fn resync(
    session: &mut Session,
    selected: &SelectedMailbox,
    qresync: &postcell_imap_proto::command::QresyncParameters,
) -> Result<(), StoreError> {
    let since = i64::try_from(qresync.mod_sequence).unwrap_or(i64::MAX);
    let expunged = session
        .store()
        .expunged_since(selected.mailbox_id, since)
        .await?;
    let known = |uid: u32| {
        qresync
            .known_uids
            .as_ref()
            .is_none_or(|set| set.contains(uid, u32::MAX))
    };
    let vanished = SequenceSet::from_numbers(
        expunged
            .iter()
            .filter_map(|&uid| u32::try_from(uid).ok())
            .filter(|&uid| known(uid)),
    );
    if let Some(uids) = vanished {
        session.write_data(&Data::Vanished {
            earlier: true,
            uids,
        });
    }
    for (index, message) in selected.messages().iter().enumerate() {
        if message.modseq > qresync.mod_sequence {
            session.write_data(&Data::Fetch {
                seq: index as u32 + 1,
                items: vec![
                    FetchItem::Uid(message.uid),
                    FetchItem::Flags(message.flag_list()),
                    FetchItem::ModSeq(message.modseq),
                ],
            });
            // A broken connection shows at the next read.
            let _ = session.flush_if_large().await;
        }
    }
    Ok(())
}

/// CLOSE: expunges `\Deleted` messages without a word (unless the mailbox is
/// read-only) and leaves the selected state.
pub(crate) async fn close(
    session: &mut Session,
    tag: String,
    login: &Login,
    selected: &SelectedMailbox,
) {
    if !selected.read_only {
        let store = session.store().clone();
        if let Err(error) = store
            .expunge_deleted(login.account_id, selected.mailbox_id, &UidRanges::all())
            .await
        {
            return unavailable(session, tag, &error);
        }
    }
    session.write_status(StatusResponse::ok(Some(tag), "CLOSE completed"));
}

/// Reads what others changed since the session last looked and tells the client:
/// `EXPUNGE` (or `VANISHED` once QRESYNC is on; only with `allow_expunge`), `EXISTS`,
/// and `FETCH` of changed flags. A store error is logged: the changes will be read
/// at the next boundary.
pub(crate) async fn sync(
    session: &mut Session,
    selected: &mut SelectedMailbox,
    allow_expunge: bool,
) {
    selected.drain_hints();
    let store = session.store().clone();
    let updates = match store.highest_modseq(selected.mailbox_id).await {
        Ok(highest) if highest == selected.known_modseq() => Updates {
            expunged: if allow_expunge {
                selected.take_expunged()
            } else {
                Vec::new()
            },
            ..Updates::default()
        },
        Ok(_) => match store
            .changes_since(selected.mailbox_id, selected.known_modseq())
            .await
        {
            Ok(changes) => {
                let updates = selected.apply(changes, allow_expunge);
                // A clean map known further: later SELECTs start from it.
                if allow_expunge && let Some(map) = selected.shared() {
                    session.server.maps.offer(selected.mailbox_id, map);
                }
                updates
            }
            Err(error) => return sync_failed(&error),
        },
        Err(error) => return sync_failed(&error),
    };
    report(session, selected, &updates);
}

fn sync_failed(error: &StoreError) {
    tracing::warn!(%error, "cannot read the selected mailbox's changes");
}

/// Writes the untagged responses for `updates`.
pub(crate) fn report(session: &mut Session, selected: &SelectedMailbox, updates: &Updates) {
    report_expunged(session, &updates.expunged);
    if let Some(exists) = updates.exists {
        session.write_data(&Data::Exists(exists));
    }
    for &index in &updates.flags_changed {
        if let Some(message) = selected.message(index) {
            let mut items = vec![
                FetchItem::Uid(message.uid),
                FetchItem::Flags(message.flag_list()),
            ];
            if session.enabled.condstore {
                items.push(FetchItem::ModSeq(message.modseq));
            }
            session.write_data(&Data::Fetch {
                seq: index as u32 + 1,
                items,
            });
        }
    }
}

/// `* n EXPUNGE` for each `(number, uid)` (highest first), or one `* VANISHED uids`
/// once QRESYNC is enabled (RFC 7162 section 3.2.10).
pub(crate) fn report_expunged(session: &mut Session, expunged: &[(u32, u32)]) {
    if expunged.is_empty() {
        return;
    }
    if session.enabled.qresync {
        if let Some(uids) = SequenceSet::from_numbers(expunged.iter().map(|&(_, uid)| uid)) {
            session.write_data(&Data::Vanished {
                earlier: false,
                uids,
            });
        }
    } else {
        for &(seq, _) in expunged {
            session.write_data(&Data::Expunge(seq));
        }
    }
}
