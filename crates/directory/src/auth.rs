//! Password logins, shared by every protocol.

use postcell_store::{Account, Result};

use crate::{Address, Directory, PasswordError, verify_password};

/// A hash of a random password, checked when the user does not exist so that a wrong
/// user name takes as long as a wrong password.
static DUMMY_HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

async fn dummy_hash() -> Result<&'static str, PasswordError> {
    // Not kept when hashing fails (a full queue), so that it is tried again.
    DUMMY_HASH
        .get_or_try_init(|| async {
            let random = format!("{:032x}", rand::random::<u128>());
            crate::hash_password(&random).await
        })
        .await
        .map(String::as_str)
}

#[derive(Debug, Clone)]
pub enum AuthOutcome {
    Success(Account),
    /// Unknown user or wrong password: protocols must not tell the two apart.
    Failure,
    /// The password is right but the account is disabled.
    Disabled,
    /// Too many password checks are already waiting: answered with a temporary
    /// failure, so that the client tries again later.
    Busy,
}

impl Directory {
    /// Checks a user name (any of the account's own addresses) and password.
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<AuthOutcome> {
        let account = match Address::parse(username) {
            Ok(address) => self.store.account_by_address(&address.key()).await?,
            Err(_) => None,
        };
        let Some(account) = account else {
            let checked = match dummy_hash().await {
                Ok(hash) => verify_password(password, hash).await,
                Err(error) => Err(error),
            };
            return Ok(match checked {
                Err(PasswordError::Busy) => AuthOutcome::Busy,
                _ => AuthOutcome::Failure,
            });
        };
        if !self.verified.contains(&account.password_hash, password) {
            match verify_password(password, &account.password_hash).await {
                Ok(true) => self.verified.insert(&account.password_hash, password),
                Ok(false) => return Ok(AuthOutcome::Failure),
                Err(PasswordError::Busy) => return Ok(AuthOutcome::Busy),
                Err(error) => {
                    tracing::warn!(%error, "password check failed");
                    return Ok(AuthOutcome::Failure);
                }
            }
        }
        if !account.enabled {
            return Ok(AuthOutcome::Disabled);
        }
        Ok(AuthOutcome::Success(account))
    }
}
