//! CAPABILITY and LOGIN.
//!
//! ```text
//! C: a1 LOGIN alice@example.org secret
//! S: a1 OK [CAPABILITY IMAP4rev1 ...] Logged in
//! ```

use postcell_directory::AuthOutcome;
use postcell_imap_proto::response::{Code, StatusResponse};

use crate::session::{Login, Session, State};

/// What CAPABILITY advertises before or after login.
pub(crate) fn capabilities(session: &Session, authenticated: bool) -> Vec<String> {
    let mut list = vec!["IMAP4rev1".to_owned()];
    list.extend(
        [
            "LITERAL-",
            "ID",
            "NAMESPACE",
            "UIDPLUS",
            "MOVE",
            "UNSELECT",
            "ESEARCH",
            "SEARCHRES",
            "SORT",
            "SORT=DISPLAY",
            "ESORT",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "SPECIAL-USE",
        ]
        .map(str::to_owned),
    );
    if !authenticated {
        if session.server.tls.is_some() && !session.conn.is_tls() {
            list.push("STARTTLS".to_owned());
        }
        if !session.plaintext_allowed() {
            list.push("LOGINDISABLED".to_owned());
        }
    }
    list
}

pub(crate) async fn login(
    session: &mut Session,
    tag: String,
    username: &str,
    password: &[u8],
) -> State {
    if !session.plaintext_allowed() {
        session.write_status(
            StatusResponse::no(Some(tag), "Use TLS before sending a password")
                .with_code(Code::PrivacyRequired),
        );
        return State::NotAuthenticated;
    }
    let Ok(password) = std::str::from_utf8(password) else {
        return login_failed(session, tag);
    };
    match session
        .server
        .directory
        .authenticate(username, password)
        .await
    {
        Ok(AuthOutcome::Success(account)) => {
            metrics::counter!("postcell_logins_total", "protocol" => "imap", "result" => "success")
                .increment(1);
            tracing::Span::current().record("user", account.name.as_str());
            let capabilities = capabilities(session, true);
            session.write_status(
                StatusResponse::ok(Some(tag), "Logged in")
                    .with_code(Code::Capability(capabilities)),
            );
            State::Authenticated(Login {
                account_id: account.id,
            })
        }
        Ok(AuthOutcome::Failure | AuthOutcome::Disabled) => login_failed(session, tag),
        Err(error) => {
            tracing::warn!(%error, "authentication failed on a directory error");
            session.write_status(
                StatusResponse::no(Some(tag), "Try again later").with_code(Code::Unavailable),
            );
            State::NotAuthenticated
        }
    }
}

fn login_failed(session: &mut Session, tag: String) -> State {
    metrics::counter!("postcell_logins_total", "protocol" => "imap", "result" => "failure")
        .increment(1);
    session.write_status(
        StatusResponse::no(Some(tag), "Invalid credentials").with_code(Code::AuthenticationFailed),
    );
    State::NotAuthenticated
}
