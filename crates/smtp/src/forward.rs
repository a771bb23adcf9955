//! Forwarding (R10): an account's forward targets replace (or, with "keep a copy",
//! join) its INBOX among a message's targets. Local targets are delivered directly;
//! remote ones go to the outbound queue with the envelope sender rewritten by SRS when
//! it is configured (so the next hop's SPF check sees our domain and bounces come back
//! to us), or with the original sender when it is not. The null sender stays null.
//!
//! Forwarding is applied once: a forward target that is itself a forwarding account
//! gets the copy in its INBOX, so two accounts forwarding to each other cannot loop.

use postcell_directory::{Address, Resolution, Target};
use postcell_store::{DeliveryTarget, StoreError};

use crate::SmtpServer;

/// The targets after forwarding. `sender` is the envelope sender (`None` for `<>`).
pub(crate) async fn apply(
    server: &SmtpServer,
    targets: Vec<DeliveryTarget>,
    sender: Option<&Address>,
) -> Result<Vec<DeliveryTarget>, StoreError> {
    let store = server.store();
    let mut out: Vec<DeliveryTarget> = Vec::with_capacity(targets.len());
    for target in targets {
        let DeliveryTarget::Local {
            account_id,
            recipient,
        } = &target
        else {
            push_unique(&mut out, target);
            continue;
        };
        let forwards = store.forwards(*account_id).await?;
        if forwards.is_empty() {
            push_unique(&mut out, target);
            continue;
        }
        if store.account_settings(*account_id).await?.forward_keep_copy {
            push_unique(&mut out, target.clone());
        }
        tracing::debug!(%recipient, forwards = forwards.len(), "forwarding");
        for text in forwards {
            let Ok(address) = Address::parse(&text) else {
                tracing::warn!(target = %text, "skipping a malformed forward target");
                continue;
            };
            match server.directory.resolve(&address).await? {
                Resolution::Deliver(resolved) => {
                    for t in resolved {
                        match t {
                            Target::Account { account_id, .. } => push_unique(
                                &mut out,
                                DeliveryTarget::Local {
                                    account_id,
                                    recipient: address.to_string(),
                                },
                            ),
                            Target::Remote(remote) => {
                                push_unique(&mut out, remote_target(server, &remote, sender))
                            }
                        }
                    }
                }
                Resolution::NotLocal => {
                    push_unique(&mut out, remote_target(server, &address, sender))
                }
                Resolution::UnknownUser | Resolution::Disabled => {
                    tracing::warn!(target = %address, "forward target does not deliver")
                }
            }
        }
    }
    Ok(out)
}

fn remote_target(
    server: &SmtpServer,
    recipient: &Address,
    sender: Option<&Address>,
) -> DeliveryTarget {
    let recipient = recipient.to_string();
    match (&server.config.srs, sender) {
        (Some(srs), Some(sender)) => DeliveryTarget::Forward {
            recipient,
            sender: srs.forward(&sender.to_string(), postcell_store::now() as u64),
        },
        _ => DeliveryTarget::Remote { recipient },
    }
}

fn push_unique(targets: &mut Vec<DeliveryTarget>, target: DeliveryTarget) {
    let duplicate = targets
        .iter()
        .any(|t| crate::session::same_target(t, &target));
    if !duplicate {
        targets.push(target);
    }
}
