//! `Directory::authenticate` against a real SQLite store: remembered successes never
//! outlive a password change or let a disabled account in.

use std::time::Duration;

use postcell_directory::{AuthOutcome, Directory, DirectoryConfig, hash_password};
use postcell_store::{BackendConfig, BlobConfig, Durability, NewAccount, Store, StoreConfig};

async fn store(dir: &tempfile::TempDir) -> Store {
    let store = Store::open(&StoreConfig {
        backend: BackendConfig::Sqlite {
            path: dir.path().join("state.db"),
            durability: Durability::Normal,
        },
        blobs: BlobConfig::Folder(dir.path().join("blobs")),
        node_id: "test-node".into(),
    })
    .await
    .expect("open store");
    store.add_domain("example.org").await.expect("domain");
    store
}

fn succeeded(outcome: &AuthOutcome) -> bool {
    matches!(outcome, AuthOutcome::Success(_))
}

#[tokio::test]
async fn a_changed_password_stops_working_at_once_even_when_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let account = store
        .create_account(&NewAccount {
            name: "alice@example.org".into(),
            password_hash: hash_password("old secret").await.unwrap(),
            quota_bytes: 0,
            is_admin: false,
        })
        .await
        .unwrap();
    let directory = Directory::new(store.clone(), DirectoryConfig::default());

    for _ in 0..3 {
        let outcome = directory
            .authenticate("alice@example.org", "old secret")
            .await
            .unwrap();
        assert!(succeeded(&outcome), "{outcome:?}");
    }
    // A wrong password is never taken for the remembered one.
    let wrong = directory
        .authenticate("alice@example.org", "old secreT")
        .await
        .unwrap();
    assert!(matches!(wrong, AuthOutcome::Failure));

    store
        .set_password_hash(account.id, &hash_password("new secret").await.unwrap())
        .await
        .unwrap();
    let old = directory
        .authenticate("alice@example.org", "old secret")
        .await
        .unwrap();
    assert!(matches!(old, AuthOutcome::Failure), "{old:?}");
    let new = directory
        .authenticate("alice@example.org", "new secret")
        .await
        .unwrap();
    assert!(succeeded(&new), "{new:?}");

    // Disabled after a remembered success: refused as disabled.
    store.set_enabled(account.id, false).await.unwrap();
    let disabled = directory
        .authenticate("alice@example.org", "new secret")
        .await
        .unwrap();
    assert!(matches!(disabled, AuthOutcome::Disabled), "{disabled:?}");

    // An unknown user is a failure, whatever was remembered.
    let unknown = directory
        .authenticate("nobody@example.org", "new secret")
        .await
        .unwrap();
    assert!(matches!(unknown, AuthOutcome::Failure));
}

#[tokio::test]
async fn many_concurrent_logins_are_all_answered_rightly() {
    // More logins at once than there are workers: they queue and each gets its own
    // answer (half right, half wrong), with nothing remembered to help.
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    store
        .create_account(&NewAccount {
            name: "bob@example.org".into(),
            password_hash: hash_password("secret").await.unwrap(),
            quota_bytes: 0,
            is_admin: false,
        })
        .await
        .unwrap();
    let directory = Directory::new(
        store,
        DirectoryConfig {
            verified_login_ttl: Duration::ZERO,
            ..DirectoryConfig::default()
        },
    );
    let logins = (0..8).map(|n| {
        let directory = directory.clone();
        tokio::spawn(async move {
            let password = if n % 2 == 0 { "secret" } else { "guess" };
            let outcome = directory
                .authenticate("bob@example.org", password)
                .await
                .unwrap();
            (n, outcome)
        })
    });
    for login in logins.collect::<Vec<_>>() {
        let (n, outcome) = login.await.unwrap();
        assert_eq!(succeeded(&outcome), n % 2 == 0, "login {n}: {outcome:?}");
    }
}
