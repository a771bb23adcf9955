//! argon2id password hashes in PHC string form. Hashing is deliberately slow, so it
//! runs on the blocking thread pool, never on the async workers.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing was interrupted")]
    Interrupted,
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
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    })
    .await
    .map_err(|_| PasswordError::Interrupted)?
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

/// True when `password` matches `hash`. A malformed stored hash never matches.
pub async fn verify_password(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD {
        return false;
    }
    let password = password.to_owned();
    let hash = hash.to_owned();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash).await);
        assert!(!verify_password("correct horsE", &hash).await);
        assert!(!verify_password("correct horse", "not a hash").await);
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
