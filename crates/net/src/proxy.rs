//! The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy sends it in front
//! of a connection so the server learns the client's address rather than the proxy's.
//!
//! ```text
//! PROXY TCP4 203.0.113.7 192.0.2.10 51234 25\r\n       (v1, then the SMTP dialogue)
//! \r\n\r\n\0\r\nQUIT\n 0x21 0x11 0x000c <addresses> ...   (v2, with optional TLVs)
//! ```
//!
//! A listener that expects the header accepts connections only from its trusted
//! proxies, and only with a valid header, within a time limit: anyone else could claim
//! any address (and a loopback address would unlock plaintext passwords). The parsing
//! is the `ppp` crate's; this module reads exactly the header's bytes and no more, so
//! what follows it (an SMTP command, a TLS ClientHello) stays in the socket for the
//! session.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

/// A v1 header is at most 107 bytes, CRLF included (the specification's limit).
const V1_MAX: usize = 107;
/// The fixed part of a v2 header: signature, version/command, family, length.
const V2_FIXED: usize = 16;
/// The most address and TLV bytes a v2 header may carry here. HAProxy's TLVs (ALPN,
/// authority, unique id, TLS details) fit well within this.
pub const V2_MAX_PAYLOAD: usize = 2048;
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Which connections must begin with a PROXY header, and from whom it is believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyProtocol {
    /// The proxies' own addresses; a connection from anywhere else is refused.
    pub trusted: Vec<IpNet>,
    /// How long a trusted proxy has to send the whole header.
    pub timeout: Duration,
}

impl ProxyProtocol {
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }
}

#[derive(Debug, Error)]
pub enum ProxyError {
    #[error("connection from {0}, which is not a trusted proxy")]
    Untrusted(IpAddr),
    #[error("no complete PROXY header within {0:?}")]
    Timeout(Duration),
    #[error("connection closed inside the PROXY header")]
    Truncated,
    #[error("no PROXY protocol signature")]
    Signature,
    #[error("PROXY header longer than {0} bytes")]
    TooLong(usize),
    #[error("invalid PROXY header: {0}")]
    Invalid(String),
    #[error("i/o: {0}")]
    Io(std::io::Error),
}

impl ProxyError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ProxyError::Untrusted(_) => "untrusted",
            ProxyError::Timeout(_) => "timeout",
            ProxyError::Truncated => "truncated",
            ProxyError::Signature => "signature",
            ProxyError::TooLong(_) => "too_long",
            ProxyError::Invalid(_) => "invalid",
            ProxyError::Io(_) => "io",
        }
    }
}

impl From<std::io::Error> for ProxyError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ProxyError::Truncated
        } else {
            ProxyError::Io(e)
        }
    }
}

/// The client and server endpoints a header named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proxied {
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

/// Checks the proxy and reads its header. Returns the endpoints to use for the
/// session: the header's, or the connection's own when the proxy speaks for itself
/// (v2 `LOCAL`, as in its health checks; v1 `UNKNOWN`; an address family other than
/// IPv4 and IPv6).
pub async fn accept<R: AsyncRead + Unpin>(
    stream: &mut R,
    peer: SocketAddr,
    local: SocketAddr,
    policy: &ProxyProtocol,
) -> Result<(SocketAddr, SocketAddr), ProxyError> {
    if !policy.trusts(peer.ip()) {
        return Err(ProxyError::Untrusted(peer.ip()));
    }
    match tokio::time::timeout(policy.timeout, read_header(stream)).await {
        Err(_) => Err(ProxyError::Timeout(policy.timeout)),
        Ok(Err(e)) => Err(e),
        Ok(Ok(Some(proxied))) => Ok((proxied.source, proxied.destination)),
        Ok(Ok(None)) => Ok((peer, local)),
    }
}

/// Reads one header, v1 or v2, and nothing after it. `None`: the header carries no
/// client address.
pub async fn read_header<R: AsyncRead + Unpin>(
    stream: &mut R,
) -> Result<Option<Proxied>, ProxyError> {
    let mut start = [0u8; 6];
    stream.read_exact(&mut start).await?;
    if &start == b"PROXY " {
        read_v1(stream, &start).await
    } else if start == V2_SIGNATURE[..6] {
        read_v2(stream, &start).await
    } else {
        Err(ProxyError::Signature)
    }
}

async fn read_v1<R: AsyncRead + Unpin>(
    stream: &mut R,
    start: &[u8],
) -> Result<Option<Proxied>, ProxyError> {
    let mut header = start.to_vec();
    // Byte by byte: the header's end is only known when it is seen, and nothing past
    // it may be taken from the socket.
    while header.last() != Some(&b'\n') {
        if header.len() >= V1_MAX {
            return Err(ProxyError::TooLong(V1_MAX));
        }
        header.push(stream.read_u8().await?);
    }
    let parsed = ppp::v1::Header::try_from(header.as_slice())
        .map_err(|e| ProxyError::Invalid(e.to_string()))?;
    Ok(match parsed.addresses {
        ppp::v1::Addresses::Unknown => None,
        ppp::v1::Addresses::Tcp4(a) => Some(Proxied {
            source: SocketAddr::from((a.source_address, a.source_port)),
            destination: SocketAddr::from((a.destination_address, a.destination_port)),
        }),
        ppp::v1::Addresses::Tcp6(a) => Some(Proxied {
            source: SocketAddr::from((a.source_address, a.source_port)),
            destination: SocketAddr::from((a.destination_address, a.destination_port)),
        }),
    })
}

async fn read_v2<R: AsyncRead + Unpin>(
    stream: &mut R,
    start: &[u8],
) -> Result<Option<Proxied>, ProxyError> {
    let mut header = vec![0u8; V2_FIXED];
    header[..start.len()].copy_from_slice(start);
    stream.read_exact(&mut header[start.len()..]).await?;
    if &header[..12] != V2_SIGNATURE {
        return Err(ProxyError::Signature);
    }
    let length = u16::from_be_bytes([header[14], header[15]]) as usize;
    if length > V2_MAX_PAYLOAD {
        return Err(ProxyError::TooLong(V2_FIXED + V2_MAX_PAYLOAD));
    }
    header.resize(V2_FIXED + length, 0);
    stream.read_exact(&mut header[V2_FIXED..]).await?;
    let parsed = ppp::v2::Header::try_from(header.as_slice())
        .map_err(|e| ProxyError::Invalid(e.to_string()))?;
    // TLVs are not used, but a header whose TLVs do not add up is not a header.
    for tlv in parsed.tlvs() {
        tlv.map_err(|e| ProxyError::Invalid(e.to_string()))?;
    }
    if parsed.command == ppp::v2::Command::Local {
        return Ok(None);
    }
    if parsed.protocol == ppp::v2::Protocol::Datagram {
        return Err(ProxyError::Invalid("a datagram header on a stream".into()));
    }
    Ok(match parsed.addresses {
        ppp::v2::Addresses::IPv4(a) => Some(Proxied {
            source: SocketAddr::from((a.source_address, a.source_port)),
            destination: SocketAddr::from((a.destination_address, a.destination_port)),
        }),
        ppp::v2::Addresses::IPv6(a) => Some(Proxied {
            source: SocketAddr::from((a.source_address, a.source_port)),
            destination: SocketAddr::from((a.destination_address, a.destination_port)),
        }),
        ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(trusted: &[&str]) -> ProxyProtocol {
        ProxyProtocol {
            trusted: trusted.iter().map(|t| t.parse().unwrap()).collect(),
            timeout: Duration::from_millis(200),
        }
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// A v2 header for `command` (0 LOCAL, 1 PROXY) and `family_protocol`.
    fn v2(command: u8, family_protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family_protocol);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn v4_payload() -> Vec<u8> {
        let mut p = vec![203, 0, 113, 7, 192, 0, 2, 10];
        p.extend_from_slice(&51234u16.to_be_bytes());
        p.extend_from_slice(&25u16.to_be_bytes());
        p
    }

    async fn read(bytes: &[u8]) -> (Result<Option<Proxied>, ProxyError>, Vec<u8>) {
        let mut input = bytes;
        let result = read_header(&mut input).await;
        (result, input.to_vec())
    }

    #[tokio::test]
    async fn v1_tcp4_and_the_bytes_after_it_stay() {
        let (result, rest) =
            read(b"PROXY TCP4 203.0.113.7 192.0.2.10 51234 25\r\nEHLO x\r\n").await;
        assert_eq!(
            result.unwrap(),
            Some(Proxied {
                source: addr("203.0.113.7:51234"),
                destination: addr("192.0.2.10:25"),
            })
        );
        assert_eq!(rest, b"EHLO x\r\n");
    }

    #[tokio::test]
    async fn v1_tcp6_and_unknown() {
        let (result, _) = read(b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 993\r\n").await;
        assert_eq!(result.unwrap().unwrap().source, addr("[2001:db8::7]:40000"));
        let (result, rest) = read(b"PROXY UNKNOWN\r\nQUIT\r\n").await;
        assert_eq!(result.unwrap(), None);
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[tokio::test]
    async fn v1_errors() {
        let (result, _) = read(b"PROXY TCP4 203.0.113.7 192.0.2.10 51234").await;
        assert!(matches!(result, Err(ProxyError::Truncated)), "{result:?}");
        let long = format!("PROXY TCP4 {}\r\n", "1".repeat(200));
        let (result, _) = read(long.as_bytes()).await;
        assert!(
            matches!(result, Err(ProxyError::TooLong(107))),
            "{result:?}"
        );
        let (result, _) = read(b"PROXY TCP4 300.0.0.1 192.0.2.10 1 25\r\n").await;
        assert!(matches!(result, Err(ProxyError::Invalid(_))), "{result:?}");
        let (result, _) = read(b"PROXY TCP4 203.0.113.7 192.0.2.10 99999 25\r\n").await;
        assert!(matches!(result, Err(ProxyError::Invalid(_))), "{result:?}");
        let (result, _) = read(b"EHLO client.example\r\n").await;
        assert!(matches!(result, Err(ProxyError::Signature)), "{result:?}");
        let (result, _) = read(b"PRO").await;
        assert!(matches!(result, Err(ProxyError::Truncated)), "{result:?}");
    }

    #[tokio::test]
    async fn v2_ipv4_with_tlvs() {
        let mut payload = v4_payload();
        // PP2_TYPE_AUTHORITY (0x02) "mail.example.org", PP2_TYPE_UNIQUE_ID (0x05).
        payload.extend_from_slice(&[0x02, 0x00, 16]);
        payload.extend_from_slice(b"mail.example.org");
        payload.extend_from_slice(&[0x05, 0x00, 4, 1, 2, 3, 4]);
        let mut bytes = v2(1, 0x11, &payload);
        bytes.extend_from_slice(b"\x16\x03\x01");
        let (result, rest) = read(&bytes).await;
        assert_eq!(
            result.unwrap(),
            Some(Proxied {
                source: addr("203.0.113.7:51234"),
                destination: addr("192.0.2.10:25"),
            })
        );
        assert_eq!(
            rest, b"\x16\x03\x01",
            "the TLS record after the header stays"
        );
    }

    #[tokio::test]
    async fn v2_ipv6_local_and_unix() {
        let mut payload = Vec::new();
        payload.extend_from_slice(
            &"2001:db8::7"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        payload.extend_from_slice(
            &"2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        payload.extend_from_slice(&40000u16.to_be_bytes());
        payload.extend_from_slice(&143u16.to_be_bytes());
        let (result, _) = read(&v2(1, 0x21, &payload)).await;
        assert_eq!(
            result.unwrap().unwrap().destination,
            addr("[2001:db8::1]:143")
        );
        // LOCAL: the proxy's own connection (a health check); no addresses needed.
        let (result, rest) = read(&[v2(0, 0x00, &[]), b"NOOP".to_vec()].concat()).await;
        assert_eq!(result.unwrap(), None);
        assert_eq!(rest, b"NOOP");
        let (result, _) = read(&v2(1, 0x31, &[0u8; 216])).await;
        assert_eq!(result.unwrap(), None, "AF_UNIX: use the real endpoints");
    }

    #[tokio::test]
    async fn v2_errors() {
        // Truncated: the length promises more than arrives.
        let mut bytes = v2(1, 0x11, &v4_payload());
        bytes.truncate(bytes.len() - 3);
        let (result, _) = read(&bytes).await;
        assert!(matches!(result, Err(ProxyError::Truncated)), "{result:?}");
        // Too long: refused from the length field, before reading the payload.
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        let (result, rest) = read(&bytes).await;
        assert!(matches!(result, Err(ProxyError::TooLong(_))), "{result:?}");
        assert!(rest.is_empty());
        // A signature that starts right and then goes wrong.
        let mut bytes = v2(1, 0x11, &v4_payload());
        bytes[8] = b'X';
        let (result, _) = read(&bytes).await;
        assert!(matches!(result, Err(ProxyError::Signature)), "{result:?}");
        // Version 3, an unknown command, addresses shorter than the family needs.
        let mut bytes = v2(1, 0x11, &v4_payload());
        bytes[12] = 0x31;
        assert!(matches!(read(&bytes).await.0, Err(ProxyError::Invalid(_))));
        let mut bytes = v2(1, 0x11, &v4_payload());
        bytes[12] = 0x2f;
        assert!(matches!(read(&bytes).await.0, Err(ProxyError::Invalid(_))));
        assert!(matches!(
            read(&v2(1, 0x11, &[1, 2, 3])).await.0,
            Err(ProxyError::Invalid(_))
        ));
        // A TLV whose length runs past the header.
        let mut payload = v4_payload();
        payload.extend_from_slice(&[0x02, 0x00, 50, b'x']);
        assert!(matches!(
            read(&v2(1, 0x11, &payload)).await.0,
            Err(ProxyError::Invalid(_))
        ));
        // UDP on a TCP listener.
        assert!(matches!(
            read(&v2(1, 0x12, &v4_payload())).await.0,
            Err(ProxyError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn only_trusted_proxies_and_only_in_time() {
        let peer = addr("192.0.2.50:40000");
        let local = addr("192.0.2.10:25");
        let header = b"PROXY TCP4 203.0.113.7 192.0.2.10 51234 25\r\n";
        let mut input = header.as_slice();
        let err = accept(&mut input, peer, local, &policy(&["10.0.0.0/8"]))
            .await
            .unwrap_err();
        assert!(matches!(err, ProxyError::Untrusted(_)), "{err}");
        let mut input = header.as_slice();
        let (source, _) = accept(&mut input, peer, local, &policy(&["192.0.2.0/24"]))
            .await
            .unwrap();
        assert_eq!(source, addr("203.0.113.7:51234"));
        // An IPv4 proxy connecting to an IPv6 socket shows as ::ffff:a.b.c.d.
        let mapped = addr("[::ffff:192.0.2.50]:40000");
        let mut input = header.as_slice();
        assert!(
            accept(&mut input, mapped, local, &policy(&["192.0.2.50/32"]))
                .await
                .is_ok()
        );
        // A proxy that sends half a header and then nothing.
        let (mut client, mut server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"PROXY TCP4 ")
            .await
            .unwrap();
        let err = accept(&mut server, peer, local, &policy(&["192.0.2.0/24"]))
            .await
            .unwrap_err();
        assert!(matches!(err, ProxyError::Timeout(_)), "{err}");
        drop(client);
    }
}
