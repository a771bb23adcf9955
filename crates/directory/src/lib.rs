//! Postcell's directory: who exists, what an address delivers to, and who may log in.
//!
//! The tables live in `postcell-store`; this crate holds the rules: RFC 5321 address
//! syntax and normalisation, alias expansion and sub-addressing, argon2id password
//! hashes with the SCRAM-SHA-256 secrets kept next to them, and the SASL mechanisms the
//! protocols share (PLAIN, LOGIN, SCRAM-SHA-256).

mod address;
mod auth;
mod password;
mod resolve;
pub mod sasl;
mod scram;

pub use address::{Address, AddressError, normalise_domain};
pub use auth::AuthOutcome;
pub use password::{PasswordError, hash_password, verify_password};
pub use resolve::{Resolution, Target};
pub use scram::{
    CHANNEL_BINDING, SCRAM_ITERATIONS, ScramExchange, ScramOutcome, ScramStartError,
    scram_credentials,
};

use postcell_store::Store;

/// Directory settings.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// Separator of sub-addresses (`user+tag@`); `None` turns sub-addressing off.
    pub recipient_delimiter: Option<char>,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            recipient_delimiter: Some('+'),
        }
    }
}

#[derive(Clone)]
pub struct Directory {
    store: Store,
    config: DirectoryConfig,
}

impl Directory {
    pub fn new(store: Store, config: DirectoryConfig) -> Directory {
        Directory { store, config }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Sets an account's password: the argon2id hash and the SCRAM-SHA-256 secrets
    /// together, so every mechanism checks the same password.
    pub async fn set_password(
        &self,
        account_id: i64,
        password: &str,
    ) -> Result<(), SetPasswordError> {
        let hash = hash_password(password).await?;
        let scram = scram_credentials(password).await?;
        self.store
            .set_password_secrets(account_id, &hash, scram.as_ref())
            .await?;
        Ok(())
    }
}

/// Why a password could not be set.
#[derive(Debug, thiserror::Error)]
pub enum SetPasswordError {
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] postcell_store::StoreError),
}
