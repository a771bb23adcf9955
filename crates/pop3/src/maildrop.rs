//! The TRANSACTION state's view of the maildrop, and the lease that makes it exclusive.
//!
//! RFC 1939 numbers the messages of a maildrop from 1 for the whole session and
//! removes the ones marked deleted only in the UPDATE state, so the view is a snapshot
//! taken at login with a deleted mark per message. The maildrop is locked cell-wide
//! by a store lease (design rule 6): a second session on any node gets `[IN-USE]`.

use std::time::{Duration, Instant};

use postcell_net::CancellationToken;
use postcell_store::{BlobId, MaildropMessage, Store, StoreError};

use crate::command::MessageNumber;

/// One message of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaildropEntry {
    pub uid: i64,
    /// Exact octets of the stored message (stored with CRLF line ends).
    pub size: u64,
    pub blob_id: BlobId,
    pub deleted: bool,
}

/// Why a message number does not name a message the client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    NoSuchMessage,
    AlreadyDeleted,
}

#[derive(Debug)]
pub struct Maildrop {
    pub mailbox_id: i64,
    pub uid_validity: i64,
    messages: Vec<MaildropEntry>,
}

impl Maildrop {
    /// The view of what [`Store::maildrop`] returned.
    pub fn new(mailbox_id: i64, uid_validity: i64, messages: Vec<MaildropMessage>) -> Maildrop {
        let messages = messages
            .into_iter()
            .map(|m| MaildropEntry {
                uid: m.uid,
                size: u64::try_from(m.size).unwrap_or(0),
                blob_id: m.blob_id,
                deleted: false,
            })
            .collect();
        Maildrop {
            mailbox_id,
            uid_validity,
            messages,
        }
    }

    /// Messages not marked deleted, and their total size: what STAT reports.
    pub fn stat(&self) -> (usize, u64) {
        self.visible().fold((0, 0), |(count, octets), (_, m)| {
            (count + 1, octets + m.size)
        })
    }

    /// The messages not marked deleted, with their numbers.
    pub fn visible(&self) -> impl Iterator<Item = (MessageNumber, &MaildropEntry)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.deleted)
            .map(|(i, m)| (i as MessageNumber + 1, m))
    }

    pub fn get(&self, number: MessageNumber) -> Result<&MaildropEntry, Lookup> {
        let entry = number
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.messages.get(i))
            .ok_or(Lookup::NoSuchMessage)?;
        if entry.deleted {
            Err(Lookup::AlreadyDeleted)
        } else {
            Ok(entry)
        }
    }

    /// Marks a message deleted; it is removed only if the session reaches UPDATE.
    pub fn delete(&mut self, number: MessageNumber) -> Result<(), Lookup> {
        self.get(number)?;
        // get() succeeded, so the index is in range.
        if let Some(entry) = self.messages.get_mut(number as usize - 1) {
            entry.deleted = true;
        }
        Ok(())
    }

    /// RSET: unmarks every message.
    pub fn reset(&mut self) {
        for entry in &mut self.messages {
            entry.deleted = false;
        }
    }

    /// The UIDs to expunge in the UPDATE state.
    pub fn deleted_uids(&self) -> Vec<i64> {
        self.messages
            .iter()
            .filter(|m| m.deleted)
            .map(|m| m.uid)
            .collect()
    }

    /// The UIDL unique-id: UIDVALIDITY and UID together never name another message of
    /// this account, even after the mailbox is recreated (RFC 1939 section 7).
    pub fn unique_id(&self, entry: &MaildropEntry) -> String {
        format!("{}.{}", self.uid_validity, entry.uid)
    }
}

/// Leases are kept in whole seconds; anything shorter could expire between renewals.
const MIN_LEASE_TTL: Duration = Duration::from_secs(3);

/// The cell-wide maildrop lock, held while a session is in TRANSACTION.
///
/// A task renews the lease every third of its time to live. If it cannot (another
/// owner took an expired lease, or the store stayed away for a whole TTL) it cancels
/// [`MaildropLease::lost`] and the session must end without touching the maildrop.
/// Dropping the guard stops the renewal and gives the lease back; [`release`] does the
/// same and waits for the store.
///
/// [`release`]: MaildropLease::release
pub struct MaildropLease {
    store: Store,
    name: String,
    owner: String,
    ttl: Duration,
    lost: CancellationToken,
    renewal: tokio::task::JoinHandle<()>,
    released: bool,
}

impl MaildropLease {
    pub fn name_for(account_id: i64) -> String {
        format!("pop3:maildrop:{account_id}")
    }

    /// Takes the lease of an account's maildrop for `owner`; `None` if another session
    /// holds it.
    pub async fn acquire(
        store: &Store,
        account_id: i64,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<MaildropLease>, StoreError> {
        let ttl = ttl.max(MIN_LEASE_TTL);
        let name = Self::name_for(account_id);
        if !store.acquire_lease(&name, owner, ttl).await? {
            return Ok(None);
        }
        let lost = CancellationToken::new();
        let renewal = tokio::spawn(renew(
            store.clone(),
            name.clone(),
            owner.to_owned(),
            ttl,
            lost.clone(),
        ));
        Ok(Some(MaildropLease {
            store: store.clone(),
            name,
            owner: owner.to_owned(),
            ttl,
            lost,
            renewal,
            released: false,
        }))
    }

    /// Cancelled once the lease is lost.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }

    /// Renews the lease now: true if we still hold it. Called before the UPDATE state
    /// removes anything, so a session that lost its lock never deletes.
    pub async fn confirm(&self) -> bool {
        if self.lost.is_cancelled() {
            return false;
        }
        match self
            .store
            .renew_lease(&self.name, &self.owner, self.ttl)
            .await
        {
            Ok(true) => true,
            Ok(false) => {
                self.lost.cancel();
                false
            }
            Err(e) => {
                tracing::warn!(lease = %self.name, error = %e, "cannot confirm the maildrop lease");
                false
            }
        }
    }

    /// Gives the lease back and waits until the store has it.
    pub async fn release(mut self) {
        self.renewal.abort();
        self.released = true;
        if let Err(e) = self.store.release_lease(&self.name, &self.owner).await {
            tracing::warn!(lease = %self.name, error = %e, "cannot release the maildrop lease; it will expire");
        }
    }
}

impl Drop for MaildropLease {
    fn drop(&mut self) {
        self.renewal.abort();
        if self.released {
            return;
        }
        // A session cancelled mid-await (runtime shutdown, a panic) still gives the
        // lease back if it can; otherwise the lease simply expires.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, name, owner) = (self.store.clone(), self.name.clone(), self.owner.clone());
            runtime.spawn(async move {
                if let Err(e) = store.release_lease(&name, &owner).await {
                    tracing::warn!(lease = %name, error = %e, "cannot release the maildrop lease; it will expire");
                }
            });
        }
    }
}

async fn renew(store: Store, name: String, owner: String, ttl: Duration, lost: CancellationToken) {
    let interval = ttl / 3;
    let mut renewed_at = Instant::now();
    loop {
        tokio::time::sleep(interval).await;
        match store.renew_lease(&name, &owner, ttl).await {
            Ok(true) => renewed_at = Instant::now(),
            Ok(false) => {
                tracing::warn!(lease = %name, "maildrop lease taken by another owner");
                break;
            }
            Err(e) if renewed_at.elapsed() + interval >= ttl => {
                tracing::warn!(lease = %name, error = %e, "cannot renew the maildrop lease before it expires");
                break;
            }
            Err(e) => {
                tracing::info!(lease = %name, error = %e, "maildrop lease renewal failed; will retry")
            }
        }
    }
    lost.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maildrop(sizes: &[i64]) -> Maildrop {
        let messages = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| MaildropMessage {
                uid: i as i64 + 10,
                size,
                blob_id: BlobId::of(&[i as u8]),
            })
            .collect();
        Maildrop::new(7, 1_700_000_000, messages)
    }

    #[test]
    fn deleted_messages_vanish_from_the_view_until_reset() {
        let mut drop = maildrop(&[100, 200, 300]);
        assert_eq!(drop.stat(), (3, 600));
        drop.delete(2).unwrap();
        assert_eq!(drop.stat(), (2, 400));
        assert_eq!(drop.get(2), Err(Lookup::AlreadyDeleted));
        assert_eq!(drop.delete(2), Err(Lookup::AlreadyDeleted));
        assert_eq!(
            drop.visible().map(|(n, _)| n).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!(drop.deleted_uids(), vec![11]);
        drop.reset();
        assert_eq!(drop.stat(), (3, 600));
        assert!(drop.deleted_uids().is_empty());
    }

    #[test]
    fn numbers_outside_the_maildrop_name_no_message() {
        let mut drop = maildrop(&[100]);
        assert_eq!(drop.get(0), Err(Lookup::NoSuchMessage));
        assert_eq!(drop.get(2), Err(Lookup::NoSuchMessage));
        assert_eq!(drop.get(u64::MAX), Err(Lookup::NoSuchMessage));
        assert_eq!(drop.delete(0), Err(Lookup::NoSuchMessage));
        assert_eq!(drop.get(1).unwrap().size, 100);
    }

    #[test]
    fn unique_ids_join_uid_validity_and_uid() {
        let drop = maildrop(&[1, 2]);
        let ids: Vec<String> = drop.visible().map(|(_, m)| drop.unique_id(m)).collect();
        assert_eq!(ids, vec!["1700000000.10", "1700000000.11"]);
    }
}
