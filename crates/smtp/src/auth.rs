//! SMTP AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN: the exchange; decoding is
//! `postcell_directory::sasl`, the password check `Directory::authenticate`.
//!
//! ```text
//! C: AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==
//! S: 235 2.7.0 Authentication successful
//!
//! C: AUTH LOGIN
//! S: 334 VXNlcm5hbWU6
//! C: YWxpY2VAZXhhbXBsZS5vcmc=
//! S: 334 UGFzc3dvcmQ6
//! C: c2VjcmV0
//! S: 235 2.7.0 Authentication successful
//! ```

use std::net::IpAddr;

use postcell_directory::sasl::{self, Credentials, SaslError};
use postcell_directory::{AuthOutcome, LoginGate};
use postcell_net::LineError;

use crate::command::Mechanism;
use crate::error::SmtpError;
use crate::reply::{self, Reply};
use crate::session::{Session, State};

/// RFC 4954 4: a SASL response line may be up to 12288 octets.
const MAX_RESPONSE_LINE: usize = 12288;

/// Whether passwords may be sent on this connection: over TLS, from this host, or
/// where the configuration explicitly allows plaintext.
pub(crate) fn plaintext_allowed(tls: bool, peer: IpAddr, allow_plaintext_auth: bool) -> bool {
    tls || peer.to_canonical().is_loopback() || allow_plaintext_auth
}

pub(crate) fn allowed(session: &Session) -> bool {
    let config = &session.server.config;
    match config.role {
        crate::Role::Mx => plaintext_allowed(
            session.conn.is_tls(),
            session.peer_ip(),
            config.allow_plaintext_auth,
        ),
        // Submission: loopback peers only when configured (RFC 8314 asks for TLS).
        crate::Role::Submission => {
            session.conn.is_tls()
                || config.allow_plaintext_auth
                || (config.loopback_plaintext_auth && session.peer_ip().is_loopback())
        }
    }
}

/// Runs one AUTH exchange; the outcome is a reply, so only I/O ends the session.
pub(crate) async fn authenticate(
    session: &mut Session,
    mechanism: Mechanism,
    initial_response: Option<String>,
) -> Result<(), SmtpError> {
    let refusal = match &session.state {
        State::Connected
        | State::Greeted(crate::session::Greeting {
            extended: false, ..
        }) => Some(reply::SEND_EHLO_FIRST),
        _ if session.user.is_some() => Some(reply::ALREADY_AUTHENTICATED),
        State::Mail(..) | State::Rcpt(..) => Some(reply::AUTH_IN_TRANSACTION),
        State::Greeted(_) if mechanism == Mechanism::Other => Some(reply::AUTH_UNKNOWN_MECHANISM),
        State::Greeted(_) if !allowed(session) => Some(reply::AUTH_ENCRYPTION_REQUIRED),
        State::Greeted(_) => None,
    };
    if let Some(refusal) = refusal {
        session.reply(&refusal);
        return Ok(());
    }
    let peer = session.peer_ip();
    let limiter = session.server.directory.login_limiter().clone();
    if let LoginGate::Locked(remaining) = limiter.check(peer) {
        tracing::warn!(%peer, ?remaining, "AUTH refused: too many failed logins from this address");
        metrics::counter!("postcell_logins_total", "protocol" => "smtp", "result" => "locked")
            .increment(1);
        session.reply(&reply::TOO_MANY_AUTH_FAILURES);
        return Ok(());
    }
    let credentials = match mechanism {
        Mechanism::Plain => plain(session, initial_response).await?,
        _ => login(session, initial_response).await?,
    };
    let credentials = match credentials {
        Ok(credentials) => credentials,
        Err(refusal) => {
            session.reply(&refusal);
            return Ok(());
        }
    };
    let outcome = session
        .server
        .directory
        .authenticate(&credentials.username, &credentials.password)
        .await;
    let (result, answer) = match outcome {
        Ok(AuthOutcome::Success(account)) => {
            tracing::Span::current().record("user", account.name.as_str());
            tracing::info!(user = %account.name, "authenticated");
            limiter.succeeded(peer);
            session.user = Some(account);
            ("success", reply::AUTH_SUCCEEDED)
        }
        Ok(AuthOutcome::Failure) => {
            tracing::info!(username = %credentials.username, "authentication failed");
            slow_down(limiter.failed(peer)).await;
            ("failure", reply::AUTH_FAILED)
        }
        Ok(AuthOutcome::Disabled) => {
            tracing::info!(username = %credentials.username, "authentication of a disabled account");
            slow_down(limiter.failed(peer)).await;
            ("failure", reply::AUTH_FAILED)
        }
        Ok(AuthOutcome::Busy) => {
            tracing::warn!("too many password checks waiting");
            ("busy", reply::AUTH_TEMPORARY_FAILURE)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot check credentials");
            ("error", reply::AUTH_TEMPORARY_FAILURE)
        }
    };
    metrics::counter!("postcell_logins_total", "protocol" => "smtp", "result" => result)
        .increment(1);
    session.reply(&answer);
    Ok(())
}

/// Holds back the answer to a failed login from an address that failed before.
async fn slow_down(delay: std::time::Duration) {
    if !delay.is_zero() {
        tracing::info!(?delay, "repeated failed logins: answer delayed");
        tokio::time::sleep(delay).await;
    }
}

/// The outcome of the SASL exchange: credentials to check, or the reply refusing it.
type Exchange = Result<Credentials, Reply>;

async fn plain(
    session: &mut Session,
    initial_response: Option<String>,
) -> Result<Exchange, SmtpError> {
    let response = match initial_response {
        Some(response) => response,
        None => match challenge(session, "").await? {
            Ok(response) => response,
            Err(refusal) => return Ok(Err(refusal)),
        },
    };
    Ok(sasl::decode_plain(&response).map_err(|e| sasl_refusal(&e)))
}

async fn login(
    session: &mut Session,
    initial_response: Option<String>,
) -> Result<Exchange, SmtpError> {
    let username = match initial_response {
        Some(response) => response,
        None => match challenge(session, sasl::LOGIN_USERNAME_CHALLENGE).await? {
            Ok(response) => response,
            Err(refusal) => return Ok(Err(refusal)),
        },
    };
    let username = match sasl::decode_login_step(&username) {
        Ok(username) => username,
        Err(e) => return Ok(Err(sasl_refusal(&e))),
    };
    let password = match challenge(session, sasl::LOGIN_PASSWORD_CHALLENGE).await? {
        Ok(response) => response,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let password = match sasl::decode_login_step(&password) {
        Ok(password) => password,
        Err(e) => return Ok(Err(sasl_refusal(&e))),
    };
    Ok(Ok(Credentials { username, password }))
}

/// Sends `334 challenge` and reads the client's response line.
async fn challenge(
    session: &mut Session,
    challenge: &str,
) -> Result<Result<String, Reply>, SmtpError> {
    session.reply(&reply::auth_challenge(challenge));
    let limit = session.server.config.max_line_length.max(MAX_RESPONSE_LINE);
    match session.conn.read_continuation_line(limit).await {
        Ok(line) => Ok(Ok(String::from_utf8_lossy(&line.text).into_owned())),
        Err(LineError::TooLong) => Ok(Err(reply::AUTH_LINE_TOO_LONG)),
        Err(e) => Err(e.into()),
    }
}

fn sasl_refusal(error: &SaslError) -> Reply {
    match error {
        SaslError::InvalidBase64 => reply::AUTH_INVALID_BASE64,
        SaslError::Cancelled => reply::AUTH_CANCELLED,
        SaslError::Malformed(_) | SaslError::AuthzidMismatch => reply::AUTH_FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_travel_only_over_tls_or_loopback_unless_configured() {
        let remote: IpAddr = "192.0.2.1".parse().unwrap();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped_loopback: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(!plaintext_allowed(false, remote, false));
        assert!(plaintext_allowed(true, remote, false));
        assert!(plaintext_allowed(false, remote, true));
        assert!(plaintext_allowed(false, loopback, false));
        assert!(plaintext_allowed(false, mapped_loopback, false));
        assert!(plaintext_allowed(false, "::1".parse().unwrap(), false));
    }

    #[test]
    fn sasl_errors_map_to_rfc_4954_replies() {
        assert_eq!(
            sasl_refusal(&SaslError::InvalidBase64),
            reply::AUTH_INVALID_BASE64
        );
        assert_eq!(sasl_refusal(&SaslError::Cancelled), reply::AUTH_CANCELLED);
        assert_eq!(
            sasl_refusal(&SaslError::AuthzidMismatch),
            reply::AUTH_FAILED
        );
    }
}
