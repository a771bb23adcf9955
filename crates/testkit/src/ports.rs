//! TCP port helpers.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Asks the kernel for a currently unused port on 127.0.0.1.
///
/// The listener is closed before returning, so another process can grab the
/// port before the caller binds it. Callers that start a server on the port
/// should therefore be ready to retry with a new port.
pub fn try_free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("binding 127.0.0.1:0 to find a free port")?;
    let addr = listener
        .local_addr()
        .context("reading the address of a 127.0.0.1:0 listener")?;
    Ok(addr.port())
}

/// Like [`try_free_port`], but panics: for tests, where a machine that cannot
/// bind to loopback is a broken test environment and nothing can be done.
pub fn free_port() -> u16 {
    match try_free_port() {
        Ok(port) => port,
        Err(e) => panic!("no free port on 127.0.0.1: {e:#}"),
    }
}

/// Whether something accepts TCP connections on `addr` right now.
pub fn is_port_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Waits until something accepts TCP connections on `addr`.
///
/// Polls rather than sleeping a fixed time, so fast servers cost the tests
/// nothing and slow CI machines still get the whole `timeout`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = Instant::now();
        let remaining = deadline.saturating_duration_since(now);
        // connect_timeout rejects a zero timeout, so always allow a little.
        let attempt = remaining.clamp(Duration::from_millis(10), Duration::from_millis(250));
        let err = match TcpStream::connect_timeout(&addr, attempt) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            bail!("nothing listening on {addr} after {timeout:?} (last error: {err})");
        }
        thread::sleep(Duration::from_millis(20).min(remaining));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }

    #[test]
    fn wait_for_port_sees_listener() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        wait_for_port(addr, Duration::from_secs(2)).unwrap();
        assert!(is_port_open(addr));
    }

    #[test]
    fn wait_for_port_times_out() {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let start = Instant::now();
        let err = wait_for_port(addr, Duration::from_millis(200)).unwrap_err();
        assert!(err.to_string().contains("nothing listening"), "{err:#}");
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
