//! DKIM signing keys, one or more per domain, kept in the store so that every node of
//! a cell signs with the same key. The newest key of a domain signs.

use crate::{Result, Store, now};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    /// `rsa-sha256` or `ed25519-sha256`.
    pub algorithm: String,
    /// PKCS#8 DER, base64.
    pub private_key: String,
    /// The `p=` value of the DNS record, base64.
    pub public_key: String,
    pub created_at: i64,
}

impl Store {
    /// Stores a key; a key with the same domain and selector is replaced.
    pub async fn put_dkim_key(
        &self,
        domain: &str,
        selector: &str,
        algorithm: &str,
        private_key: &str,
        public_key: &str,
    ) -> Result<()> {
        dispatch!(&self.pool, write, |p| {
            sqlx::query(
                "INSERT INTO dkim_keys (domain, selector, algorithm, private_key, public_key, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (domain, selector) DO UPDATE
                 SET algorithm = excluded.algorithm, private_key = excluded.private_key,
                     public_key = excluded.public_key, created_at = excluded.created_at",
            )
            .bind(domain)
            .bind(selector)
            .bind(algorithm)
            .bind(private_key)
            .bind(public_key)
            .bind(now())
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// The key that signs for `domain`: the newest one.
    pub async fn dkim_key(&self, domain: &str) -> Result<Option<DkimKey>> {
        let key = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, DkimKey>(
                "SELECT domain, selector, algorithm, private_key, public_key, created_at
                 FROM dkim_keys WHERE domain = $1 ORDER BY created_at DESC, selector LIMIT 1",
            )
            .bind(domain)
            .fetch_optional(p)
            .await?
        });
        Ok(key)
    }

    pub async fn dkim_keys(&self) -> Result<Vec<DkimKey>> {
        let keys = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, DkimKey>(
                "SELECT domain, selector, algorithm, private_key, public_key, created_at
                 FROM dkim_keys ORDER BY domain, created_at DESC",
            )
            .fetch_all(p)
            .await?
        });
        Ok(keys)
    }
}
