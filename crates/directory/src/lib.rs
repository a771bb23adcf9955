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
pub use password::{PasswordError, hash_password, password_secrets, verify_password};
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
}
