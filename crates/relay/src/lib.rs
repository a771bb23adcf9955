//! Postcell's outbound relay (the `relay` role): workers that drain the outbound queue.
//!
//! A worker claims due entries with a lease (`Store::claim_due`: owner, expiry; the
//! lease is renewed while the worker works, so a dead worker's entries are taken over
//! once its leases expire), groups them by destination domain and by message, finds
//! the hops ([`route`]: static route, relayhost, MX, fallback relay), and sends each
//! message once per connection with all its recipients of that domain, reusing the
//! connection for the next message. Each recipient's outcome is recorded on its own
//! (`Store::finish_attempt`, one transaction with its delivery-log record):
//! delivered, deferred until the next retry ([`schedule`]), or bounced with a DSN to
//! the sender ([`dsn`]) — never for the null sender.
//!
//! Delivery is at least once: an entry is finished only after the remote's `250`, so
//! a worker killed between that `250` and its commit leaves an entry that another
//! worker delivers again. No other window duplicates a message.
//!
//! Modules: [`client`] (the SMTP client on smtp-proto), [`route`], [`schedule`],
//! [`dsn`].

pub mod client;
pub mod dsn;
pub mod route;
pub mod schedule;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use postcell_directory::{Address, Directory, Resolution, Target};
use postcell_smtp::dns::Dns;
use postcell_store::{
    Attempt, AttemptOutcome, BlobId, Delivery, DeliveryOutcome, DeliveryTarget, OutboundEntry,
    Store, StoreError,
};
use thiserror::Error;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::client::{CertificatePolicy, ClientError, Reply, SmtpClient, Timeouts};
use crate::route::{Hop, RouteError, Routing};
use crate::schedule::{AfterFailure, RetrySchedule};

/// Outgoing STARTTLS (RFC 3207).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartTls {
    /// Use TLS when the server offers it; plaintext otherwise (RFC 7435).
    #[default]
    Opportunistic,
    /// Never send without TLS: a host that does not offer it is skipped.
    Required,
    /// Never start TLS.
    Off,
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The EHLO name and the DSN's reporting MTA.
    pub hostname: String,
    pub routing: Routing,
    pub schedule: RetrySchedule,
    /// How long a claim holds; renewed every third of it.
    pub lease_ttl: Duration,
    /// How often an idle worker looks for due entries.
    pub poll_interval: Duration,
    /// Entries claimed at once.
    pub batch: usize,
    /// Outgoing connections of this node at once.
    pub max_connections: usize,
    /// Outgoing connections to one destination domain at once.
    pub per_destination: usize,
    pub timeouts: Timeouts,
    pub starttls: StartTls,
    pub certificates: CertificatePolicy,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            hostname: "localhost".into(),
            routing: Routing::default(),
            schedule: RetrySchedule::default(),
            lease_ttl: Duration::from_secs(60),
            poll_interval: Duration::from_secs(2),
            batch: 100,
            max_connections: 20,
            per_destination: 4,
            timeouts: Timeouts {
                connect: Duration::from_secs(30),
                command: Duration::from_secs(300),
                data: Duration::from_secs(600),
            },
            starttls: StartTls::Opportunistic,
            certificates: CertificatePolicy::Any,
        }
    }
}

#[derive(Debug, Error)]
pub enum RelayError {
    #[error("outgoing TLS: {0}")]
    Tls(ClientError),
}

/// The relay of one node.
pub struct Relay {
    config: RelayConfig,
    directory: Directory,
    dns: Dns,
    tls: tokio_rustls::TlsConnector,
    /// The lease owner: the node id and this process, so that a node restarted under
    /// the same id does not mistake its dead predecessor's leases for its own.
    owner: String,
    connections: Arc<Semaphore>,
}

/// Why a connection stopped being usable during a message.
enum Lost {
    /// Before the message text was complete: the next hop may be tried with the
    /// recipients whose outcome is not recorded yet.
    Before {
        why: String,
        unfinished: Vec<OutboundEntry>,
    },
    /// After the final dot, without the reply: the remote may have the message, so it
    /// waits for the next retry (already recorded) rather than going elsewhere now.
    AfterData(String),
}

impl Relay {
    pub fn new(
        config: RelayConfig,
        directory: Directory,
        dns: Dns,
    ) -> Result<Arc<Relay>, RelayError> {
        let tls = client::tls_connector(config.certificates).map_err(RelayError::Tls)?;
        let owner = format!(
            "{}/{:08x}",
            directory.store().node_id(),
            rand::random::<u32>()
        );
        let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
        Ok(Arc::new(Relay {
            config,
            directory,
            dns,
            tls,
            owner,
            connections,
        }))
    }

    fn store(&self) -> &Store {
        self.directory.store()
    }

    /// The lease owner this relay claims entries as.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Works until `shutdown`; a batch under way is finished first.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        tracing::info!(owner = %self.owner, "relay started");
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let idle = match self.run_once().await {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim queue entries");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
        tracing::info!("relay stopped");
    }

    /// Claims one batch of due entries and works it to the end. Returns how many
    /// entries it claimed.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let ttl = self.config.lease_ttl;
        let entries = self
            .store()
            .claim_due(&self.owner, ttl, self.config.batch.max(1) as i64)
            .await?;
        if entries.is_empty() {
            return Ok(0);
        }
        let claimed = entries.len();
        tracing::debug!(claimed, "claimed queue entries");
        let done = CancellationToken::new();
        let renewal = tokio::spawn(renew_leases(
            self.store().clone(),
            self.owner.clone(),
            ttl,
            done.clone(),
        ));
        // Renewal stops with this batch even if the batch is dropped half-way (the relay
        // task aborted at the end of a drain): leases nobody works on must expire.
        let _stop_renewal = done.clone().drop_guard();
        let mut by_domain: BTreeMap<String, Vec<OutboundEntry>> = BTreeMap::new();
        for entry in entries {
            by_domain
                .entry(entry.domain().to_owned())
                .or_default()
                .push(entry);
        }
        let mut work = Vec::new();
        for (domain, entries) in by_domain {
            let messages = group_by_message(entries);
            // Up to `per_destination` connections share the domain's messages.
            let lanes = self.config.per_destination.clamp(1, messages.len().max(1));
            let mut shares: Vec<Vec<Vec<OutboundEntry>>> = vec![Vec::new(); lanes];
            for (i, message) in messages.into_iter().enumerate() {
                shares[i % lanes].push(message);
            }
            for share in shares.into_iter().filter(|s| !s.is_empty()) {
                work.push(self.deliver_domain(domain.clone(), share));
            }
        }
        join_all(work).await;
        done.cancel();
        let _ = renewal.await;
        Ok(claimed)
    }

    /// Delivers messages (each a list of entries: one message, its recipients at
    /// `domain`) over one connection at a time.
    async fn deliver_domain(&self, domain: String, messages: Vec<Vec<OutboundEntry>>) {
        let Ok(_permit) = self.connections.clone().acquire_owned().await else {
            return;
        };
        let span = tracing::info_span!("relay", %domain, host = tracing::field::Empty);
        async {
            let hops = match self.config.routing.hops(&self.dns, &domain).await {
                Ok(hops) => hops,
                Err(RouteError::Permanent(why)) => {
                    for entry in messages.iter().flatten() {
                        self.permanent_failure(entry, None, &why).await;
                    }
                    return;
                }
                Err(RouteError::Temporary(why)) => {
                    for entry in messages.iter().flatten() {
                        self.temporary_failure(entry, None, &why).await;
                    }
                    return;
                }
            };
            let mut remaining: VecDeque<Vec<OutboundEntry>> = messages.into();
            let mut last_error = String::from("4.4.1 no host could be reached");
            let mut last_hop: Option<String> = None;
            for hop in &hops {
                if remaining.is_empty() {
                    break;
                }
                tracing::Span::current().record("host", hop.to_string().as_str());
                let mut client = match self.open(hop).await {
                    Ok(client) => client,
                    Err(e) => {
                        tracing::info!(%hop, error = %e, "cannot use this host");
                        metrics::counter!("postcell_relay_connections_total", "result" => "failed")
                            .increment(1);
                        last_error = failure_text(&e);
                        last_hop = e.reply().map(|_| hop.to_string());
                        continue;
                    }
                };
                metrics::counter!("postcell_relay_connections_total", "result" => "ok")
                    .increment(1);
                let mut after_data = false;
                while let Some(message) = remaining.pop_front() {
                    match self.send_message(&mut client, hop, &message).await {
                        Ok(()) => {}
                        Err(Lost::Before { why, unfinished }) => {
                            last_error = why;
                            last_hop = Some(hop.to_string());
                            if !unfinished.is_empty() {
                                remaining.push_front(unfinished);
                            }
                            break;
                        }
                        Err(Lost::AfterData(why)) => {
                            last_error = why;
                            last_hop = Some(hop.to_string());
                            after_data = true;
                            break;
                        }
                    }
                    if !remaining.is_empty() {
                        // A fresh transaction for the next message (RFC 5321 4.1.1.5).
                        match client.command("RSET").await {
                            Ok(reply) if reply.is_positive() => {}
                            _ => break,
                        }
                    }
                }
                client.quit().await;
                if after_data {
                    break;
                }
            }
            for entry in remaining.iter().flatten() {
                self.temporary_failure(entry, last_hop.as_deref(), &last_error)
                    .await;
            }
        }
        .instrument(span)
        .await
    }

    /// Connects, greets, and starts TLS as the policy says.
    async fn open(&self, hop: &Hop) -> Result<SmtpClient, ClientError> {
        let hostname = &self.config.hostname;
        let mut client = SmtpClient::connect(hop.addr, self.config.timeouts).await?;
        client.hello(hostname).await?;
        if self.config.starttls == StartTls::Off {
            return Ok(client);
        }
        if !client.offers_starttls() {
            if self.config.starttls == StartTls::Required {
                client.quit().await;
                return Err(ClientError::Tls(
                    "4.7.0 the server does not offer STARTTLS and TLS is required".into(),
                ));
            }
            return Ok(client);
        }
        let server_name = rustls_pki_types::ServerName::try_from(hop.name.clone())
            .unwrap_or_else(|_| rustls_pki_types::ServerName::from(hop.addr.ip()));
        match client.starttls(&self.tls, server_name, hostname).await {
            Ok(()) => Ok(client),
            Err(e) if self.config.starttls == StartTls::Opportunistic => {
                // As Postfix does at "may": a failed handshake falls back to plaintext.
                tracing::info!(%hop, error = %e, "STARTTLS failed; sending without TLS");
                let mut client = SmtpClient::connect(hop.addr, self.config.timeouts).await?;
                client.hello(hostname).await?;
                Ok(client)
            }
            Err(e) => Err(e),
        }
    }

    /// One SMTP transaction: the message to every recipient in `entries`. Records
    /// each recipient's outcome; returns `Err` only when the connection failed.
    async fn send_message(
        &self,
        client: &mut SmtpClient,
        hop: &Hop,
        entries: &[OutboundEntry],
    ) -> Result<(), Lost> {
        let first = &entries[0];
        let remote = hop.to_string();
        let message = match self.message_text(first).await {
            Ok(message) => message,
            Err(e) => {
                tracing::error!(error = %e, blob = %first.blob_id, "cannot read a queued message");
                let why = format!("4.3.0 cannot read the message: {e}");
                for entry in entries {
                    self.temporary_failure(entry, None, &why).await;
                }
                return Ok(());
            }
        };
        let mut mail = format!("MAIL FROM:<{}>", first.sender);
        if client.offers_8bitmime() && message.iter().any(|&b| b >= 0x80) {
            mail.push_str(" BODY=8BITMIME");
        }
        let needs_utf8 =
            !first.sender.is_ascii() || entries.iter().any(|e| !e.recipient.is_ascii());
        if needs_utf8 && client.offers_smtputf8() {
            mail.push_str(" SMTPUTF8");
        }
        let reply = client
            .command(&mail)
            .await
            .map_err(|e| lost_before(e, entries.iter()))?;
        if !reply.is_positive() {
            for entry in entries {
                self.failure_reply(entry, &remote, &reply).await;
            }
            return Ok(());
        }
        let mut accepted = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let reply = match client
                .command(&format!("RCPT TO:<{}>", entry.recipient))
                .await
            {
                Ok(reply) => reply,
                // The refused ones are recorded; the accepted and the untried are not.
                Err(e) => return Err(lost_before(e, accepted.into_iter().chain(&entries[i..]))),
            };
            if reply.is_positive() {
                accepted.push(entry);
            } else {
                self.failure_reply(entry, &remote, &reply).await;
            }
        }
        if accepted.is_empty() {
            return Ok(());
        }
        let reply = match client.data(&message).await {
            Ok(reply) => reply,
            Err(e) => {
                let why = failure_text(&e);
                for entry in &accepted {
                    self.temporary_failure(entry, Some(&remote), &why).await;
                }
                return Err(Lost::AfterData(why));
            }
        };
        for entry in accepted {
            if reply.is_positive() {
                tracing::info!(
                    queue_id = entry.id,
                    recipient = %entry.recipient,
                    %remote,
                    reply = %reply,
                    "delivered"
                );
                self.finish(
                    entry,
                    &Attempt {
                        outcome: AttemptOutcome::Delivered,
                        remote: Some(&remote),
                        reply: &reply.to_string(),
                    },
                )
                .await;
            } else {
                self.failure_reply(entry, &remote, &reply).await;
            }
        }
        Ok(())
    }

    /// The stored message as it goes out: without `Return-Path:` (RFC 5321 4.4: only
    /// the final delivery adds it).
    async fn message_text(&self, entry: &OutboundEntry) -> Result<Vec<u8>, StoreError> {
        let blob = self
            .store()
            .get_message_blob(&BlobId::parse(&entry.blob_id)?, entry.size)
            .await?;
        Ok(postcell_smtp::submission::remove_fields(
            &blob,
            "Return-Path",
        ))
    }

    async fn failure_reply(&self, entry: &OutboundEntry, remote: &str, reply: &Reply) {
        let text = reply.to_string();
        if reply.is_permanent() {
            self.permanent_failure(entry, Some(remote), &text).await;
        } else {
            self.temporary_failure(entry, Some(remote), &text).await;
        }
    }

    /// A 4xx or no answer: deferred until the next retry, or bounced once expired.
    async fn temporary_failure(&self, entry: &OutboundEntry, remote: Option<&str>, why: &str) {
        let attempts = entry.attempts + 1;
        match self
            .config
            .schedule
            .after_failure(entry.created_at, attempts, postcell_store::now())
        {
            AfterFailure::RetryAt(at) => {
                tracing::info!(
                    queue_id = entry.id,
                    recipient = %entry.recipient,
                    remote = remote.unwrap_or("-"),
                    reason = %why,
                    retry_in = at - postcell_store::now(),
                    "deferred"
                );
                self.finish(
                    entry,
                    &Attempt {
                        outcome: AttemptOutcome::Deferred {
                            next_attempt_at: at,
                        },
                        remote,
                        reply: why,
                    },
                )
                .await;
            }
            AfterFailure::GiveUp => {
                let why =
                    format!("{why} (gave up after {attempts} attempts: too long in the queue)");
                self.permanent_failure(entry, remote, &why).await;
            }
        }
    }

    /// A 5xx, or given up: the sender gets a DSN (unless the sender is null), then the
    /// entry leaves the queue.
    async fn permanent_failure(&self, entry: &OutboundEntry, remote: Option<&str>, why: &str) {
        tracing::info!(
            queue_id = entry.id,
            recipient = %entry.recipient,
            remote = remote.unwrap_or("-"),
            reason = %why,
            "bounced"
        );
        // The DSN is committed before the entry is finished: a crash in between sends
        // it twice rather than never.
        if !entry.sender.is_empty()
            && let Err(e) = self.send_dsn(entry, remote, why).await
        {
            tracing::error!(queue_id = entry.id, error = %e, "cannot queue the DSN; will retry");
            let retry = postcell_store::now() + self.config.schedule.initial.as_secs() as i64;
            self.finish(
                entry,
                &Attempt {
                    outcome: AttemptOutcome::Deferred {
                        next_attempt_at: retry,
                    },
                    remote,
                    reply: why,
                },
            )
            .await;
            return;
        }
        self.finish(
            entry,
            &Attempt {
                outcome: AttemptOutcome::Bounced,
                remote,
                reply: why,
            },
        )
        .await;
    }

    async fn finish(&self, entry: &OutboundEntry, attempt: &Attempt<'_>) {
        let outcome = match attempt.outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Deferred { .. } => "deferred",
            AttemptOutcome::Bounced => "bounced",
        };
        metrics::counter!("postcell_relay_attempts_total", "outcome" => outcome).increment(1);
        match self
            .store()
            .finish_attempt(entry, &self.owner, attempt)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                queue_id = entry.id,
                outcome,
                "lease lost before the outcome was recorded; another worker has the entry"
            ),
            Err(e) => tracing::error!(
                queue_id = entry.id,
                outcome,
                error = %e,
                "cannot record the outcome; the entry will be tried again"
            ),
        }
    }

    /// Delivers a DSN about `entry` to its sender: into a local INBOX directly, or
    /// into the queue (with the null sender) for a remote sender.
    async fn send_dsn(
        &self,
        entry: &OutboundEntry,
        remote: Option<&str>,
        why: &str,
    ) -> Result<(), StoreError> {
        let original = self.message_text(entry).await.unwrap_or_default();
        let remote_mta = remote.map(|r| r.split('[').next().unwrap_or(r));
        let failure = dsn::FailedRecipient {
            recipient: &entry.recipient,
            diagnostic: why,
            remote_mta,
            status: dsn::status_of(why, true),
        };
        let text = dsn::build(
            &self.config.hostname,
            &entry.sender,
            &[failure],
            &original,
            entry.created_at,
        )
        .map_err(StoreError::Blob)?;
        let targets = self.dsn_targets(&entry.sender).await?;
        if targets.is_empty() {
            tracing::warn!(sender = %entry.sender, "the sender of a bounced message does not exist; no DSN");
            return Ok(());
        }
        // Final delivery into a mailbox records the (null) envelope sender.
        let text = if targets
            .iter()
            .all(|t| matches!(t, DeliveryTarget::Local { .. }))
        {
            let mut with_path = postcell_smtp::deliver::return_path_header(None).into_bytes();
            with_path.extend_from_slice(&text);
            with_path
        } else {
            text
        };
        let size = text.len() as i64;
        let summary = postcell_mime::summarize(&text);
        let summary = summary.to_bytes();
        let message_id = postcell_smtp::deliver::message_id(&text);
        let blob = self.store().stage_blob(text).await?;
        let delivery = Delivery {
            blob,
            size,
            internal_date: postcell_store::now(),
            message_id,
            summary: Some(summary),
            sender: String::new(),
            remote: Some(format!("relay on {}", self.store().node_id())),
            targets,
        };
        match self.store().deliver(&delivery).await? {
            DeliveryOutcome::Done(_) => {
                metrics::counter!("postcell_relay_dsn_total").increment(1);
                Ok(())
            }
            DeliveryOutcome::OverQuota { .. } => {
                // A full mailbox cannot take its bounce; the log still has the record.
                tracing::warn!(sender = %entry.sender, "the sender's mailbox is full; DSN dropped");
                Ok(())
            }
        }
    }

    async fn dsn_targets(&self, sender: &str) -> Result<Vec<DeliveryTarget>, StoreError> {
        let Ok(address) = Address::parse(sender) else {
            return Ok(Vec::new());
        };
        Ok(match self.directory.resolve(&address).await? {
            Resolution::Deliver(targets) => targets
                .into_iter()
                .map(|target| match target {
                    Target::Account { account_id, .. } => DeliveryTarget::Local {
                        account_id,
                        recipient: sender.to_owned(),
                    },
                    Target::Remote(remote) => DeliveryTarget::Remote {
                        recipient: remote.to_string(),
                    },
                })
                .collect(),
            Resolution::NotLocal => vec![DeliveryTarget::Remote {
                recipient: sender.to_owned(),
            }],
            Resolution::UnknownUser | Resolution::Disabled => Vec::new(),
        })
    }
}

fn lost_before<'a>(e: ClientError, unfinished: impl Iterator<Item = &'a OutboundEntry>) -> Lost {
    Lost::Before {
        why: failure_text(&e),
        unfinished: unfinished.cloned().collect(),
    }
}

/// How a client error reads in the delivery log: the remote's reply when there was
/// one, else our enhanced code and the reason.
fn failure_text(e: &ClientError) -> String {
    match e {
        ClientError::Refused(reply) => reply.to_string(),
        ClientError::Connect { .. } => format!("4.4.1 {e}"),
        ClientError::Timeout => "4.4.2 timed out waiting for the server".into(),
        ClientError::Closed => "4.4.2 the server closed the connection".into(),
        ClientError::Tls(why) if why.starts_with("4.") => why.clone(),
        other => format!("4.4.0 {other}"),
    }
}

/// Entries of the same message (blob and sender) together, in queue order.
fn group_by_message(entries: Vec<OutboundEntry>) -> Vec<Vec<OutboundEntry>> {
    let mut groups: Vec<Vec<OutboundEntry>> = Vec::new();
    for entry in entries {
        match groups
            .iter_mut()
            .find(|g| g[0].blob_id == entry.blob_id && g[0].sender == entry.sender)
        {
            Some(group) => group.push(entry),
            None => groups.push(vec![entry]),
        }
    }
    groups
}

/// Renews the worker's leases every third of their length until `done`.
async fn renew_leases(store: Store, owner: String, ttl: Duration, done: CancellationToken) {
    let every = (ttl / 3).max(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = done.cancelled() => return,
        }
        match store.renew_queue_leases(&owner, ttl).await {
            Ok(held) => tracing::debug!(held, "renewed queue leases"),
            Err(e) => tracing::warn!(error = %e, "cannot renew queue leases"),
        }
    }
}
