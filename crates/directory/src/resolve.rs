//! What an envelope recipient delivers to: accounts, through aliases (several targets,
//! nested), sub-addresses, and external forward targets.

use std::collections::{HashSet, VecDeque};

use postcell_store::{AddressEntry, Result};

use crate::{Address, Directory};

/// Aliases may point at aliases; past this depth we stop, as a loop guard.
const MAX_ALIAS_DEPTH: usize = 8;
/// One alias cannot fan out to more than this many targets.
const MAX_TARGETS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A local account's INBOX.
    Account {
        account_id: i64,
        account_name: String,
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
    pub async fn is_local_domain(&self, domain: &str) -> Result<bool> {
        self.store.domain_exists(domain).await
    }

    /// Resolves an envelope recipient.
    pub async fn resolve(&self, recipient: &Address) -> Result<Resolution> {
        if recipient.is_address_literal() || !self.is_local_domain(recipient.domain()).await? {
            return Ok(Resolution::NotLocal);
        }
        let Some(entry) = self.lookup(recipient).await? else {
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
                    ..
                } => push_unique(
                    &mut targets,
                    Target::Account {
                        account_id,
                        account_name,
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
                        if self.is_local_domain(target.domain()).await? {
                            match self.lookup(&target).await? {
                                Some(next) => pending.push_back((next, depth + 1)),
                                None => {
                                    tracing::warn!(target = %text, "alias target does not exist")
                                }
                            }
                        } else {
                            push_unique(&mut targets, Target::Remote(target));
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
    async fn lookup(&self, address: &Address) -> Result<Option<AddressEntry>> {
        if let Some(entry) = self.store.lookup_address(&address.key()).await? {
            return Ok(Some(entry));
        }
        match self
            .config
            .recipient_delimiter
            .and_then(|d| address.without_detail(d))
        {
            Some(base) => self.store.lookup_address(&base.key()).await,
            None => Ok(None),
        }
    }
}

fn push_unique(targets: &mut Vec<Target>, target: Target) {
    if !targets.contains(&target) {
        targets.push(target);
    }
}
