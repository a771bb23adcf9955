//! TCP port helpers.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::bail;

/// Ports handed out below the kernel's ephemeral range (Linux: 32768 to 60999 by
/// default), so that no outgoing connection of a busy test takes a port between the
/// moment it is chosen here and the moment a server binds it.
const FIRST: u16 = 10_000;
const LAST: u16 = 32_000;

/// The next candidate: each process starts at its own place in the range and walks
/// it, so parallel tests in one process never get the same port and two processes
/// rarely do.
fn next_candidate() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(LAST - FIRST);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    FIRST + (n % span) as u16
}

/// A port that is unused on 127.0.0.1 right now, from below the ephemeral range.
///
/// The probe listener is closed before returning, so another process can still bind
/// the port before the caller does. Callers that start a server on the port should
/// therefore be ready to retry with a new port.
pub fn try_free_port() -> anyhow::Result<u16> {
    for _ in 0..(LAST - FIRST) {
        let port = next_candidate();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port from {FIRST} to {LAST} is free on 127.0.0.1")
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
