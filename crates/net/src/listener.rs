//! Accept loops. Each accepted connection runs as a task in a [`TaskTracker`], so a
//! shutdown can stop accepting, let sessions finish, and wait for them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::{Connection, ProxyProtocol, TlsAcceptor};

/// A bound listener, ready to serve.
pub struct Listener {
    pub name: &'static str,
    pub socket: TcpListener,
    /// Connections begin with a PROXY header from a trusted proxy (HAProxy).
    pub proxy: Option<ProxyProtocol>,
}

impl Listener {
    /// Binds now, so a configuration error (port in use) shows at start, not later.
    pub async fn bind(name: &'static str, addr: SocketAddr) -> std::io::Result<Listener> {
        let socket = TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("listener {name} on {addr}: {e}"))
        })?;
        Ok(Listener {
            name,
            socket,
            proxy: None,
        })
    }

    /// Expects every connection to begin with a PROXY protocol header from one of the
    /// trusted proxies; sessions then see the client's address from the header.
    pub fn with_proxy_protocol(mut self, proxy: Option<ProxyProtocol>) -> Listener {
        self.proxy = proxy;
        self
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

pub struct ListenerOptions {
    /// TLS from the first byte (pop3s, imaps, submissions).
    pub implicit_tls: Option<TlsAcceptor>,
    /// Connections beyond this are greeted with `busy_reply` and closed.
    pub max_connections: usize,
    pub busy_reply: &'static [u8],
}

/// Accepts connections until `shutdown` is cancelled, running `handler` for each one in
/// `tracker`. Returns once the accept loop has stopped; sessions may still be running.
pub async fn serve<H, F>(
    listener: Listener,
    options: ListenerOptions,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    handler: H,
) where
    H: Fn(Connection) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let name = listener.name;
    let proxy = listener.proxy.clone().map(Arc::new);
    let handler = Arc::new(handler);
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let local = listener.local_addr().ok();
    tracing::info!(listener = name, addr = ?local, "listening");
    loop {
        let accepted = tokio::select! {
            accepted = listener.socket.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::error!(listener = name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        metrics::counter!("postcell_connections_total", "listener" => name).increment(1);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("postcell_connections_refused_total", "listener" => name)
                .increment(1);
            tracing::warn!(listener = name, %peer, "connection limit reached");
            let busy = options.busy_reply;
            tracker.spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut tcp = tcp;
                let _ = tokio::time::timeout(Duration::from_secs(5), tcp.write_all(busy)).await;
            });
            continue;
        };
        let handler = handler.clone();
        let tls = options.implicit_tls.clone();
        let shutdown = shutdown.clone();
        let proxy = proxy.clone();
        // The peer is the client, which behind a proxy is known only from its header.
        let span = tracing::info_span!(
            "session",
            listener = name,
            session = %crate::session_id(),
            peer = tracing::field::Empty,
            via = tracing::field::Empty
        );
        tracker.spawn(
            async move {
                let _slot = slot;
                let mut tcp = tcp;
                let (peer, local) = match proxy {
                    None => (peer, local),
                    Some(policy) => {
                        tracing::Span::current().record("via", tracing::field::display(peer));
                        match crate::proxy::accept(&mut tcp, peer, local, &policy).await {
                            Ok(endpoints) => endpoints,
                            Err(e) => {
                                metrics::counter!("postcell_proxy_refused_total",
                                    "listener" => name, "reason" => e.reason())
                                .increment(1);
                                tracing::warn!(proxy = %peer, error = %e, "connection refused");
                                return;
                            }
                        }
                    }
                };
                tracing::Span::current().record("peer", tracing::field::display(peer));
                let mut connection = Connection::new(tcp, peer, local, shutdown);
                if let Some(acceptor) = tls
                    && let Err(e) = connection.start_tls(&acceptor).await
                {
                    tracing::info!(error = %e, "TLS handshake failed");
                    return;
                }
                metrics::gauge!("postcell_sessions_active", "listener" => name).increment(1.0);
                handler(connection).await;
                metrics::gauge!("postcell_sessions_active", "listener" => name).decrement(1.0);
            }
            .instrument(span),
        );
    }
    tracing::info!(listener = name, "stopped accepting");
}
