//! argon2id password hashes in PHC string form. Hashing is deliberately slow and takes
//! 19 MiB a time, so it runs in the bounded pool of [`Argon2Pool`], never on the async
//! workers.

use thiserror::Error;

use crate::argon2_pool::{Argon2Pool, PoolError};

#[derive(Debug, Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing was interrupted")]
    Interrupted,
    #[error("too many password checks are waiting, try again later")]
    Busy,
    #[error("a password must not be empty")]
    Empty,
    #[error("a password must be at most 1024 bytes")]
    TooLong,
}

const MAX_PASSWORD: usize = 1024;

pub async fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > MAX_PASSWORD {
        return Err(PasswordError::TooLong);
    }
    Argon2Pool::shared()
        .hash(password)
        .map_err(PasswordError::from)?
        .await
        .map_err(PasswordError::from)
}

impl From<PoolError> for PasswordError {
    fn from(error: PoolError) -> Self {
        match error {
            PoolError::Busy => PasswordError::Busy,
            PoolError::Stopped => PasswordError::Interrupted,
            PoolError::Hash(text) => PasswordError::Hash(text),
        }
    }
}

/// What is kept of a new password: its argon2id hash and its SCRAM-SHA-256 secrets (see
/// [`scram_credentials`](crate::scram_credentials)), to be stored together with
/// `Store::set_password_secrets`.
pub async fn password_secrets(
    password: &str,
) -> Result<(String, Option<postcell_store::ScramCredentials>), PasswordError> {
    let hash = hash_password(password).await?;
    let scram = crate::scram_credentials(password).await?;
    Ok((hash, scram))
}

/// Whether `password` matches `hash`. A malformed stored hash never matches;
/// [`PasswordError::Busy`] when too many checks are already waiting.
pub async fn verify_password(password: &str, hash: &str) -> Result<bool, PasswordError> {
    if password.len() > MAX_PASSWORD {
        return Ok(false);
    }
    Ok(Argon2Pool::shared().verify(password, hash)?.await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash).await.unwrap());
        assert!(!verify_password("correct horsE", &hash).await.unwrap());
        assert!(
            !verify_password("correct horse", "not a hash")
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn empty_and_huge_passwords_are_refused() {
        assert!(matches!(hash_password("").await, Err(PasswordError::Empty)));
        assert!(matches!(
            hash_password(&"x".repeat(2000)).await,
            Err(PasswordError::TooLong)
        ));
    }
}
