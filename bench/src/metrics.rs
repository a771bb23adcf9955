//! Reading a server's Prometheus endpoint (`GET /metrics`, text format) over
//! plain HTTP/1.0 on loopback: enough to wait for a gauge to reach a value.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest answer read from the endpoint.
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;

/// The body of `GET path` from `addr`; anything but a 200 is an error. The
/// whole exchange is bounded by `timeout`.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<String> {
    tokio::time::timeout(timeout, exchange(addr, path))
        .await
        .map_err(|_| anyhow!("GET http://{addr}{path}: no answer within {timeout:?}"))?
        .with_context(|| format!("GET http://{addr}{path}"))
}

async fn exchange(addr: SocketAddr, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect(addr).await.context("connect")?;
    // HTTP/1.0: the server closes the connection after the answer, and sends
    // no chunked body.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .context("sending")?;
    let mut raw = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE + 1)
        .read_to_end(&mut raw)
        .await
        .context("reading")?;
    if raw.len() as u64 > MAX_RESPONSE {
        bail!("answer larger than {MAX_RESPONSE} bytes");
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("answer without a header/body separator"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head.lines().next().unwrap_or("");
    let code = status.split(' ').nth(1).unwrap_or("");
    if code != "200" {
        bail!("answer {status:?}");
    }
    Ok(String::from_utf8_lossy(&raw[split + 4..]).into_owned())
}

/// The value of metric `name` in a Prometheus text exposition: the sum over
/// its series (every label set), or None when no series of it is there.
pub fn value(exposition: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // The name must end here: a space or the label set.
        let rest = if let Some(labels) = rest.strip_prefix('{') {
            match labels.find('}') {
                Some(end) => &labels[end + 1..],
                None => continue,
            }
        } else if rest.starts_with([' ', '\t']) {
            rest
        } else {
            continue;
        };
        let Some(v) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        found = Some(found.unwrap_or(0.0) + v);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;
    use tokio::net::TcpListener;

    #[test]
    fn values() {
        let text = "# HELP postcell_store_search_pending Blobs not indexed yet\n\
                    # TYPE postcell_store_search_pending gauge\n\
                    postcell_store_search_pending 12\n\
                    postcell_store_search_pending_total 99\n\
                    postcell_imap_sessions{listener=\"imap\"} 3\n\
                    postcell_imap_sessions{listener=\"imaps\"} 4.5 1700000000000\n";
        assert_eq!(value(text, "postcell_store_search_pending"), Some(12.0));
        assert_eq!(value(text, "postcell_imap_sessions"), Some(7.5));
        assert_eq!(value(text, "postcell_store_search"), None);
        assert_eq!(value(text, "postcell_missing"), None);
        assert_eq!(value("", "x"), None);
        assert_eq!(value("x NaN\n", "x").map(f64::is_nan), Some(true));
    }

    #[tokio::test]
    async fn gets_a_body() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for answer in [
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npending 0\n",
                "HTTP/1.1 404 Not Found\r\n\r\nnot found\n",
            ] {
                let (stream, _) = listener.accept().await.unwrap();
                let (r, mut w) = stream.into_split();
                let mut r = tokio::io::BufReader::new(r);
                let mut line = String::new();
                r.read_line(&mut line).await.unwrap();
                assert_eq!(line, "GET /metrics HTTP/1.0\r\n");
                while line != "\r\n" {
                    line.clear();
                    r.read_line(&mut line).await.unwrap();
                }
                w.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        let body = get(addr, "/metrics", Duration::from_secs(5)).await.unwrap();
        assert_eq!(value(&body, "pending"), Some(0.0));
        assert!(get(addr, "/metrics", Duration::from_secs(5)).await.is_err());
        server.await.unwrap();
    }
}
