//! `postcell serve`: open the store, bind every configured listener, serve until
//! Ctrl-C or SIGTERM, then stop accepting, let sessions finish and exit.

use std::time::Duration;

use anyhow::{Context, Result};
use postcell_directory::Directory;
use postcell_imap::{ImapConfig, ImapServer};
use postcell_net::{CancellationToken, Listener, ListenerOptions, TaskTracker, TlsAcceptor};
use postcell_pop3::{Pop3Config, Pop3Server};
use postcell_smtp::{SmtpConfig, SmtpServer};
use postcell_store::Store;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::{Config, ListenerName, LogFormat};

/// How long sessions get to finish after a shutdown request.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
const HEARTBEAT: Duration = Duration::from_secs(10);

pub async fn run(config: Config) -> Result<()> {
    init_logging(&config)?;
    let started_at = postcell_store::now();
    let store = Store::open(&config.store_config())
        .await
        .context("cannot open the store")?;
    let directory = Directory::new(store.clone(), config.directory_config());
    let tls = load_tls(&config)?;

    // Bind everything before serving anything: a port in use stops the start.
    let mut bound = Vec::new();
    for (&name, endpoint) in &config.listen {
        if name == ListenerName::Http {
            install_metrics_exporter(endpoint.0)?;
            continue;
        }
        bound.push((name, Listener::bind(name.as_str(), endpoint.0).await?));
    }
    if !config.listen.contains_key(&ListenerName::Http) {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .context("cannot install the metrics recorder")?;
    }

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let smtp = SmtpServer::new(smtp_config(&config), directory.clone(), tls.clone());
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
        let (shutdown, tracker) = (shutdown.clone(), tracker.clone());
        let task = match name {
            ListenerName::Smtp => {
                let smtp = smtp.clone();
                let options = ListenerOptions {
                    implicit_tls,
                    max_connections: config.smtp.max_connections,
                    busy_reply: postcell_smtp::BUSY_REPLY,
                };
                tokio::spawn(postcell_net::serve(
                    listener,
                    options,
                    shutdown,
                    tracker,
                    move |c| smtp.clone().handle(c),
                ))
            }
            ListenerName::Pop3 | ListenerName::Pop3s => {
                let pop3 = pop3.clone();
                let options = ListenerOptions {
                    implicit_tls,
                    max_connections: config.pop3.max_connections,
                    busy_reply: postcell_pop3::BUSY_REPLY,
                };
                tokio::spawn(postcell_net::serve(
                    listener,
                    options,
                    shutdown,
                    tracker,
                    move |c| pop3.clone().handle(c),
                ))
            }
            ListenerName::Imap | ListenerName::Imaps => {
                let imap = imap.clone();
                let options = ListenerOptions {
                    implicit_tls,
                    max_connections: config.imap.max_connections,
                    busy_reply: postcell_imap::BUSY_REPLY,
                };
                tokio::spawn(postcell_net::serve(
                    listener,
                    options,
                    shutdown,
                    tracker,
                    move |c| imap.clone().handle(c),
                ))
            }
            other => anyhow::bail!("listener {other} is not available in this version"),
        };
        accept_loops.push(task);
    }

    let heartbeat = tokio::spawn(heartbeat(
        store.clone(),
        addresses.join(" "),
        started_at,
        shutdown.clone(),
    ));
    tracing::info!(node = %config.node_id(), store = %store.backend(), "postcell started");

    wait_for_signal().await?;
    tracing::info!("shutting down: no new connections; waiting for sessions to finish");
    shutdown.cancel();
    for task in accept_loops {
        let _ = task.await;
    }
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            sessions = tracker.len(),
            "sessions still running after {DRAIN_TIMEOUT:?}; exiting"
        );
    }
    let _ = heartbeat.await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
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

fn install_metrics_exporter(addr: std::net::SocketAddr) -> Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .with_context(|| format!("listener http on {addr}"))
}

fn smtp_config(config: &Config) -> SmtpConfig {
    SmtpConfig {
        hostname: config.hostname(),
        max_message_size: config.smtp.max_message_size.0 as usize,
        max_recipients: config.smtp.max_recipients,
        max_line_length: config.smtp.max_line_length,
        max_errors: config.smtp.max_errors,
        idle_timeout: config.smtp.idle_timeout.0,
        allow_plaintext_auth: config.auth.allow_plaintext,
    }
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

async fn heartbeat(store: Store, addresses: String, started_at: i64, shutdown: CancellationToken) {
    let version = env!("CARGO_PKG_VERSION");
    loop {
        if let Err(e) = store
            .heartbeat("mx,pop3", version, &addresses, started_at)
            .await
        {
            tracing::warn!(error = %e, "heartbeat failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

async fn wait_for_signal() -> Result<()> {
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM"),
        _ = interrupt.recv() => tracing::info!("SIGINT"),
    }
    Ok(())
}
