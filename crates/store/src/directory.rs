//! Domains, accounts, addresses and aliases: the tables behind the directory.
//!
//! Addresses arrive here already normalised by `postcell-directory` (the lookup key);
//! this module stores and finds them and knows nothing of address syntax.

use rusqlite::named_params;

use crate::direct_read::{all_rows, optional_row};
use sqlx::Row;

use crate::mailbox::DEFAULT_MAILBOXES;
use crate::pool::{Pool, WritePool, retry_conflicts};
use crate::{Result, Store, StoreError, now};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRow {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub accounts: i64,
    pub addresses: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Account {
    pub id: i64,
    /// The canonical address.
    pub name: String,
    pub domain_id: i64,
    pub password_hash: String,
    /// 0 means no limit.
    pub quota_bytes: i64,
    pub used_bytes: i64,
    pub enabled: bool,
    pub is_admin: bool,
    pub created_at: i64,
}

impl Account {
    /// Whether `size` more bytes fit in the quota.
    pub fn fits(&self, size: i64) -> bool {
        self.quota().fits(size)
    }

    pub fn quota(&self) -> Quota {
        Quota {
            limit_bytes: self.quota_bytes,
            used_bytes: self.used_bytes,
        }
    }
}

/// An account's quota and what it uses of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// 0 means no limit.
    pub limit_bytes: i64,
    pub used_bytes: i64,
}

impl Quota {
    /// Whether `size` more bytes fit.
    pub fn fits(&self, size: i64) -> bool {
        self.limit_bytes == 0 || self.used_bytes.saturating_add(size) <= self.limit_bytes
    }
}

/// The SCRAM-SHA-256 secrets of an account (RFC 5802 section 3): what a server keeps
/// instead of the password. `postcell-directory` computes them when a password is set.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys are as good as the password to anyone who can run SCRAM with them.
        f.debug_struct("ScramCredentials")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    /// The canonical address, normalised; its domain must exist.
    pub name: String,
    pub password_hash: String,
    pub quota_bytes: i64,
    pub is_admin: bool,
}

/// What an address delivers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressEntry {
    /// `enabled`, `quota` and `has_forwards` are read with the address, so that
    /// accepting a recipient takes one query.
    Account {
        address: String,
        account_id: i64,
        account_name: String,
        enabled: bool,
        quota: Quota,
        has_forwards: bool,
    },
    Alias {
        address: String,
        targets: Vec<String>,
    },
}

/// What [`Store::lookup_recipient`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientLookup {
    /// The domain is one of ours.
    pub local_domain: bool,
    /// The address, if it exists.
    pub entry: Option<AddressEntry>,
}

macro_rules! account_columns {
    () => {
        "a.id, a.name, a.domain_id, a.password_hash, a.quota_bytes, \
         a.used_bytes, a.enabled, a.is_admin, a.created_at"
    };
}

const ACCOUNT_COLUMNS: &str = account_columns!();

const ACCOUNT_BY_ID: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM accounts a WHERE a.id = $1"
);

const ACCOUNT_BY_ADDRESS: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM addresses x JOIN accounts a ON a.id = x.account_id WHERE x.address = $1"
);

impl Account {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
        Ok(Account {
            id: row.get("id")?,
            name: row.get("name")?,
            domain_id: row.get("domain_id")?,
            password_hash: row.get("password_hash")?,
            quota_bytes: row.get("quota_bytes")?,
            used_bytes: row.get("used_bytes")?,
            enabled: row.get("enabled")?,
            is_admin: row.get("is_admin")?,
            created_at: row.get("created_at")?,
        })
    }
}

/// The lookup behind every RCPT: the domain, the address, and the account's state.
const RECIPIENT: &str =
    "SELECT d.id AS domain_id, x.id, x.account_id, a.name AS account_name, a.enabled,
            a.quota_bytes, a.used_bytes,
            EXISTS (SELECT 1 FROM account_forwards f WHERE f.account_id = a.id)
              AS has_forwards
       FROM (SELECT 1) AS one
       LEFT JOIN domains d ON d.name = $1
       LEFT JOIN addresses x ON x.address = $2
       LEFT JOIN accounts a ON a.id = x.account_id";

/// A row of [`RECIPIENT`]: every column but the domain's is NULL for an address that
/// does not exist, and the account's are NULL for an alias.
#[derive(sqlx::FromRow)]
struct RecipientRow {
    domain_id: Option<i64>,
    id: Option<i64>,
    account_id: Option<i64>,
    account_name: Option<String>,
    enabled: Option<bool>,
    quota_bytes: Option<i64>,
    used_bytes: Option<i64>,
    has_forwards: Option<bool>,
}

impl RecipientRow {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<RecipientRow> {
        Ok(RecipientRow {
            domain_id: row.get("domain_id")?,
            id: row.get("id")?,
            account_id: row.get("account_id")?,
            account_name: row.get("account_name")?,
            enabled: row.get("enabled")?,
            quota_bytes: row.get("quota_bytes")?,
            used_bytes: row.get("used_bytes")?,
            has_forwards: row.get("has_forwards")?,
        })
    }

    /// The address's id when it is an alias, whose targets are read next.
    fn alias_id(&self) -> Option<i64> {
        self.id.filter(|_| self.account_id.is_none())
    }

    fn into_lookup(self, address: &str, targets: Vec<String>) -> Result<RecipientLookup> {
        let broken = || StoreError::Invalid(format!("account row of {address} is incomplete"));
        let entry = match (self.id, self.account_id) {
            (None, _) => None,
            (Some(_), Some(account_id)) => Some(AddressEntry::Account {
                address: address.to_owned(),
                account_id,
                account_name: self.account_name.ok_or_else(broken)?,
                enabled: self.enabled.ok_or_else(broken)?,
                quota: Quota {
                    limit_bytes: self.quota_bytes.ok_or_else(broken)?,
                    used_bytes: self.used_bytes.ok_or_else(broken)?,
                },
                has_forwards: self.has_forwards.unwrap_or(false),
            }),
            (Some(_), None) => Some(AddressEntry::Alias {
                address: address.to_owned(),
                targets,
            }),
        };
        Ok(RecipientLookup {
            local_domain: self.domain_id.is_some(),
            entry,
        })
    }
}

const ALIAS_TARGETS: &str =
    "SELECT target FROM alias_targets WHERE address_id = $1 ORDER BY target";

/// The id of a domain, read inside the transaction `$tx`; `NotFound` if it does not exist.
macro_rules! domain_id_in {
    ($tx:ident, $domain:expr) => {{
        let domain: &str = $domain;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM domains WHERE name = $1")
            .bind(domain)
            .fetch_optional(&mut *$tx)
            .await?;
        id.ok_or_else(|| StoreError::NotFound(format!("domain {domain}")))?
    }};
}

fn domain_of(address: &str) -> Result<&str> {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| StoreError::Invalid(format!("{address:?} is not an address")))
}

impl Store {
    pub async fn add_domain(&self, name: &str) -> Result<i64> {
        let result: Result<i64> = dispatch!(&self.pool, write, |p| {
            sqlx::query_scalar(
                "INSERT INTO domains (name, created_at) VALUES ($1, $2) RETURNING id",
            )
            .bind(name)
            .bind(now())
            .fetch_one(p)
            .await
            .map_err(StoreError::from)
        });
        result.map_err(|e| {
            if e.unique_violation() {
                StoreError::AlreadyExists(format!("domain {name}"))
            } else {
                e
            }
        })
    }

    pub async fn list_domains(&self) -> Result<Vec<DomainRow>> {
        let rows = dispatch!(&self.pool, read, |p| {
            sqlx::query(
                "SELECT d.id, d.name, d.created_at,
                        (SELECT COUNT(*) FROM accounts a WHERE a.domain_id = d.id) AS accounts,
                        (SELECT COUNT(*) FROM addresses x WHERE x.domain_id = d.id) AS addresses
                 FROM domains d ORDER BY d.name",
            )
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| {
                Ok(DomainRow {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    accounts: r.try_get("accounts")?,
                    addresses: r.try_get("addresses")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    pub async fn domain_exists(&self, name: &str) -> Result<bool> {
        let found: Option<i64> = dispatch!(&self.pool, read, |p| {
            sqlx::query_scalar("SELECT id FROM domains WHERE name = $1")
                .bind(name)
                .fetch_optional(p)
                .await?
        });
        Ok(found.is_some())
    }

    /// Deletes a domain that has no accounts and no addresses left.
    pub async fn delete_domain(&self, name: &str) -> Result<()> {
        let domains = self.list_domains().await?;
        let domain = domains
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| StoreError::NotFound(format!("domain {name}")))?;
        if domain.accounts > 0 || domain.addresses > 0 {
            return Err(StoreError::Invalid(format!(
                "domain {name} still has {} accounts and {} addresses; delete them first",
                domain.accounts, domain.addresses
            )));
        }
        dispatch!(&self.pool, write, |p| {
            sqlx::query("DELETE FROM domains WHERE id = $1")
                .bind(domain.id)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Creates an account with its canonical address and its default mailboxes, in one
    /// transaction: creating a user creates everything it needs.
    pub async fn create_account(&self, new: &NewAccount) -> Result<Account> {
        let domain = domain_of(&new.name)?.to_owned();
        let result: Result<_> = dispatch!(&self.pool, write, |p| {
            // An async block, so `?` ends the transaction, not the function, and the
            // error reaches the mapping below.
            async {
                let mut tx = p.begin_write().await?;
                let domain_id = domain_id_in!(tx, &domain);
                let taken: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM addresses WHERE address = $1")
                        .bind(&new.name)
                        .fetch_optional(&mut *tx)
                        .await?;
                if taken.is_some() {
                    return Err(StoreError::AlreadyExists(format!("address {}", new.name)));
                }
                let created_at = now();
                let account_id: i64 = sqlx::query_scalar(
                    "INSERT INTO accounts (name, domain_id, password_hash, quota_bytes, is_admin, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(&new.name)
                .bind(domain_id)
                .bind(&new.password_hash)
                .bind(new.quota_bytes)
                .bind(new.is_admin)
                .bind(created_at)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO addresses (address, domain_id, account_id, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&new.name)
                .bind(domain_id)
                .bind(account_id)
                .bind(created_at)
                .execute(&mut *tx)
                .await?;
                let uid_validity = crate::mailbox::new_uid_validity();
                for (name, special_use) in DEFAULT_MAILBOXES {
                    sqlx::query(
                        "INSERT INTO mailboxes (account_id, name, special_use, uid_validity, created_at)
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(account_id)
                    .bind(*name)
                    .bind(special_use.map(|s| s.attribute()))
                    .bind(uid_validity)
                    .bind(created_at)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(account_id)
            }
            .await
        });
        let account_id = result.map_err(|e: StoreError| {
            if e.unique_violation() {
                StoreError::AlreadyExists(format!("account {}", new.name))
            } else {
                e
            }
        })?;
        self.account_by_id(account_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {}", new.name)))
    }

    pub async fn account_by_id(&self, id: i64) -> Result<Option<Account>> {
        self.account_where(ACCOUNT_BY_ID, id).await
    }

    /// The account an address belongs to directly (its canonical address or one of its
    /// other addresses; not through an alias).
    pub async fn account_by_address(&self, address: &str) -> Result<Option<Account>> {
        self.account_where(ACCOUNT_BY_ADDRESS, address).await
    }

    /// The account `sql` finds by its one parameter.
    async fn account_where<K>(&self, sql: &'static str, key: K) -> Result<Option<Account>>
    where
        K: rusqlite::ToSql
            + for<'q> sqlx::Encode<'q, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>
            + Send,
    {
        match &self.pool {
            Pool::Sqlite { direct, .. } => direct.lookup(|db| {
                optional_row(db, sql, named_params! {"$1": key}, Account::from_sqlite)
            }),
            Pool::Postgres(p) => Ok(sqlx::query_as::<_, Account>(sql)
                .bind(key)
                .fetch_optional(p)
                .await?),
        }
    }

    pub async fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<Account>> {
        let accounts = dispatch!(&self.pool, read, |p| {
            sqlx::query_as::<_, Account>(sqlx::AssertSqlSafe(format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN domains d ON d.id = a.domain_id
                 WHERE $1 IS NULL OR d.name = $1 ORDER BY a.name"
            )))
            .bind(domain)
            .fetch_all(p)
            .await?
        });
        Ok(accounts)
    }

    /// Sets the argon2id hash alone and clears the SCRAM secrets, which belong to the
    /// old password; [`set_password_secrets`](Self::set_password_secrets) sets both.
    pub async fn set_password_hash(&self, account_id: i64, hash: &str) -> Result<()> {
        self.set_password_secrets(account_id, hash, None).await
    }

    /// Sets an account's password: its argon2id hash and its SCRAM secrets (or none, and
    /// then the account cannot use SCRAM), in one statement, so that an old password
    /// never stays valid for one mechanism when it changed for the other.
    pub async fn set_password_secrets(
        &self,
        account_id: i64,
        password_hash: &str,
        scram: Option<&ScramCredentials>,
    ) -> Result<()> {
        let done = dispatch!(&self.pool, write, |p| {
            sqlx::query(
                "UPDATE accounts SET password_hash = $2, scram_salt = $3, scram_iterations = $4,
                   scram_stored_key = $5, scram_server_key = $6 WHERE id = $1",
            )
            .bind(account_id)
            .bind(password_hash)
            .bind(scram.map(|s| s.salt.as_slice()))
            .bind(scram.map(|s| i64::from(s.iterations)))
            .bind(scram.map(|s| s.stored_key.as_slice()))
            .bind(scram.map(|s| s.server_key.as_slice()))
            .execute(p)
            .await?
            .rows_affected()
        });
        found(done, account_id)
    }

    /// The SCRAM secrets of an account, if its password was set with them.
    pub async fn scram_credentials(&self, account_id: i64) -> Result<Option<ScramCredentials>> {
        let row = dispatch!(&self.pool, read, |p| {
            sqlx::query(
                "SELECT scram_salt, CAST(scram_iterations AS BIGINT) AS scram_iterations,
                        scram_stored_key, scram_server_key FROM accounts WHERE id = $1",
            )
            .bind(account_id)
            .fetch_optional(p)
            .await?
            .map(|row| -> Result<_, sqlx::Error> {
                Ok((
                    row.try_get::<Option<Vec<u8>>, _>("scram_salt")?,
                    row.try_get::<Option<i64>, _>("scram_iterations")?,
                    row.try_get::<Option<Vec<u8>>, _>("scram_stored_key")?,
                    row.try_get::<Option<Vec<u8>>, _>("scram_server_key")?,
                ))
            })
            .transpose()?
        });
        let Some((Some(salt), Some(iterations), Some(stored_key), Some(server_key))) = row else {
            return Ok(None);
        };
        Ok(Some(ScramCredentials {
            salt,
            iterations: u32::try_from(iterations).unwrap_or(0),
            stored_key,
            server_key,
        }))
    }

    pub async fn set_quota(&self, account_id: i64, quota_bytes: i64) -> Result<()> {
        let done = dispatch!(&self.pool, write, |p| {
            sqlx::query("UPDATE accounts SET quota_bytes = $2 WHERE id = $1")
                .bind(account_id)
                .bind(quota_bytes)
                .execute(p)
                .await?
                .rows_affected()
        });
        found(done, account_id)
    }

    pub async fn set_enabled(&self, account_id: i64, enabled: bool) -> Result<()> {
        let done = dispatch!(&self.pool, write, |p| {
            sqlx::query("UPDATE accounts SET enabled = $2 WHERE id = $1")
                .bind(account_id)
                .bind(enabled)
                .execute(p)
                .await?
                .rows_affected()
        });
        found(done, account_id)
    }

    /// Deletes an account, its addresses, mailboxes and messages. Their blobs become
    /// garbage, collected later.
    pub async fn delete_account(&self, account_id: i64) -> Result<()> {
        let done = dispatch!(&self.pool, write, |p| {
            sqlx::query("DELETE FROM accounts WHERE id = $1")
                .bind(account_id)
                .execute(p)
                .await?
                .rows_affected()
        });
        found(done, account_id)
    }

    /// Adds another address that delivers to an account.
    pub async fn add_account_address(&self, address: &str, account_id: i64) -> Result<()> {
        let domain = domain_of(address)?.to_owned();
        let result: Result<_> = dispatch!(&self.pool, write, |p| {
            // An async block, so `?` ends the transaction, not the function, and the
            // error reaches the mapping below.
            async {
                let mut tx = p.begin_write().await?;
                let domain_id = domain_id_in!(tx, &domain);
                sqlx::query(
                    "INSERT INTO addresses (address, domain_id, account_id, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(address)
                .bind(domain_id)
                .bind(account_id)
                .bind(now())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }
            .await
        });
        result.map_err(|e: StoreError| {
            if e.unique_violation() {
                StoreError::AlreadyExists(format!("address {address}"))
            } else {
                e
            }
        })
    }

    /// Removes an address of an account; the canonical address cannot be removed.
    pub async fn delete_account_address(&self, address: &str) -> Result<()> {
        if let Some(account) = self.account_by_address(address).await?
            && account.name == address
        {
            return Err(StoreError::Invalid(format!(
                "{address} is the canonical address of its account; delete the account instead"
            )));
        }
        let done = dispatch!(&self.pool, write, |p| {
            sqlx::query("DELETE FROM addresses WHERE address = $1 AND account_id IS NOT NULL")
                .bind(address)
                .execute(p)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound(format!("address {address}")));
        }
        Ok(())
    }

    pub async fn addresses_of_account(&self, account_id: i64) -> Result<Vec<String>> {
        let addresses = dispatch!(&self.pool, read, |p| {
            sqlx::query_scalar(
                "SELECT address FROM addresses WHERE account_id = $1 ORDER BY address",
            )
            .bind(account_id)
            .fetch_all(p)
            .await?
        });
        Ok(addresses)
    }

    /// What an address delivers to, if it exists.
    pub async fn lookup_address(&self, address: &str) -> Result<Option<AddressEntry>> {
        let Ok(domain) = domain_of(address) else {
            return Ok(None);
        };
        Ok(self.lookup_recipient(domain, address).await?.entry)
    }

    /// Whether `domain` is one of ours and what `address` delivers to, in one query
    /// (a second one for an alias's targets): the lookup behind every RCPT.
    pub async fn lookup_recipient(&self, domain: &str, address: &str) -> Result<RecipientLookup> {
        let (row, targets) = match &self.pool {
            Pool::Sqlite { direct, .. } => direct.lookup(|db| {
                let mut query = db.prepare_cached(RECIPIENT)?;
                let row = query.query_row(
                    named_params! {"$1": domain, "$2": address},
                    RecipientRow::from_sqlite,
                )?;
                let targets = match row.alias_id() {
                    Some(id) => all_rows(db, ALIAS_TARGETS, named_params! {"$1": id}, |row| {
                        row.get(0)
                    })?,
                    None => Vec::new(),
                };
                Ok((row, targets))
            })?,
            Pool::Postgres(p) => {
                let row: RecipientRow = sqlx::query_as(RECIPIENT)
                    .bind(domain)
                    .bind(address)
                    .fetch_one(p)
                    .await?;
                let targets = match row.alias_id() {
                    Some(id) => {
                        sqlx::query_scalar(ALIAS_TARGETS)
                            .bind(id)
                            .fetch_all(p)
                            .await?
                    }
                    None => Vec::new(),
                };
                (row, targets)
            }
        };
        row.into_lookup(address, targets)
    }

    /// Adds targets to an alias, creating the alias if needed.
    pub async fn add_alias(&self, address: &str, targets: &[String]) -> Result<()> {
        if targets.is_empty() {
            return Err(StoreError::Invalid(
                "an alias needs at least one target".into(),
            ));
        }
        let domain = domain_of(address)?.to_owned();
        retry_conflicts(|| async {
            dispatch!(&self.pool, write, |p| {
                let mut tx = p.begin_write().await?;
                let domain_id = domain_id_in!(tx, &domain);
                let existing =
                    sqlx::query("SELECT id, account_id FROM addresses WHERE address = $1")
                        .bind(address)
                        .fetch_optional(&mut *tx)
                        .await?;
                let address_id: i64 = match existing {
                    Some(row) => {
                        let account_id: Option<i64> = row.try_get("account_id")?;
                        if account_id.is_some() {
                            return Err(StoreError::AlreadyExists(format!(
                                "{address} is an account's address"
                            )));
                        }
                        row.try_get("id")?
                    }
                    None => sqlx::query_scalar(
                        "INSERT INTO addresses (address, domain_id, created_at) VALUES ($1, $2, $3)
                             RETURNING id",
                    )
                    .bind(address)
                    .bind(domain_id)
                    .bind(now())
                    .fetch_one(&mut *tx)
                    .await?,
                };
                for target in targets {
                    sqlx::query(
                        "INSERT INTO alias_targets (address_id, target) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(address_id)
                    .bind(target)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            })
        })
        .await
    }

    /// Every alias with its targets.
    pub async fn list_aliases(&self) -> Result<Vec<(String, Vec<String>)>> {
        let rows: Vec<(String, String)> = dispatch!(&self.pool, read, |p| {
            sqlx::query_as(
                "SELECT x.address, t.target FROM addresses x JOIN alias_targets t ON t.address_id = x.id
                 WHERE x.account_id IS NULL ORDER BY x.address, t.target",
            )
            .fetch_all(p)
            .await?
        });
        let mut aliases: Vec<(String, Vec<String>)> = Vec::new();
        for (address, target) in rows {
            match aliases.last_mut() {
                Some((last, targets)) if *last == address => targets.push(target),
                _ => aliases.push((address, vec![target])),
            }
        }
        Ok(aliases)
    }

    /// Removes one target of an alias, or the whole alias when `target` is `None` or
    /// the last target goes.
    pub async fn delete_alias(&self, address: &str, target: Option<&str>) -> Result<()> {
        retry_conflicts(|| async {
            dispatch!(&self.pool, write, |p| {
                let mut tx = p.begin_write().await?;
                let id: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM addresses WHERE address = $1 AND account_id IS NULL",
                )
                .bind(address)
                .fetch_optional(&mut *tx)
                .await?;
                let id = id.ok_or_else(|| StoreError::NotFound(format!("alias {address}")))?;
                if let Some(target) = target {
                    let removed = sqlx::query(
                        "DELETE FROM alias_targets WHERE address_id = $1 AND target = $2",
                    )
                    .bind(id)
                    .bind(target)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if removed == 0 {
                        return Err(StoreError::NotFound(format!(
                            "target {target} of alias {address}"
                        )));
                    }
                }
                let left: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM alias_targets WHERE address_id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                if target.is_none() || left == 0 {
                    sqlx::query("DELETE FROM addresses WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            })
        })
        .await
    }

    /// Counts for `postcell status`.
    pub async fn counts(&self) -> Result<Vec<(&'static str, i64)>> {
        let mut counts = Vec::new();
        for (label, sql) in [
            ("domains", "SELECT COUNT(*) FROM domains"),
            ("accounts", "SELECT COUNT(*) FROM accounts"),
            ("addresses", "SELECT COUNT(*) FROM addresses"),
            ("messages", "SELECT COUNT(*) FROM messages"),
            // Search index rows: one per distinct message blob.
            ("indexed", "SELECT COUNT(*) FROM search_text"),
            (
                "bytes",
                "SELECT CAST(COALESCE(SUM(used_bytes), 0) AS BIGINT) FROM accounts",
            ),
            (
                "queued",
                "SELECT COUNT(*) FROM outbound_queue WHERE state = 'queued'",
            ),
        ] {
            let n: i64 = dispatch!(&self.pool, read, |p| {
                sqlx::query_scalar(sql).fetch_one(p).await?
            });
            counts.push((label, n));
        }
        Ok(counts)
    }
}

fn found(rows: u64, account_id: i64) -> Result<()> {
    if rows == 0 {
        Err(StoreError::NotFound(format!("account {account_id}")))
    } else {
        Ok(())
    }
}
