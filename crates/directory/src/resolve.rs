//! What an envelope recipient delivers to: accounts, through aliases (several targets,
//! nested), sub-addresses, and external forward targets.

use std::collections::{HashSet, VecDeque};

use postcell_store::{AddressEntry, Quota, Result};

use crate::{Address, Directory};

/// Aliases may point at aliases; past this depth we stop, as a loop guard.
const MAX_ALIAS_DEPTH: usize = 8;
/// One alias cannot fan out to more than this many targets.
const MAX_TARGETS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A local account's INBOX. `quota` and `has_forwards` are as read with the
    /// address, for the recipient's checks; the delivery itself enforces the quota.
    Account {
        account_id: i64,
        account_name: String,
        quota: Quota,
        has_forwards: bool,
    },
    /// An address elsewhere: the message goes to the outbound queue.
    Remote(Address),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Deliver to these (never empty, no duplicates).
    Deliver(Vec<Target>),
    /// The domain is ours but nobody has this address.
    UnknownUser,
    /// The address names an account that is disabled.
    Disabled,
    /// The domain is not ours: delivering there is relaying.
    NotLocal,
}

impl Directory {
    /// Resolves an envelope recipient. An address of an account takes one query.
    pub async fn resolve(&self, recipient: &Address) -> Result<Resolution> {
        if recipient.is_address_literal() {
            return Ok(Resolution::NotLocal);
        }
        let Some(entry) = (match self.lookup(recipient).await? {
            Lookup::NotLocal => return Ok(Resolution::NotLocal),
            Lookup::Unknown => None,
            Lookup::Found(entry) => Some(entry),
        }) else {
            return Ok(Resolution::UnknownUser);
        };
        let mut targets = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut pending: VecDeque<(AddressEntry, usize)> = VecDeque::from([(entry, 0)]);
        while let Some((entry, depth)) = pending.pop_front() {
            match entry {
                AddressEntry::Account {
                    account_id,
                    account_name,
                    enabled: true,
                    quota,
                    has_forwards,
                    ..
                } => push_unique(
                    &mut targets,
                    Target::Account {
                        account_id,
                        account_name,
                        quota,
                        has_forwards,
                    },
                ),
                // A disabled account reached through an alias is skipped; asked for
                // directly, it is refused.
                AddressEntry::Account { .. } if depth == 0 => return Ok(Resolution::Disabled),
                AddressEntry::Account { .. } => {}
                AddressEntry::Alias {
                    address,
                    targets: alias_targets,
                } => {
                    if !seen.insert(address) || depth >= MAX_ALIAS_DEPTH {
                        continue;
                    }
                    for text in alias_targets {
                        let Ok(target) = Address::parse(&text) else {
                            tracing::warn!(target = %text, "skipping a malformed alias target");
                            continue;
                        };
                        match self.lookup(&target).await? {
                            Lookup::Found(next) => pending.push_back((next, depth + 1)),
                            Lookup::Unknown => {
                                tracing::warn!(target = %text, "alias target does not exist")
                            }
                            Lookup::NotLocal => push_unique(&mut targets, Target::Remote(target)),
                        }
                        if targets.len() >= MAX_TARGETS {
                            break;
                        }
                    }
                }
            }
        }
        if targets.is_empty() {
            Ok(Resolution::UnknownUser)
        } else {
            Ok(Resolution::Deliver(targets))
        }
    }

    /// Looks an address up as it is, then without its sub-address.
    async fn lookup(&self, address: &Address) -> Result<Lookup> {
        let found = self
            .store
            .lookup_recipient(address.domain(), &address.key())
            .await?;
        if !found.local_domain {
            return Ok(Lookup::NotLocal);
        }
        if let Some(entry) = found.entry {
            return Ok(Lookup::Found(entry));
        }
        let base = self
            .config
            .recipient_delimiter
            .and_then(|d| address.without_detail(d));
        Ok(match base {
            Some(base) => match self.store.lookup_address(&base.key()).await? {
                Some(entry) => Lookup::Found(entry),
                None => Lookup::Unknown,
            },
            None => Lookup::Unknown,
        })
    }
}

/// An address looked up in a domain of ours, or not.
enum Lookup {
    NotLocal,
    Unknown,
    Found(AddressEntry),
}

/// Adds a target once. An account counts once whatever its quota read: two reads of
/// the same account through two aliases may see it before and after a delivery.
fn push_unique(targets: &mut Vec<Target>, target: Target) {
    let present = targets.iter().any(|t| match (t, &target) {
        (Target::Account { account_id: a, .. }, Target::Account { account_id: b, .. }) => a == b,
        (a, b) => a == b,
    });
    if !present {
        targets.push(target);
    }
}
