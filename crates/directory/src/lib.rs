//! Postcell's directory: who exists, what an address delivers to, and who may log in.
//!
//! The tables live in `postcell-store`; this crate holds the rules: RFC 5321 address
//! syntax and normalisation, alias expansion and sub-addressing, argon2id password
//! hashes with the SCRAM-SHA-256 secrets kept next to them, and the SASL mechanisms the
//! protocols share (PLAIN, LOGIN, SCRAM-SHA-256).

mod address;
mod argon2_pool;
mod auth;
mod limiter;
mod password;
mod resolve;
pub mod sasl;
mod scram;
mod verified;

pub use address::{Address, AddressError, normalise_domain};
pub use argon2_pool::{Argon2Pool, PoolError};
pub use auth::AuthOutcome;
pub use limiter::{LoginGate, LoginLimiter, LoginLimits};
pub use password::{PasswordError, hash_password, password_secrets, verify_password};
pub use resolve::{Resolution, Target};
pub use scram::{
    CHANNEL_BINDING, SCRAM_ITERATIONS, ScramExchange, ScramOutcome, ScramStartError,
    scram_credentials,
};

use std::time::Duration;

use postcell_store::Store;

use verified::VerifiedLogins;

/// Directory settings.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// Separator of sub-addresses (`user+tag@`); `None` turns sub-addressing off.
    pub recipient_delimiter: Option<char>,
    /// Failed logins per client address before slowing down and refusing.
    pub login_limits: LoginLimits,
    /// How long a successful password check is remembered (see `verified.rs`); zero
    /// remembers nothing.
    pub verified_login_ttl: Duration,
    /// Remembered successes at most; 0 remembers nothing.
    pub verified_login_entries: usize,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            recipient_delimiter: Some('+'),
            login_limits: LoginLimits::default(),
            verified_login_ttl: Duration::from_secs(300),
            verified_login_entries: 10_000,
        }
    }
}

#[derive(Clone)]
pub struct Directory {
    store: Store,
    config: DirectoryConfig,
    login_limiter: LoginLimiter,
    verified: VerifiedLogins,
}

impl Directory {
    pub fn new(store: Store, config: DirectoryConfig) -> Directory {
        let login_limiter = LoginLimiter::new(config.login_limits);
        let verified =
            VerifiedLogins::new(config.verified_login_ttl, config.verified_login_entries);
        Directory {
            store,
            config,
            login_limiter,
            verified,
        }
    }

    /// Failed logins per client address, shared by every protocol of this node.
    pub fn login_limiter(&self) -> &LoginLimiter {
        &self.login_limiter
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The sub-address separator (`user+tag@`), if sub-addressing is on.
    pub fn recipient_delimiter(&self) -> Option<char> {
        self.config.recipient_delimiter
    }
}
