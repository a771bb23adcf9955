//! Per-account settings (R10): From rewriting and forwarding. Shown and changed on the
//! user page later; by `postcell user set` and `postcell user forward` now.

use crate::{Result, Store};

/// An account's settings; an account that never changed them has the defaults.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountSettings {
    /// Submission rewrites `From:` and the envelope sender to the canonical address.
    pub rewrite_from: bool,
    /// With forward targets: keep a copy in the INBOX too.
    pub forward_keep_copy: bool,
}

impl Default for AccountSettings {
    fn default() -> Self {
        AccountSettings {
            rewrite_from: false,
            forward_keep_copy: true,
        }
    }
}

impl Store {
    pub async fn account_settings(&self, account_id: i64) -> Result<AccountSettings> {
        let settings = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, AccountSettings>(
                "SELECT rewrite_from, forward_keep_copy FROM account_settings WHERE account_id = $1",
            )
            .bind(account_id)
            .fetch_optional(p)
            .await?
        });
        Ok(settings.unwrap_or_default())
    }

    pub async fn set_account_settings(
        &self,
        account_id: i64,
        settings: &AccountSettings,
    ) -> Result<()> {
        dispatch!(&self.pool, write, |p| {
            sqlx::query(
                "INSERT INTO account_settings (account_id, rewrite_from, forward_keep_copy)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (account_id) DO UPDATE
                 SET rewrite_from = excluded.rewrite_from, forward_keep_copy = excluded.forward_keep_copy",
            )
            .bind(account_id)
            .bind(settings.rewrite_from)
            .bind(settings.forward_keep_copy)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// The account's forward targets, sorted.
    pub async fn forwards(&self, account_id: i64) -> Result<Vec<String>> {
        let targets = dispatch!(&self.pool, read, |p| {
            sqlx::query_scalar(
                "SELECT target FROM account_forwards WHERE account_id = $1 ORDER BY target",
            )
            .bind(account_id)
            .fetch_all(p)
            .await?
        });
        Ok(targets)
    }

    pub async fn add_forward(&self, account_id: i64, target: &str) -> Result<()> {
        dispatch!(&self.pool, write, |p| {
            sqlx::query(
                "INSERT INTO account_forwards (account_id, target) VALUES ($1, $2)
                 ON CONFLICT (account_id, target) DO NOTHING",
            )
            .bind(account_id)
            .bind(target)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Removes one target, or all of them; returns how many went.
    pub async fn delete_forward(&self, account_id: i64, target: Option<&str>) -> Result<u64> {
        let deleted = dispatch!(&self.pool, write, |p| {
            sqlx::query(
                "DELETE FROM account_forwards WHERE account_id = $1 AND ($2 IS NULL OR target = $2)",
            )
            .bind(account_id)
            .bind(target)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(deleted)
    }
}
