//! One SMTP session: the dialogue state as types, and the commands that move it.
//!
//! ```text
//!             HELO/EHLO           MAIL           RCPT (accepted)
//! Connected ------------> Greeted ------> Mail ----------------> Rcpt --+ more RCPT
//!                           ^  ^                                  |  <--+
//!                           |  +------ RSET, HELO/EHLO -----------+
//!                           +--------- DATA + message text -------+
//! STARTTLS, from any state, goes back to Connected (RFC 3207: what was learnt
//! before TLS is forgotten, AUTH included).
//! ```
//!
//! A command that is not allowed in a state (RCPT in `Greeted`, DATA in `Mail`) is
//! answered by the state it finds, never by a flag checked in each handler.

use std::net::IpAddr;
use std::sync::Arc;

use postcell_directory::{Address, Resolution, Target};
use postcell_net::{Connection, LineError};
use postcell_store::{
    Account, DeliveryOutcome, DeliveryStatus, DeliveryTarget, Direction, LogEntry,
};
use tracing::Instrument;

use crate::command::{self, Command, MailFrom, RcptTo};
use crate::data::{DataError, DataReader, Progress};
use crate::deliver::{self, Submission, Trace};
use crate::error::SmtpError;
use crate::reply::{self, Capabilities, Reply};
use crate::{Role, SmtpServer};

/// What the client called itself.
#[derive(Debug, Clone)]
pub(crate) struct Greeting {
    pub helo: String,
    /// EHLO rather than HELO: ESMTP extensions (AUTH among them) may be used.
    pub extended: bool,
}

/// A mail transaction under way (RFC 5321 3.3).
#[derive(Debug)]
pub(crate) struct Envelope {
    /// `None` for the null sender `<>`.
    pub sender: Option<Address>,
    pub declared_size: Option<usize>,
    /// Recipients accepted, as the client gave them.
    pub recipients: Vec<Address>,
    /// Where the message goes: every recipient's targets, each once (an alias and a
    /// direct address of the same account deliver one copy).
    pub targets: Vec<DeliveryTarget>,
    /// Submission with From rewriting on: the canonical address `From:` becomes.
    pub rewrite_to: Option<String>,
    /// The transaction's span (sender, then queue id), a child of the session's.
    /// Fields recorded on the session's span would pile up there, one copy per
    /// message, for as long as the connection lasts.
    pub span: tracing::Span,
}

impl Envelope {
    fn new(from: MailFrom) -> Envelope {
        let sender = from
            .sender
            .as_ref()
            .map(Address::to_string)
            .unwrap_or_default();
        Envelope {
            span: tracing::info_span!("mail", mail_from = %sender, queue_id = tracing::field::Empty),
            sender: from.sender,
            declared_size: from.size,
            recipients: Vec::new(),
            targets: Vec::new(),
            rewrite_to: None,
        }
    }

    fn add_recipient(&mut self, recipient: Address, targets: Vec<DeliveryTarget>) {
        for target in targets {
            let duplicate = self.targets.iter().any(|known| same_target(known, &target));
            if !duplicate {
                self.targets.push(target);
            }
        }
        self.recipients.push(recipient);
    }

    fn sender_text(&self) -> String {
        self.sender
            .as_ref()
            .map(Address::to_string)
            .unwrap_or_default()
    }
}

pub(crate) fn same_target(a: &DeliveryTarget, b: &DeliveryTarget) -> bool {
    match (a, b) {
        (
            DeliveryTarget::Local { account_id: x, .. },
            DeliveryTarget::Local { account_id: y, .. },
        ) => x == y,
        // Domains are already lower case; a remote local part may be case-sensitive.
        (
            DeliveryTarget::Remote { recipient: x } | DeliveryTarget::Forward { recipient: x, .. },
            DeliveryTarget::Remote { recipient: y } | DeliveryTarget::Forward { recipient: y, .. },
        ) => x == y,
        _ => false,
    }
}

pub(crate) enum State {
    /// No HELO/EHLO yet, or STARTTLS just completed.
    Connected,
    /// Greeted; no transaction.
    Greeted(Greeting),
    /// MAIL FROM accepted; no recipient yet.
    Mail(Greeting, Envelope),
    /// At least one recipient accepted: DATA may follow.
    Rcpt(Greeting, Envelope),
}

/// What to do after a command.
pub(crate) enum Flow {
    Continue,
    Quit,
}

/// The outcome of checking one RCPT.
enum RecipientCheck {
    Accept(Vec<DeliveryTarget>),
    Reject(Reply, &'static str),
    /// The store could not answer: `451`, and nothing to log.
    Unavailable,
}

pub(crate) struct Session {
    pub server: Arc<SmtpServer>,
    pub conn: Connection,
    pub state: State,
    /// The account, once AUTH succeeded.
    pub user: Option<Account>,
    /// Error replies sent so far.
    pub errors: usize,
    /// Whether the session's span has its `helo` field (EHLO comes again after STARTTLS).
    helo_recorded: bool,
}

impl Session {
    pub fn new(server: Arc<SmtpServer>, conn: Connection) -> Session {
        Session {
            server,
            conn,
            state: State::Connected,
            user: None,
            errors: 0,
            helo_recorded: false,
        }
    }

    pub fn peer_ip(&self) -> IpAddr {
        self.conn.peer().ip().to_canonical()
    }

    /// Runs the session to its end and closes the connection.
    pub async fn run(mut self) {
        let config = &self.server.config;
        self.conn.set_idle_timeout(config.idle_timeout);
        let hostname = config.hostname.clone();
        let max_errors = config.max_errors;
        if self.conn.shutdown_requested() {
            self.conn.write(&reply::shutting_down(&hostname).to_bytes());
            self.conn.close().await;
            return;
        }
        if let Some(description) = self.conn.tls_description() {
            // Implicit TLS (a listener that starts TLS before the session does).
            tracing::Span::current().record("tls", description.as_str());
        }
        self.reply(&reply::greeting(&hostname));
        let end = loop {
            match self.next_command().await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Quit) => break None,
                Err(e) => break Some(e),
            }
            if self.errors >= max_errors {
                tracing::info!(errors = self.errors, "too many errors, closing");
                self.conn.write(&reply::TOO_MANY_ERRORS.to_bytes());
                break None;
            }
            // RFC 2920: replies to pipelined commands may wait while more are queued.
            if !self.conn.has_buffered_input()
                && let Err(e) = self.conn.flush().await
            {
                break Some(e.into());
            }
        };
        match end {
            None => {}
            Some(SmtpError::Read(LineError::Timeout)) => {
                tracing::info!("idle timeout");
                self.conn.write(&reply::idle_timeout(&hostname).to_bytes());
            }
            Some(SmtpError::Read(LineError::Shutdown)) => {
                self.conn.write(&reply::shutting_down(&hostname).to_bytes());
            }
            Some(SmtpError::Read(LineError::Closed)) => {
                tracing::debug!("client closed the connection")
            }
            Some(e) => tracing::info!(error = %e, "session ended"),
        }
        self.conn.close().await;
    }

    /// Buffers a reply; a 5yz reply counts as an error of the client.
    pub fn reply(&mut self, reply: &Reply) {
        if reply.is_permanent_failure() {
            self.errors += 1;
        }
        self.conn.write(&reply.to_bytes());
    }

    async fn next_command(&mut self) -> Result<Flow, SmtpError> {
        let line = match self
            .conn
            .read_line(self.server.config.max_line_length)
            .await
        {
            Ok(line) => line,
            Err(LineError::TooLong) => {
                self.reply(&reply::LINE_TOO_LONG);
                return Ok(Flow::Continue);
            }
            Err(e) => return Err(e.into()),
        };
        if line.bare_lf {
            self.reply(&reply::BARE_LF);
            return Ok(Flow::Continue);
        }
        match command::parse(&line.text) {
            Ok(command) => self.execute(command).await,
            Err(e) => {
                tracing::debug!(error = ?e, "refused command line");
                self.reply(&e.reply());
                Ok(Flow::Continue)
            }
        }
    }

    async fn execute(&mut self, command: Command) -> Result<Flow, SmtpError> {
        match command {
            Command::Helo { host } => self.helo(host, false),
            Command::Ehlo { host } => self.helo(host, true),
            Command::Mail(from) => self.mail(from).await,
            Command::Rcpt(to) => {
                let span = self.transaction_span();
                self.rcpt(to).instrument(span).await
            }
            Command::Data => {
                let span = self.transaction_span();
                return self.data().instrument(span).await;
            }
            Command::Rset => {
                self.state = match std::mem::replace(&mut self.state, State::Connected) {
                    State::Connected => State::Connected,
                    State::Greeted(g) | State::Mail(g, _) | State::Rcpt(g, _) => State::Greeted(g),
                };
                self.reply(&reply::OK);
            }
            Command::Noop => self.reply(&reply::OK),
            Command::Vrfy => self.reply(&reply::CANNOT_VRFY),
            Command::Help => self.reply(&reply::HELP),
            Command::Quit => {
                self.reply(&reply::BYE);
                return Ok(Flow::Quit);
            }
            Command::StartTls => self.starttls().await?,
            Command::Auth {
                mechanism,
                initial_response,
            } => crate::auth::authenticate(self, mechanism, initial_response).await?,
            Command::NotImplemented(_) => self.reply(&reply::NOT_IMPLEMENTED),
        }
        Ok(Flow::Continue)
    }

    /// The open transaction's span, or none.
    fn transaction_span(&self) -> tracing::Span {
        match &self.state {
            State::Mail(_, envelope) | State::Rcpt(_, envelope) => envelope.span.clone(),
            State::Connected | State::Greeted(_) => tracing::Span::none(),
        }
    }

    /// HELO or EHLO: (re)starts the session, ending any transaction (RFC 5321 4.1.4).
    fn helo(&mut self, host: String, extended: bool) {
        if !self.helo_recorded {
            tracing::Span::current().record("helo", host.as_str());
            self.helo_recorded = true;
        }
        self.state = State::Greeted(Greeting {
            helo: host,
            extended,
        });
        let hostname = &self.server.config.hostname;
        if extended {
            let capabilities = Capabilities {
                max_message_size: self.server.config.max_message_size,
                starttls: self.server.tls.is_some() && !self.conn.is_tls(),
                auth: crate::auth::allowed(self),
            };
            self.conn.write(&reply::ehlo(hostname, capabilities));
        } else {
            let helo = reply::helo(hostname);
            self.reply(&helo);
        }
    }

    async fn mail(&mut self, mut from: MailFrom) {
        let greeting = match &self.state {
            State::Connected => return self.reply(&reply::SEND_HELO_FIRST),
            State::Mail(..) | State::Rcpt(..) => return self.reply(&reply::NESTED_MAIL),
            State::Greeted(greeting) => greeting.clone(),
        };
        if from
            .size
            .is_some_and(|size| size > self.server.config.max_message_size)
        {
            metrics::counter!("postcell_smtp_rejected_total", "reason" => "message_too_big")
                .increment(1);
            tracing::info!(size = from.size, "declared size over the limit");
            return self.reply(&reply::MESSAGE_TOO_BIG);
        }
        let mut rewrite_to = None;
        if self.server.config.role == Role::Submission {
            match self.check_submission_sender(&from).await {
                Ok(canonical) => rewrite_to = canonical,
                Err(refusal) => {
                    metrics::counter!("postcell_smtp_rejected_total", "reason" => "sender_not_owned")
                        .increment(1);
                    return self.reply(&refusal);
                }
            }
            if let Some(canonical) = &rewrite_to {
                from.sender = Address::parse(canonical).ok();
            }
        }
        let mut envelope = Envelope::new(from);
        envelope.rewrite_to = rewrite_to;
        self.state = State::Mail(greeting, envelope);
        self.reply(&reply::SENDER_OK);
    }

    /// Submission: the user must be logged in and the sender must be one of theirs.
    /// Returns the canonical address when the user has From rewriting on.
    async fn check_submission_sender(&self, from: &MailFrom) -> Result<Option<String>, Reply> {
        let Some(account) = &self.user else {
            return Err(reply::AUTH_REQUIRED);
        };
        let owned = match &from.sender {
            Some(sender) => match self.owns(account, sender).await {
                Ok(owned) => owned,
                Err(e) => {
                    tracing::error!(error = %e, "cannot check the sender's address");
                    return Err(reply::TEMPORARY_FAILURE);
                }
            },
            None => false,
        };
        if !owned {
            let sender = from
                .sender
                .as_ref()
                .map(Address::to_string)
                .unwrap_or_default();
            tracing::info!(%sender, user = %account.name, "sender address not owned by the user");
            return Err(reply::sender_not_owned(&sender, &account.name));
        }
        match self.server.store().account_settings(account.id).await {
            Ok(settings) if settings.rewrite_from => Ok(Some(account.name.clone())),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the account's settings");
                Err(reply::TEMPORARY_FAILURE)
            }
        }
    }

    /// Whether `address` delivers to `account` (directly or as a sub-address).
    async fn owns(
        &self,
        account: &Account,
        address: &Address,
    ) -> Result<bool, postcell_store::StoreError> {
        let store = self.server.store();
        if let Some(owner) = store.account_by_address(&address.key()).await? {
            return Ok(owner.id == account.id);
        }
        match self
            .server
            .directory
            .recipient_delimiter()
            .and_then(|d| address.without_detail(d))
        {
            Some(base) => Ok(store
                .account_by_address(&base.key())
                .await?
                .is_some_and(|owner| owner.id == account.id)),
            None => Ok(false),
        }
    }

    async fn rcpt(&mut self, to: RcptTo) {
        let (accepted, declared_size, sender) = match &self.state {
            State::Mail(_, envelope) | State::Rcpt(_, envelope) => (
                envelope.recipients.len(),
                envelope.declared_size,
                envelope.sender_text(),
            ),
            State::Connected | State::Greeted(_) => return self.reply(&reply::NEED_MAIL),
        };
        let recipient = to.recipient;
        let check = if accepted >= self.server.config.max_recipients {
            RecipientCheck::Reject(reply::TOO_MANY_RECIPIENTS, "too_many_recipients")
        } else {
            self.check_recipient(&recipient, declared_size).await
        };
        match check {
            RecipientCheck::Accept(targets) => {
                tracing::debug!(%recipient, targets = targets.len(), "recipient accepted");
                self.state = match std::mem::replace(&mut self.state, State::Connected) {
                    State::Mail(g, mut envelope) | State::Rcpt(g, mut envelope) => {
                        envelope.add_recipient(recipient, targets);
                        State::Rcpt(g, envelope)
                    }
                    other => other,
                };
                self.reply(&reply::RECIPIENT_OK);
            }
            RecipientCheck::Reject(reply, reason) => {
                self.log_rejection(&sender, &[recipient], &reply, reason)
                    .await;
                self.reply(&reply);
            }
            RecipientCheck::Unavailable => self.reply(&reply::TEMPORARY_FAILURE),
        }
    }

    /// Resolves a recipient and checks that its mailboxes have room.
    async fn check_recipient(
        &self,
        recipient: &Address,
        declared_size: Option<usize>,
    ) -> RecipientCheck {
        let directory = &self.server.directory;
        if let Some(original) = self.srs_bounce(recipient) {
            tracing::info!(%recipient, %original, "bounce to a forwarded message's sender");
            return RecipientCheck::Accept(vec![DeliveryTarget::Remote {
                recipient: original,
            }]);
        }
        let resolution = match directory.resolve(recipient).await {
            Ok(resolution) => resolution,
            Err(e) => {
                tracing::error!(error = %e, %recipient, "cannot resolve a recipient");
                return RecipientCheck::Unavailable;
            }
        };
        let targets = match resolution {
            Resolution::Deliver(targets) => targets,
            Resolution::UnknownUser => {
                return RecipientCheck::Reject(reply::unknown_user(recipient), "unknown_user");
            }
            Resolution::Disabled => {
                return RecipientCheck::Reject(
                    reply::mailbox_disabled(recipient),
                    "mailbox_disabled",
                );
            }
            // Relaying is for authenticated users only: never an open relay.
            Resolution::NotLocal if self.user.is_some() => {
                return RecipientCheck::Accept(vec![DeliveryTarget::Remote {
                    recipient: recipient.to_string(),
                }]);
            }
            Resolution::NotLocal => {
                return RecipientCheck::Reject(reply::relay_denied(recipient), "relay_denied");
            }
        };
        let needed = declared_size.unwrap_or(0).max(1) as i64;
        let mut delivery_targets = Vec::with_capacity(targets.len());
        let mut forwarding = false;
        for target in targets {
            match target {
                Target::Account {
                    account_id,
                    quota,
                    has_forwards,
                    ..
                } => {
                    if !quota.fits(needed) {
                        return if quota.limit_bytes > 0 && needed > quota.limit_bytes {
                            RecipientCheck::Reject(
                                reply::recipient_quota_exceeded(recipient),
                                "mailbox_full",
                            )
                        } else {
                            RecipientCheck::Reject(
                                reply::recipient_mailbox_full(recipient),
                                "mailbox_full",
                            )
                        };
                    }
                    forwarding |= has_forwards;
                    delivery_targets.push(DeliveryTarget::Local {
                        account_id,
                        recipient: recipient.to_string(),
                    });
                }
                Target::Remote(address) => delivery_targets.push(DeliveryTarget::Remote {
                    recipient: address.to_string(),
                }),
            }
        }
        if !forwarding {
            return RecipientCheck::Accept(delivery_targets);
        }
        let sender = match &self.state {
            State::Mail(_, envelope) | State::Rcpt(_, envelope) => envelope.sender.clone(),
            _ => None,
        };
        match crate::forward::apply(&self.server, delivery_targets, sender.as_ref()).await {
            Ok(targets) => RecipientCheck::Accept(targets),
            Err(e) => {
                tracing::error!(error = %e, %recipient, "cannot apply forwarding");
                RecipientCheck::Unavailable
            }
        }
    }

    /// A recipient that is an SRS address of ours (a bounce of forwarded mail): the
    /// original sender it stands for.
    fn srs_bounce(&self, recipient: &Address) -> Option<String> {
        let srs = self.server.config.srs.as_ref()?;
        if !recipient.domain().eq_ignore_ascii_case(&srs.domain) {
            return None;
        }
        srs.reverse(recipient.local_part(), postcell_store::now() as u64)
    }

    async fn data(&mut self) -> Result<Flow, SmtpError> {
        let (greeting, envelope) = match std::mem::replace(&mut self.state, State::Connected) {
            State::Rcpt(greeting, envelope) => (greeting, envelope),
            other => {
                let refusal = match other {
                    State::Mail(..) => reply::NEED_RCPT,
                    _ => reply::NEED_MAIL,
                };
                self.state = other;
                self.reply(&refusal);
                return Ok(Flow::Continue);
            }
        };
        // The transaction ends with DATA, however the message fares.
        self.state = State::Greeted(greeting.clone());
        self.reply(&reply::START_DATA);
        let max_size = self.server.config.max_message_size;
        let mut reader = DataReader::new(max_size, envelope.declared_size);
        // A line can be as long as a message may be: the size limit bounds memory.
        let line_limit = max_size.max(1000);
        loop {
            match self.conn.read_continuation_line(line_limit).await {
                Ok(line) => {
                    if reader.push_line(&line.text, line.bare_lf) == Progress::End {
                        break;
                    }
                }
                Err(LineError::TooLong) => reader.push_overlong_line(),
                Err(e) => return Err(e.into()),
            }
        }
        let size = reader.size();
        match reader.finish() {
            Ok(message) => match self.prepare(&greeting, &envelope, message).await {
                Ok((message, extra_headers)) => {
                    self.deliver(&greeting, &envelope, &message, &extra_headers)
                        .await
                }
                Err((refusal, reason)) => self.reject_message(&envelope, refusal, reason).await,
            },
            Err(DataError::TooBig) => {
                tracing::info!(size, "message over the size limit");
                self.reject_message(&envelope, reply::MESSAGE_TOO_BIG, "message_too_big")
                    .await;
            }
            Err(DataError::BareLfOrNul) => {
                tracing::info!(size, "message with a bare LF or NUL");
                self.reject_message(&envelope, reply::BARE_LF_IN_MESSAGE, "bare_lf")
                    .await;
            }
        }
        Ok(Flow::Continue)
    }

    /// What the role does to a received message before it is stored. Returns the
    /// message and the header fields to put above it, or the refusal.
    async fn prepare(
        &self,
        greeting: &Greeting,
        envelope: &Envelope,
        message: Vec<u8>,
    ) -> Result<(Vec<u8>, String), (Reply, &'static str)> {
        match self.server.config.role {
            Role::Submission => self.prepare_submission(envelope, message).await,
            Role::Mx if self.server.config.verify_inbound && self.user.is_none() => {
                let peer = crate::verdict::Peer {
                    ip: self.peer_ip(),
                    helo: &greeting.helo,
                    mail_from: &envelope.sender_text(),
                };
                let config = &self.server.config;
                // RFC 8601 5: a field claiming our name that we did not write is forged.
                let message = crate::submission::remove_fields_where(
                    &message,
                    "Authentication-Results",
                    |value| {
                        let id = value.trim_start();
                        let n = config.hostname.len();
                        id.get(..n)
                            .is_some_and(|name| name.eq_ignore_ascii_case(&config.hostname))
                            && id[n..].starts_with(|c: char| c == ';' || c.is_whitespace())
                    },
                );
                let verdict =
                    crate::verdict::check(&config.dns, &config.hostname, peer, &message).await;
                metrics::counter!("postcell_smtp_dmarc_total", "result" => verdict.dmarc.clone())
                    .increment(1);
                if verdict.dmarc_reject && config.reject_dmarc_failures {
                    tracing::info!(verdict = %verdict.header.trim_end(), "DMARC policy says reject");
                    return Err((reply::DMARC_REJECT, "dmarc_reject"));
                }
                Ok((message, verdict.header))
            }
            Role::Mx => Ok((message, String::new())),
        }
    }

    /// Submission: every `From:` address must be the user's; then From rewriting,
    /// `Message-ID:` and `Date:`, and the DKIM signature of the `From:` domain.
    async fn prepare_submission(
        &self,
        envelope: &Envelope,
        message: Vec<u8>,
    ) -> Result<(Vec<u8>, String), (Reply, &'static str)> {
        use crate::submission;
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, "cannot check a submitted message");
            (reply::TEMPORARY_FAILURE, "store_unavailable")
        };
        let Some(account) = &self.user else {
            return Err((reply::AUTH_REQUIRED, "not_authenticated"));
        };
        let from = submission::from_addresses(&message);
        if from.is_empty() {
            return Err((reply::NO_FROM_HEADER, "no_from"));
        }
        for text in &from {
            let owned = match Address::parse(text) {
                Ok(address) => self
                    .owns(account, &address)
                    .await
                    .map_err(|e| unavailable(&e))?,
                Err(_) => false,
            };
            if !owned {
                tracing::info!(from = %text, user = %account.name, "From: address not owned by the user");
                return Err((reply::FROM_NOT_OWNED, "from_not_owned"));
            }
        }
        let mut message = match &envelope.rewrite_to {
            Some(canonical) => submission::rewrite_from(&message, canonical),
            None => message,
        };
        let hostname = &self.server.config.hostname;
        message = submission::add_missing_fields(&message, hostname, &deliver::now_rfc5322());
        let signing_domain = envelope
            .rewrite_to
            .as_deref()
            .unwrap_or(&from[0])
            .rsplit_once('@')
            .map(|(_, domain)| domain.to_ascii_lowercase())
            .unwrap_or_default();
        let key = self
            .server
            .store()
            .dkim_key(&signing_domain)
            .await
            .map_err(|e| unavailable(&e))?;
        let signature = match key {
            Some(key) => match crate::dkim::sign(&key, &message) {
                Ok(header) => header,
                Err(e) => {
                    // Better unsigned than not sent: the recipient sees no signature.
                    tracing::error!(error = %e, domain = %signing_domain, "cannot DKIM-sign");
                    String::new()
                }
            },
            None => String::new(),
        };
        Ok((message, signature))
    }

    async fn deliver(
        &mut self,
        greeting: &Greeting,
        envelope: &Envelope,
        message: &[u8],
        extra_headers: &str,
    ) {
        let queue_id = deliver::new_queue_id();
        envelope.span.record("queue_id", queue_id.as_str());
        let date = deliver::now_rfc5322();
        let submission = Submission {
            sender: envelope.sender.as_ref(),
            targets: &envelope.targets,
            trace: Trace {
                helo: &greeting.helo,
                peer: self.peer_ip(),
                hostname: &self.server.config.hostname,
                protocol: deliver::protocol(
                    greeting.extended,
                    self.conn.is_tls(),
                    self.user.is_some(),
                ),
                queue_id: &queue_id,
                recipient: match envelope.recipients.as_slice() {
                    [only] => Some(only),
                    _ => None,
                },
                date: &date,
            },
            extra_headers,
            message,
        };
        match submission.store(self.server.store()).await {
            Ok((DeliveryOutcome::Done(_), message_id)) => {
                metrics::counter!("postcell_smtp_messages_received_total").increment(1);
                metrics::counter!("postcell_smtp_bytes_received_total")
                    .increment(message.len() as u64);
                tracing::info!(
                    queue_id = %queue_id,
                    message_id = message_id.as_deref().unwrap_or(""),
                    from = %envelope.sender_text(),
                    recipients = envelope.recipients.len(),
                    targets = envelope.targets.len(),
                    size = message.len(),
                    "message accepted"
                );
                self.reply(&reply::queued(&queue_id));
            }
            Ok((
                DeliveryOutcome::OverQuota {
                    accounts,
                    permanent,
                },
                _,
            )) => {
                tracing::info!(queue_id = %queue_id, ?accounts, permanent, "mailbox full");
                let refusal = if permanent {
                    reply::MAILBOX_FULL
                } else {
                    reply::MAILBOX_FULL_TRY_LATER
                };
                self.reject_message(envelope, refusal, "mailbox_full").await;
            }
            Err(e) => {
                // Nothing was committed: the client keeps the message and tries again.
                tracing::error!(queue_id = %queue_id, error = %e, "cannot store a message");
                self.reply(&reply::TEMPORARY_FAILURE);
            }
        }
    }

    /// Refuses a whole message: one delivery-log record per recipient.
    async fn reject_message(&mut self, envelope: &Envelope, refusal: Reply, reason: &'static str) {
        self.log_rejection(
            &envelope.sender_text(),
            &envelope.recipients,
            &refusal,
            reason,
        )
        .await;
        self.reply(&refusal);
    }

    /// Counts a refusal and writes it to the delivery log, so "what happened to my
    /// mail?" has an answer for refused mail too. A log that cannot be written does
    /// not change the reply.
    async fn log_rejection(
        &self,
        sender: &str,
        recipients: &[Address],
        refusal: &Reply,
        reason: &'static str,
    ) {
        metrics::counter!("postcell_smtp_rejected_total", "reason" => reason).increment(1);
        let remote = format!("smtp from {}", self.peer_ip());
        for recipient in recipients {
            tracing::info!(%recipient, from = sender, reason, reply = %refusal, "rejected");
            let entry = LogEntry {
                direction: Direction::Inbound,
                queue_id: None,
                message_id: None,
                sender: sender.to_owned(),
                recipient: recipient.to_string(),
                status: DeliveryStatus::Rejected,
                remote: Some(remote.clone()),
                reply: Some(refusal.to_string()),
            };
            if let Err(e) = self.server.store().record_delivery(&entry).await {
                tracing::warn!(error = %e, "cannot write the delivery log");
            }
        }
    }

    async fn starttls(&mut self) -> Result<(), SmtpError> {
        if self.conn.is_tls() {
            self.reply(&reply::TLS_ALREADY_ACTIVE);
            return Ok(());
        }
        let Some(acceptor) = self.server.tls.clone() else {
            self.reply(&reply::TLS_NOT_AVAILABLE);
            return Ok(());
        };
        self.reply(&reply::READY_FOR_TLS);
        self.conn
            .start_tls(&acceptor)
            .await
            .map_err(SmtpError::Tls)?;
        // RFC 3207 4.2: forget everything learnt from the client before TLS.
        self.state = State::Connected;
        self.user = None;
        let description = self.conn.tls_description().unwrap_or_default();
        tracing::Span::current().record("tls", description.as_str());
        tracing::debug!(tls = %description, "TLS started");
        Ok(())
    }
}
