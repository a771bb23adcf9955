//! The SMTP client side (RFC 5321): one connection to one host, reused for several
//! messages. smtp-proto parses the replies and the EHLO capabilities; this module owns
//! the socket, the timeouts and dot-stuffing.
//!
//! ```text
//! S: 220 mx.example.net ESMTP       C: EHLO relay.example.org
//! S: 250-mx.example.net ...         C: STARTTLS   (when offered)
//! C: MAIL FROM:<a@example.org>      C: RCPT TO:<b@example.net> ...
//! C: DATA / message / .             C: RSET between messages, QUIT at the end
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::response::parser::ResponseReceiver;
use smtp_proto::{EXT_8BIT_MIME, EXT_SMTP_UTF8, EXT_START_TLS, EhloResponse};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Longest reply line we read (RFC 5321 4.5.3.1.5 says 512; servers write longer).
const MAX_REPLY_LINE: usize = 4096;
/// Most lines in one reply (an EHLO reply is the longest).
const MAX_REPLY_LINES: usize = 100;

/// One reply: the code and its text (lines joined by a space), as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("connect to {addr}: {cause}")]
    Connect { addr: SocketAddr, cause: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out waiting for the server")]
    Timeout,
    #[error("the server closed the connection")]
    Closed,
    #[error("malformed reply: {0}")]
    Protocol(String),
    #[error("TLS: {0}")]
    Tls(String),
    /// The server answered, but not with what the step needed.
    #[error("{0}")]
    Refused(Reply),
}

impl ClientError {
    /// The remote's reply, when the failure is one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            ClientError::Refused(reply) => Some(reply),
            _ => None,
        }
    }
}

enum Stream {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<TlsStream<TcpStream>>>),
    /// Only while STARTTLS swaps one for the other.
    Gone,
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub command: Duration,
    /// For the reply to the end of DATA, which may take a while (content checks).
    pub data: Duration,
}

pub struct SmtpClient {
    stream: Stream,
    timeouts: Timeouts,
    pub peer: SocketAddr,
    pub ehlo: EhloResponse<String>,
}

impl SmtpClient {
    /// Connects and reads the greeting; a greeting other than 220 is an error.
    pub async fn connect(addr: SocketAddr, timeouts: Timeouts) -> Result<SmtpClient, ClientError> {
        let tcp = tokio::time::timeout(timeouts.connect, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Connect {
                addr,
                cause: "timed out".into(),
            })?
            .map_err(|e| ClientError::Connect {
                addr,
                cause: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        let mut client = SmtpClient {
            stream: Stream::Plain(BufReader::new(tcp)),
            timeouts,
            peer: addr,
            ehlo: EhloResponse::default(),
        };
        let greeting = client.read_reply(timeouts.command).await?;
        if greeting.code != 220 {
            return Err(ClientError::Refused(greeting));
        }
        Ok(client)
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    pub fn offers_starttls(&self) -> bool {
        self.ehlo.has_capability(EXT_START_TLS)
    }

    pub fn offers_8bitmime(&self) -> bool {
        self.ehlo.has_capability(EXT_8BIT_MIME)
    }

    pub fn offers_smtputf8(&self) -> bool {
        self.ehlo.has_capability(EXT_SMTP_UTF8)
    }

    /// EHLO, falling back to HELO for servers that do not speak ESMTP.
    pub async fn hello(&mut self, name: &str) -> Result<(), ClientError> {
        self.write(format!("EHLO {name}\r\n").as_bytes()).await?;
        let (reply, raw) = self.read_reply_raw(self.timeouts.command).await?;
        if reply.code == 250 {
            self.ehlo = EhloResponse::parse(&mut raw.iter())
                .map_err(|e| ClientError::Protocol(format!("EHLO reply: {e:?}")))?;
            return Ok(());
        }
        let reply = self.command(&format!("HELO {name}")).await?;
        if reply.code != 250 {
            return Err(ClientError::Refused(reply));
        }
        self.ehlo = EhloResponse::default();
        Ok(())
    }

    /// STARTTLS (RFC 3207), then EHLO again: what was learnt before is forgotten.
    pub async fn starttls(
        &mut self,
        connector: &TlsConnector,
        server_name: rustls_pki_types::ServerName<'static>,
        hello_name: &str,
    ) -> Result<(), ClientError> {
        let reply = self.command("STARTTLS").await?;
        if reply.code != 220 {
            return Err(ClientError::Refused(reply));
        }
        let plain = match std::mem::replace(&mut self.stream, Stream::Gone) {
            Stream::Plain(reader) => reader,
            other => {
                self.stream = other;
                return Err(ClientError::Tls("TLS is already active".into()));
            }
        };
        if !plain.buffer().is_empty() {
            // Data pipelined ahead of the handshake would be an injection attempt.
            return Err(ClientError::Tls(
                "data received before the TLS handshake".into(),
            ));
        }
        let tls = tokio::time::timeout(
            self.timeouts.command,
            connector.connect(server_name, plain.into_inner()),
        )
        .await
        .map_err(|_| ClientError::Timeout)?
        .map_err(|e| ClientError::Tls(e.to_string()))?;
        self.stream = Stream::Tls(Box::new(BufReader::new(tls)));
        self.hello(hello_name).await
    }

    /// Sends a command line and reads the reply.
    pub async fn command(&mut self, line: &str) -> Result<Reply, ClientError> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.read_reply(self.timeouts.command).await
    }

    /// DATA, the message dot-stuffed, and the final reply. A refusal of DATA itself
    /// comes back as the reply too.
    pub async fn data(&mut self, message: &[u8]) -> Result<Reply, ClientError> {
        let go_ahead = self.command("DATA").await?;
        if go_ahead.code != 354 {
            return Ok(go_ahead);
        }
        let mut text = Vec::with_capacity(message.len() + message.len() / 50 + 5);
        let mut at_line_start = true;
        for &byte in message {
            if at_line_start && byte == b'.' {
                text.push(b'.');
            }
            text.push(byte);
            at_line_start = byte == b'\n';
        }
        if !at_line_start {
            text.extend_from_slice(b"\r\n");
        }
        text.extend_from_slice(b".\r\n");
        self.write(&text).await?;
        self.read_reply(self.timeouts.data).await
    }

    /// QUIT, politely; errors do not matter any more.
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.command("QUIT")).await;
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let timeout = self.timeouts.command;
        let result = match &mut self.stream {
            Stream::Plain(s) => tokio::time::timeout(timeout, write_all(s.get_mut(), bytes)).await,
            Stream::Tls(s) => tokio::time::timeout(timeout, write_all(s.get_mut(), bytes)).await,
            Stream::Gone => return Err(ClientError::Closed),
        };
        result
            .map_err(|_| ClientError::Timeout)?
            .map_err(ClientError::Io)
    }

    async fn read_reply(&mut self, timeout: Duration) -> Result<Reply, ClientError> {
        Ok(self.read_reply_raw(timeout).await?.0)
    }

    /// Reads one (possibly multi-line) reply; returns it parsed and as received.
    async fn read_reply_raw(&mut self, timeout: Duration) -> Result<(Reply, Vec<u8>), ClientError> {
        let mut raw = Vec::new();
        for _ in 0..MAX_REPLY_LINES {
            let line = match &mut self.stream {
                Stream::Plain(s) => tokio::time::timeout(timeout, read_line(s)).await,
                Stream::Tls(s) => tokio::time::timeout(timeout, read_line(s.as_mut())).await,
                Stream::Gone => return Err(ClientError::Closed),
            }
            .map_err(|_| ClientError::Timeout)??;
            let last = line.get(3) != Some(&b'-');
            raw.extend_from_slice(&line);
            if last {
                let response = ResponseReceiver::default()
                    .parse(&mut raw.iter())
                    .map_err(|e| {
                        ClientError::Protocol(format!(
                            "{e:?} in {:?}",
                            String::from_utf8_lossy(&raw)
                        ))
                    })?;
                let reply = Reply {
                    code: response.code,
                    text: reply_text(&raw),
                };
                return Ok((reply, raw));
            }
        }
        Err(ClientError::Protocol("reply has too many lines".into()))
    }
}

/// The text of a reply as the server wrote it (enhanced code included), lines joined.
fn reply_text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .lines()
        .map(|line| line.get(4..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}

async fn read_line<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Result<Vec<u8>, ClientError> {
    let mut line = Vec::new();
    let n = AsyncReadExt::take(&mut *r, MAX_REPLY_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Err(ClientError::Closed);
    }
    if !line.ends_with(b"\n") {
        return Err(ClientError::Protocol("reply line too long".into()));
    }
    if line.len() < 4 || !line[..3].iter().all(u8::is_ascii_digit) {
        return Err(ClientError::Protocol(format!(
            "not a reply: {:?}",
            String::from_utf8_lossy(&line).trim_end()
        )));
    }
    Ok(line)
}

/// How outgoing TLS checks the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificatePolicy {
    /// Encrypt without checking (RFC 7435 opportunistic security): most MX hosts'
    /// certificates do not name the MX host, and without DANE or MTA-STS nothing says
    /// which name they should carry. Beats plaintext against passive eavesdropping.
    Any,
    /// Check against the system's CA bundle and the host name (for a relayhost that
    /// has a proper certificate).
    Verify,
}

/// A TLS connector for outgoing connections under `policy`.
pub fn tls_connector(policy: CertificatePolicy) -> Result<TlsConnector, ClientError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?;
    let config = match policy {
        CertificatePolicy::Any => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
        CertificatePolicy::Verify => {
            let mut roots = rustls::RootCertStore::empty();
            let bundle = std::path::Path::new("/etc/ssl/certs/ca-certificates.crt");
            use rustls_pki_types::pem::PemObject;
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(bundle)
                .map_err(|e| ClientError::Tls(format!("{}: {e}", bundle.display())))?;
            for cert in certs.flatten() {
                let _ = roots.add(cert);
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Accepts any certificate but still checks the handshake signatures, so the session
/// is encrypted to whoever holds the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_replies_are_joined() {
        assert_eq!(
            reply_text(b"250-mx.example.net\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"),
            "mx.example.net PIPELINING SIZE 1000"
        );
        assert_eq!(reply_text(b"550 5.1.1 <x@y>: no\r\n"), "5.1.1 <x@y>: no");
    }
}
