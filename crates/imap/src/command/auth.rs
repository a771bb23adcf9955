//! The commands of the not-authenticated state (RFC 9051 section 6.2): STARTTLS, LOGIN,
//! and AUTHENTICATE with PLAIN, LOGIN and SCRAM-SHA-256, with SASL-IR (RFC 4959).
//!
//! ```text
//! C: a1 AUTHENTICATE SCRAM-SHA-256 biwsbj1hbGljZUBleGFtcGxlLm9yZyxyPWFiY2RlZg==
//! S: + cj1hYmNkZWY...                 (server-first-message)
//! C: Yz1iaXdzLHI9YWJjZGVm...          (client-final-message)
//! S: + dj1ybW...                      (server-final-message: the server's proof)
//! C:
//! S: a1 OK [CAPABILITY IMAP4rev2 ...] Logged in
//! ```
//!
//! Every failed attempt is counted: the answer to the n-th comes after n seconds (at
//! most five), and the fifth ends the session, so one connection cannot try passwords
//! quickly. Failures also count in `postcell_logins_total{result="failure"}`.

use std::time::Duration;

use postcell_directory::sasl::{self, Credentials, SaslError};
use postcell_directory::{AuthOutcome, CHANNEL_BINDING, ScramOutcome, ScramStartError};
use postcell_imap_proto::response::{Code, Continuation, StatusResponse};
use postcell_net::LineError;
use postcell_store::Account;

use crate::command::any_state::capabilities;
use crate::session::{RawLine, Session};
use crate::state::{Login, State};

/// The delay before answering a failed attempt grows by this much per failure.
const FAILURE_DELAY: Duration = Duration::from_secs(1);
/// The longest delay before answering a failure.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(5);
/// Failed attempts after which the session is closed.
const MAX_FAILURES: u32 = 5;

/// STARTTLS (RFC 9051 section 6.2.1): the handshake follows the OK; anything the
/// client pipelined after the command is discarded (CVE-2011-0411).
pub(crate) async fn starttls(session: &mut Session, tag: String) -> State {
    if session.conn.is_tls() {
        session.write_status(StatusResponse::bad(Some(tag), "TLS is already active"));
        return State::NotAuthenticated;
    }
    let Some(acceptor) = session.server.tls.clone() else {
        session.write_status(StatusResponse::no(Some(tag), "STARTTLS is not available"));
        return State::NotAuthenticated;
    };
    session.write_status(StatusResponse::ok(Some(tag), "Begin TLS negotiation now"));
    session.reader.reset();
    match session.conn.start_tls(&acceptor).await {
        Ok(()) => {
            tracing::debug!(tls = ?session.conn.tls_description(), "STARTTLS done");
            State::NotAuthenticated
        }
        Err(error) => {
            tracing::info!(%error, "STARTTLS handshake failed");
            State::Closed(LineError::Io(error))
        }
    }
}

pub(crate) async fn login(
    session: &mut Session,
    tag: String,
    username: &str,
    password: &[u8],
) -> State {
    if !session.plaintext_allowed() {
        session.write_status(
            StatusResponse::no(Some(tag), "Use STARTTLS before sending a password")
                .with_code(Code::PrivacyRequired),
        );
        return State::NotAuthenticated;
    }
    let Ok(password) = std::str::from_utf8(password) else {
        return failed(session, tag).await;
    };
    let outcome = session.directory().authenticate(username, password).await;
    password_outcome(session, tag, outcome).await
}

/// The result of a user name and password check, answered.
async fn password_outcome(
    session: &mut Session,
    tag: String,
    outcome: postcell_store::Result<AuthOutcome>,
) -> State {
    match outcome {
        Ok(AuthOutcome::Success(account)) => logged_in(session, tag, &account),
        Ok(AuthOutcome::Failure) => failed(session, tag).await,
        Ok(AuthOutcome::Disabled) => disabled(session, tag).await,
        Ok(AuthOutcome::Busy) => {
            temporary_failure(session, tag, "too many password checks waiting")
        }
        Err(error) => temporary_failure(session, tag, &error.to_string()),
    }
}

fn logged_in(session: &mut Session, tag: String, account: &Account) -> State {
    metrics::counter!("postcell_logins_total", "protocol" => "imap", "result" => "success")
        .increment(1);
    tracing::Span::current().record("user", account.name.as_str());
    tracing::info!(user = %account.name, "logged in");
    session.raise_limits();
    let capabilities = capabilities(session, true);
    session.write_status(
        StatusResponse::ok(Some(tag), "Logged in").with_code(Code::Capability(capabilities)),
    );
    State::Authenticated(Login {
        account_id: account.id,
    })
}

/// A failed attempt: counted, answered late, and the last one allowed ends the session.
async fn failed(session: &mut Session, tag: String) -> State {
    refuse(
        session,
        tag,
        Code::AuthenticationFailed,
        "Invalid credentials",
    )
    .await
}

async fn disabled(session: &mut Session, tag: String) -> State {
    // Said only to someone who knows the password.
    refuse(session, tag, Code::ContactAdmin, "Account disabled").await
}

async fn refuse(session: &mut Session, tag: String, code: Code, text: &str) -> State {
    metrics::counter!("postcell_logins_total", "protocol" => "imap", "result" => "failure")
        .increment(1);
    session.auth_failures += 1;
    tracing::info!(failures = session.auth_failures, "login failed");
    let delay = (FAILURE_DELAY * session.auth_failures).min(MAX_FAILURE_DELAY);
    let _ = session.flush().await;
    tokio::time::sleep(delay).await;
    session.write_status(StatusResponse::no(Some(tag), text).with_code(code));
    if session.auth_failures >= MAX_FAILURES {
        session.write_status(StatusResponse::bye("Too many authentication failures"));
        return State::Logout;
    }
    State::NotAuthenticated
}

fn temporary_failure(session: &mut Session, tag: String, error: &str) -> State {
    tracing::warn!(%error, "authentication failed on a directory error");
    session.write_status(
        StatusResponse::no(
            Some(tag),
            "Authentication temporarily unavailable, try again later",
        )
        .with_code(Code::Unavailable),
    );
    State::NotAuthenticated
}

/// How one step of a SASL exchange went.
enum Step {
    Response(Vec<u8>),
    /// The client sent `*`, a bad response or an over-long line: answered already.
    Refused,
    Ended(LineError),
}

/// Sends a challenge and reads the client's response (RFC 9051 section 6.2.2).
async fn challenge(session: &mut Session, tag: &str, data: &[u8]) -> Step {
    session.write_continuation(&Continuation::Challenge(data.to_vec()));
    let line = match session.read_raw_line(false).await {
        Ok(RawLine::Line(line)) => line,
        Ok(RawLine::TooLong) => {
            session.write_status(StatusResponse::bad(
                Some(tag.to_owned()),
                "Authentication response too long",
            ));
            return Step::Refused;
        }
        Err(end) => return Step::Ended(end),
    };
    let text = String::from_utf8_lossy(&line);
    match sasl::decode_response(&text) {
        Ok(bytes) => Step::Response(bytes),
        Err(SaslError::Cancelled) => {
            session.write_status(StatusResponse::bad(
                Some(tag.to_owned()),
                "Authentication cancelled",
            ));
            Step::Refused
        }
        Err(_) => {
            session.write_status(StatusResponse::bad(
                Some(tag.to_owned()),
                "Invalid base64 data",
            ));
            Step::Refused
        }
    }
}

/// The initial response (SASL-IR) if the client sent one, else the answer to an empty
/// challenge.
async fn first_response(session: &mut Session, tag: &str, initial: Option<Vec<u8>>) -> Step {
    match initial {
        Some(bytes) => Step::Response(bytes),
        None => challenge(session, tag, b"").await,
    }
}

pub(crate) async fn authenticate(
    session: &mut Session,
    tag: String,
    mechanism: &str,
    initial_response: Option<Vec<u8>>,
) -> State {
    match mechanism {
        "PLAIN" | "LOGIN" if !session.plaintext_allowed() => {
            session.write_status(
                StatusResponse::no(Some(tag), "Use STARTTLS before sending a password")
                    .with_code(Code::PrivacyRequired),
            );
            State::NotAuthenticated
        }
        "PLAIN" => plain(session, tag, initial_response).await,
        "LOGIN" => login_mechanism(session, tag, initial_response).await,
        "SCRAM-SHA-256" => scram(session, tag, initial_response).await,
        _ => {
            session.write_status(
                StatusResponse::no(Some(tag), "Unsupported authentication mechanism")
                    .with_code(Code::Cannot),
            );
            State::NotAuthenticated
        }
    }
}

/// PLAIN (RFC 4616): `authzid NUL authcid NUL passwd` in one response.
async fn plain(session: &mut Session, tag: String, initial: Option<Vec<u8>>) -> State {
    let response = match first_response(session, &tag, initial).await {
        Step::Response(bytes) => bytes,
        Step::Refused => return State::NotAuthenticated,
        Step::Ended(end) => return State::Closed(end),
    };
    match sasl::parse_plain(&response) {
        Ok(Credentials { username, password }) => {
            let outcome = session.directory().authenticate(&username, &password).await;
            password_outcome(session, tag, outcome).await
        }
        Err(SaslError::AuthzidMismatch) => {
            session.write_status(
                StatusResponse::no(Some(tag), "Authorization identity must be the user itself")
                    .with_code(Code::AuthorizationFailed),
            );
            State::NotAuthenticated
        }
        Err(_) => {
            session.write_status(StatusResponse::bad(Some(tag), "Malformed PLAIN response"));
            State::NotAuthenticated
        }
    }
}

/// LOGIN (draft-murchison-sasl-login): the user name, then the password, each asked.
async fn login_mechanism(session: &mut Session, tag: String, initial: Option<Vec<u8>>) -> State {
    let username = match initial {
        Some(bytes) => bytes,
        None => match challenge(session, &tag, b"Username:").await {
            Step::Response(bytes) => bytes,
            Step::Refused => return State::NotAuthenticated,
            Step::Ended(end) => return State::Closed(end),
        },
    };
    let password = match challenge(session, &tag, b"Password:").await {
        Step::Response(bytes) => bytes,
        Step::Refused => return State::NotAuthenticated,
        Step::Ended(end) => return State::Closed(end),
    };
    let (Ok(username), Ok(password)) = (String::from_utf8(username), String::from_utf8(password))
    else {
        return failed(session, tag).await;
    };
    let outcome = session.directory().authenticate(&username, &password).await;
    password_outcome(session, tag, outcome).await
}

/// SCRAM-SHA-256 (RFC 5802, RFC 7677), without channel binding.
async fn scram(session: &mut Session, tag: String, initial: Option<Vec<u8>>) -> State {
    let client_first = match first_response(session, &tag, initial).await {
        Step::Response(bytes) => bytes,
        Step::Refused => return State::NotAuthenticated,
        Step::Ended(end) => return State::Closed(end),
    };
    let exchange = match session.directory().scram_start(&client_first).await {
        Ok(exchange) => exchange,
        Err(ScramStartError::Store(error)) => {
            return temporary_failure(session, tag, &error.to_string());
        }
        Err(ScramStartError::Sasl(error)) => return malformed_scram(session, tag, &error),
    };
    let client_final = match challenge(session, &tag, exchange.server_first()).await {
        Step::Response(bytes) => bytes,
        Step::Refused => return State::NotAuthenticated,
        Step::Ended(end) => return State::Closed(end),
    };
    let (account, server_final) = match exchange.finish(&client_final) {
        Ok(ScramOutcome::Success {
            account,
            server_final,
        }) => (account, server_final),
        Ok(ScramOutcome::Failure) => return failed(session, tag).await,
        Ok(ScramOutcome::Disabled) => return disabled(session, tag).await,
        Err(error) => return malformed_scram(session, tag, &error),
    };
    // The server proves it knew the secrets too; the client answers with an empty line.
    match challenge(session, &tag, &server_final).await {
        Step::Response(_) => logged_in(session, tag, &account),
        Step::Refused => State::NotAuthenticated,
        Step::Ended(end) => State::Closed(end),
    }
}

fn malformed_scram(session: &mut Session, tag: String, error: &SaslError) -> State {
    let text = match error {
        SaslError::Malformed(CHANNEL_BINDING) => "Channel binding is not supported",
        SaslError::AuthzidMismatch => "Authorization identity must be the user itself",
        SaslError::InvalidBase64 => "Invalid base64 data",
        _ => "Malformed SCRAM-SHA-256 message",
    };
    session.write_status(StatusResponse::bad(Some(tag), text));
    State::NotAuthenticated
}
