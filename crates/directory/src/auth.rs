//! Password logins, shared by every protocol.

use postcell_store::{Account, Result};

use crate::{Address, Directory, verify_password};

/// A hash of a random password, checked when the user does not exist so that a wrong
/// user name takes as long as a wrong password.
static DUMMY_HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

async fn dummy_hash() -> &'static str {
    DUMMY_HASH
        .get_or_init(|| async {
            let random = format!("{:032x}", rand::random::<u128>());
            crate::hash_password(&random).await.unwrap_or_default()
        })
        .await
}

#[derive(Debug, Clone)]
pub enum AuthOutcome {
    Success(Account),
    /// Unknown user or wrong password: protocols must not tell the two apart.
    Failure,
    /// The password is right but the account is disabled.
    Disabled,
}

impl Directory {
    /// Checks a user name (any of the account's own addresses) and password.
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<AuthOutcome> {
        let account = match Address::parse(username) {
            Ok(address) => self.store.account_by_address(&address.key()).await?,
            Err(_) => None,
        };
        let Some(account) = account else {
            verify_password(password, dummy_hash().await).await;
            return Ok(AuthOutcome::Failure);
        };
        if !verify_password(password, &account.password_hash).await {
            return Ok(AuthOutcome::Failure);
        }
        if !account.enabled {
            return Ok(AuthOutcome::Disabled);
        }
        Ok(AuthOutcome::Success(account))
    }
}
