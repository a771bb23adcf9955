//! `postcell serve`: open the store, bind every configured listener, join the cell,
//! serve until told to stop, then leave in order (see [`crate::lifecycle`]).

use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result};
use postcell_directory::Directory;
use postcell_imap::{ImapConfig, ImapServer};
use postcell_net::{
    CancellationToken, Connection, Listener, ListenerOptions, TaskTracker, TlsAcceptor,
};
use postcell_pop3::{Pop3Config, Pop3Server};
use postcell_relay::{Relay, RelayConfig};
use postcell_smtp::dns::{Dns, ResolverMode};
use postcell_smtp::{Role, SmtpConfig, SmtpServer};
use postcell_store::Store;
use tokio::task::JoinHandle;

use crate::config::{Config, ListenerName, LogFormat, ResolverKind, StartTlsKind};

pub async fn run(config: Config) -> Result<()> {
    init_logging(&config)?;
    let started_at = postcell_store::now();
    let metrics = crate::lifecycle::install_metrics()?;
    let store = Store::open(&config.store_config())
        .await
        .context("cannot open the store")?;
    let directory = Directory::new(store.clone(), config.directory_config());
    let tls = load_tls(&config)?;
    let dns = Dns::new(
        match config.dns.resolver {
            ResolverKind::System => ResolverMode::System,
            ResolverKind::Static => ResolverMode::Static,
        },
        &config.dns.records,
    )
    .context("key dns")?;

    // Bind everything before serving anything: a port in use stops the start.
    let mut bound = Vec::new();
    let mut http = None;
    for (&name, endpoint) in &config.listen {
        if name == ListenerName::Http {
            http = Some(
                tokio::net::TcpListener::bind(endpoint.0)
                    .await
                    .with_context(|| format!("listener http on {}", endpoint.0))?,
            );
            continue;
        }
        let listener = Listener::bind(name.as_str(), endpoint.0)
            .await?
            .with_proxy_protocol(config.proxy_policy(name));
        bound.push((name, listener));
    }

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let smtp = SmtpServer::new(
        smtp_config(&config, Role::Mx, &dns),
        directory.clone(),
        tls.clone(),
    );
    let submission = SmtpServer::new(
        smtp_config(&config, Role::Submission, &dns),
        directory.clone(),
        tls.clone(),
    );
    let pop3 = Pop3Server::new(pop3_config(&config), directory.clone(), tls.clone());
    let imap = ImapServer::new(imap_config(&config), directory.clone(), tls.clone());
    let mut accept_loops = Vec::new();
    let mut addresses = Vec::new();
    for (name, listener) in bound {
        addresses.push(format!("{name}={}", listener.local_addr()?));
        let implicit_tls = if name.implicit_tls() {
            tls.clone()
        } else {
            None
        };
        let options = |max_connections, busy_reply| ListenerOptions {
            implicit_tls,
            max_connections,
            busy_reply,
        };
        let task = match name {
            ListenerName::Smtp => spawn_accept_loop(
                listener,
                options(config.smtp.max_connections, postcell_smtp::BUSY_REPLY),
                (&shutdown, &tracker),
                smtp.clone(),
                SmtpServer::handle,
            ),
            ListenerName::Submission | ListenerName::Submissions => spawn_accept_loop(
                listener,
                options(config.submission.max_connections, postcell_smtp::BUSY_REPLY),
                (&shutdown, &tracker),
                submission.clone(),
                SmtpServer::handle,
            ),
            ListenerName::Pop3 | ListenerName::Pop3s => spawn_accept_loop(
                listener,
                options(config.pop3.max_connections, postcell_pop3::BUSY_REPLY),
                (&shutdown, &tracker),
                pop3.clone(),
                Pop3Server::handle,
            ),
            ListenerName::Imap | ListenerName::Imaps => spawn_accept_loop(
                listener,
                options(config.imap.max_connections, postcell_imap::BUSY_REPLY),
                (&shutdown, &tracker),
                imap.clone(),
                ImapServer::handle,
            ),
            other => anyhow::bail!("listener {other} is not available in this version"),
        };
        accept_loops.push(task);
    }

    if let Some(http) = &http {
        addresses.push(format!("http={}", http.local_addr()?));
    }
    let node = crate::lifecycle::Node::join(
        &config,
        store.clone(),
        addresses.join(" "),
        started_at,
        http,
        metrics,
    )
    .await?;
    // After the node id is ours: queue leases name it.
    let relay = if config.roles().contains(&crate::cell_config::Role::Relay) {
        let relay = Relay::new(relay_config(&config)?, directory.clone(), dns.clone())
            .context("cannot start the relay")?;
        Some(tokio::spawn(relay.run(shutdown.clone())))
    } else {
        None
    };
    tracing::info!(node = %config.node_id(), store = %store.backend(), "postcell started");
    node.run_until_stopped(&config, shutdown, tracker, accept_loops, relay)
        .await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Accepts connections on `listener` until shutdown, each served by `handle` on the
/// protocol's server.
fn spawn_accept_loop<S, H, F>(
    listener: Listener,
    options: ListenerOptions,
    (shutdown, tracker): (&CancellationToken, &TaskTracker),
    server: Arc<S>,
    handle: H,
) -> JoinHandle<()>
where
    S: Send + Sync + 'static,
    H: Fn(Arc<S>, Connection) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(postcell_net::serve(
        listener,
        options,
        shutdown.clone(),
        tracker.clone(),
        move |connection| handle(server.clone(), connection),
    ))
}

fn init_logging(config: &Config) -> Result<()> {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| config.log.level.clone());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).context("log level")?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let result = match config.log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

/// Loads the certificate. A broken certificate stops the start when a listener needs
/// TLS from the first byte; otherwise the node runs without STARTTLS and says so.
fn load_tls(config: &Config) -> Result<Option<TlsAcceptor>> {
    let (cert, key) = (config.path(&config.tls.cert), config.path(&config.tls.key));
    match postcell_net::tls::load_acceptor(&cert, &key) {
        Ok(acceptor) => Ok(Some(acceptor)),
        Err(e) if config.listen.keys().any(|l| l.implicit_tls()) => Err(e).context(format!(
            "config file {}: keys tls.cert/tls.key",
            config.file.display()
        )),
        Err(e) => {
            tracing::warn!(error = %e, "TLS is off: no STARTTLS, and passwords only from loopback");
            Ok(None)
        }
    }
}

fn smtp_config(config: &Config, role: Role, dns: &Dns) -> SmtpConfig {
    let srs = (!config.srs.secret.is_empty()).then(|| {
        let domain = config
            .srs
            .domain
            .clone()
            .unwrap_or_else(|| config.hostname());
        postcell_smtp::srs::Srs::new(&config.srs.secret, &domain)
    });
    SmtpConfig {
        hostname: config.hostname(),
        max_message_size: config.smtp.max_message_size.0 as usize,
        max_recipients: config.smtp.max_recipients,
        max_line_length: config.smtp.max_line_length,
        max_errors: config.smtp.max_errors,
        idle_timeout: config.smtp.idle_timeout.0,
        allow_plaintext_auth: config.auth.allow_plaintext,
        role,
        loopback_plaintext_auth: config.submission.loopback_plaintext,
        verify_inbound: config.mx.verify,
        reject_dmarc_failures: config.mx.reject_dmarc_failures,
        dns: dns.clone(),
        srs,
    }
}

fn relay_config(config: &Config) -> Result<RelayConfig> {
    let relay = &config.relay;
    Ok(RelayConfig {
        hostname: config.hostname(),
        routing: config.routing().map_err(anyhow::Error::msg)?,
        schedule: postcell_relay::schedule::RetrySchedule {
            initial: relay.retry_initial.0,
            max: relay.retry_max.0,
            expiry: relay.expiry.0,
        },
        lease_ttl: relay.lease_ttl.0,
        poll_interval: relay.poll_interval.0,
        batch: relay.batch,
        max_connections: relay.max_connections,
        per_destination: relay.per_destination,
        timeouts: postcell_relay::client::Timeouts {
            connect: relay.connect_timeout.0,
            command: relay.command_timeout.0,
            data: relay.data_timeout.0,
        },
        starttls: match relay.starttls {
            StartTlsKind::Opportunistic => postcell_relay::StartTls::Opportunistic,
            StartTlsKind::Required => postcell_relay::StartTls::Required,
            StartTlsKind::Off => postcell_relay::StartTls::Off,
        },
        certificates: if relay.verify_certificates {
            postcell_relay::client::CertificatePolicy::Verify
        } else {
            postcell_relay::client::CertificatePolicy::Any
        },
    })
}

fn pop3_config(config: &Config) -> Pop3Config {
    Pop3Config {
        hostname: config.hostname(),
        idle_timeout: config.pop3.idle_timeout.0,
        allow_plaintext_auth: config.auth.allow_plaintext,
        lease_ttl: config.pop3.lease_ttl.0,
    }
}

fn imap_config(config: &Config) -> ImapConfig {
    ImapConfig {
        hostname: config.hostname(),
        idle_timeout: config.imap.idle_timeout.0,
        allow_plaintext_auth: config.auth.allow_plaintext,
        max_message_size: config.imap.max_message_size.0,
        poll_interval: config.imap.poll_interval.0,
    }
}
