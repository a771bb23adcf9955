//! The store's behaviour suite: every test runs against SQLite and against a real
//! PostgreSQL started for the test run, and must pass the same way on both.

use std::collections::HashSet;
use std::time::Duration;

use postcell_store::flags::{DELETED, FLAGGED, SEEN};
use postcell_store::{
    AddressEntry, AppendOutcome, BackendConfig, BlobConfig, Change, CopyOutcome, Delivery,
    DeliveryOutcome, DeliveryStatus, DeliveryTarget, Durability, FlagChange, FlagOperation,
    INLINE_MAX, LogQuery, NewAccount, NewMessage, RecipientOutcome, Store, StoreConfig, StoreError,
    UidRanges,
};
use tempfile::TempDir;

/// A store plus whatever must live as long as it (the temporary folder).
struct Fixture {
    store: Store,
    config: StoreConfig,
    _dir: TempDir,
}

impl Fixture {
    async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            backend: BackendConfig::Sqlite {
                path: dir.path().join("state.db"),
                durability: Durability::Full,
            },
            blobs: BlobConfig::Folder(dir.path().join("blobs")),
            node_id: "node-a".into(),
        };
        Fixture {
            store: Store::open(&config).await.unwrap(),
            config,
            _dir: dir,
        }
    }

    async fn postgres() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = postcell_testkit::shared_postgres()
            .fresh_database()
            .unwrap();
        let config = StoreConfig {
            backend: BackendConfig::Postgres {
                url,
                max_connections: 20,
            },
            blobs: BlobConfig::Database,
            node_id: "node-a".into(),
        };
        Fixture {
            store: Store::open(&config).await.unwrap(),
            config,
            _dir: dir,
        }
    }

    /// A second node on the same store (PostgreSQL: another connection pool).
    async fn second_node(&self) -> Store {
        let mut config = self.config.clone();
        config.node_id = "node-b".into();
        Store::open(&config).await.unwrap()
    }
}

/// Runs one check against both backends.
macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::$check(super::Fixture::sqlite().await).await }) *
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::$check(super::Fixture::postgres().await).await }) *
        }
    };
}

on_both_backends!(
    directory_round_trip,
    aliases_hold_several_targets,
    delivery_assigns_increasing_uids_and_charges_quota,
    over_quota_commits_nothing,
    remote_targets_go_to_the_queue,
    concurrent_deliveries_are_each_stored_once,
    expunge_removes_credits_and_keeps_tombstones,
    leases_exclude_expire_and_release,
    change_feed_reaches_other_nodes,
    blobs_are_content_addressed,
    small_bodies_are_written_by_the_delivery_transaction,
    a_message_is_read_with_its_body,
    delivery_log_is_searchable,
    mailboxes_are_created_renamed_and_deleted,
    append_store_and_changes_since,
    copy_and_move_keep_flags_and_assign_new_uids,
    concurrent_over_quota_deliveries_fail_alone,
    concurrent_deliveries_of_every_kind_commit_together,
    flag_changes_commit_beside_deliveries,
    queue_claims_exclude_other_nodes_until_the_lease_expires,
    queue_outcomes_are_logged_and_deferred_entries_wait,
    settings_forwards_and_dkim_keys_round_trip,
    snapshot_counts_and_tombstones_for_imap_sessions,
    scram_credentials_round_trip,
);

async fn account(store: &Store, name: &str, quota: i64) -> i64 {
    let domain = name.rsplit_once('@').unwrap().1;
    match store.add_domain(domain).await {
        Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
        Err(e) => panic!("{e}"),
    }
    store
        .create_account(&NewAccount {
            name: name.into(),
            password_hash: "$argon2id$not-checked-here".into(),
            quota_bytes: quota,
            is_admin: false,
        })
        .await
        .unwrap()
        .id
}

async fn deliver_bytes(
    store: &Store,
    data: &[u8],
    targets: Vec<DeliveryTarget>,
) -> DeliveryOutcome {
    let blob = store.stage_blob(data.to_vec()).await.unwrap();
    store
        .deliver(&Delivery {
            blob,
            size: data.len() as i64,
            internal_date: postcell_store::now(),
            message_id: Some("<m@example.org>".into()),
            summary: None,
            sender: "sender@example.net".into(),
            remote: Some("test".into()),
            targets,
        })
        .await
        .unwrap()
}

fn message(
    blob: &postcell_store::BlobId,
    size: i64,
    flags: i64,
    keywords: &[String],
    date: i64,
) -> NewMessage {
    NewMessage {
        blob_id: blob.clone(),
        size,
        flags,
        keywords: keywords.to_vec(),
        internal_date: date,
        summary: Some(b"summary".to_vec()),
    }
}

fn local(account_id: i64) -> DeliveryTarget {
    DeliveryTarget::Local {
        account_id,
        recipient: format!("rcpt-{account_id}@example.org"),
    }
}

async fn directory_round_trip(f: Fixture) {
    let store = &f.store;
    store.add_domain("example.org").await.unwrap();
    assert!(matches!(
        store.add_domain("example.org").await,
        Err(StoreError::AlreadyExists(_))
    ));
    let id = account(store, "alice@example.org", 0).await;
    let again = store
        .create_account(&NewAccount {
            name: "alice@example.org".into(),
            password_hash: "x".into(),
            quota_bytes: 0,
            is_admin: false,
        })
        .await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists(_))),
        "{again:?}"
    );
    let no_domain = store
        .create_account(&NewAccount {
            name: "bob@nowhere.test".into(),
            password_hash: "x".into(),
            quota_bytes: 0,
            is_admin: false,
        })
        .await;
    assert!(
        matches!(no_domain, Err(StoreError::NotFound(_))),
        "{no_domain:?}"
    );

    store
        .add_account_address("a.smith@example.org", id)
        .await
        .unwrap();
    assert_eq!(
        store
            .account_by_address("a.smith@example.org")
            .await
            .unwrap()
            .unwrap()
            .id,
        id
    );
    assert_eq!(
        store.addresses_of_account(id).await.unwrap(),
        vec![
            "a.smith@example.org".to_string(),
            "alice@example.org".to_string()
        ]
    );
    let names: Vec<String> = store
        .mailboxes(id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    for expected in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    let sent = store.mailbox_by_name(id, "Sent").await.unwrap().unwrap();
    assert_eq!(sent.special_use.as_deref(), Some("\\Sent"));

    store.set_quota(id, 1000).await.unwrap();
    store.set_enabled(id, false).await.unwrap();
    let alice = store.account_by_id(id).await.unwrap().unwrap();
    assert_eq!((alice.quota_bytes, alice.enabled), (1000, false));

    let domains = store.list_domains().await.unwrap();
    assert_eq!((domains[0].accounts, domains[0].addresses), (1, 2));
    assert!(matches!(
        store.delete_domain("example.org").await,
        Err(StoreError::Invalid(_))
    ));
    store
        .delete_account_address("a.smith@example.org")
        .await
        .unwrap();
    assert!(
        store
            .delete_account_address("alice@example.org")
            .await
            .is_err(),
        "canonical address must stay"
    );
    store.delete_account(id).await.unwrap();
    assert!(
        store
            .account_by_address("alice@example.org")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.mailboxes(id).await.unwrap().is_empty());
    store.delete_domain("example.org").await.unwrap();
    assert!(store.list_domains().await.unwrap().is_empty());
}

async fn aliases_hold_several_targets(f: Fixture) {
    let store = &f.store;
    let bob = account(store, "bob@example.org", 0).await;
    store
        .add_alias(
            "team@example.org",
            &["bob@example.org".into(), "carol@elsewhere.test".into()],
        )
        .await
        .unwrap();
    store
        .add_alias("team@example.org", &["dave@example.org".into()])
        .await
        .unwrap();
    let Some(AddressEntry::Alias { targets, .. }) =
        store.lookup_address("team@example.org").await.unwrap()
    else {
        panic!("team@ should be an alias");
    };
    assert_eq!(
        targets,
        vec![
            "bob@example.org",
            "carol@elsewhere.test",
            "dave@example.org"
        ]
    );
    assert!(matches!(
        store.lookup_address("bob@example.org").await.unwrap(),
        Some(AddressEntry::Account { account_id, .. }) if account_id == bob
    ));
    assert!(matches!(
        store
            .add_alias("bob@example.org", &["x@example.org".into()])
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    store
        .delete_alias("team@example.org", Some("dave@example.org"))
        .await
        .unwrap();
    assert_eq!(store.list_aliases().await.unwrap()[0].1.len(), 2);
    store.delete_alias("team@example.org", None).await.unwrap();
    assert!(
        store
            .lookup_address("team@example.org")
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.delete_alias("team@example.org", None).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn delivery_assigns_increasing_uids_and_charges_quota(f: Fixture) {
    let store = &f.store;
    let a = account(store, "a@example.org", 0).await;
    let b = account(store, "b@example.org", 0).await;
    let mut last = (0, 0);
    for i in 0..5 {
        let body = format!("Subject: {i}\r\n\r\nbody {i}\r\n");
        let DeliveryOutcome::Done(outcomes) =
            deliver_bytes(store, body.as_bytes(), vec![local(a), local(b)]).await
        else {
            panic!("no quota set, must deliver");
        };
        assert_eq!(outcomes.len(), 2);
        let RecipientOutcome::Delivered { uid, modseq, .. } = outcomes[0] else {
            panic!()
        };
        assert!(
            uid > last.0 && modseq > last.1,
            "uid {uid} modseq {modseq} after {last:?}"
        );
        last = (uid, modseq);
    }
    let (_, _, messages) = store.maildrop(a).await.unwrap();
    assert_eq!(
        messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let total: i64 = messages.iter().map(|m| m.size).sum();
    assert_eq!(
        store.account_by_id(a).await.unwrap().unwrap().used_bytes,
        total
    );
    let body = store.get_blob(&messages[2].blob_id).await.unwrap();
    assert_eq!(body, b"Subject: 2\r\n\r\nbody 2\r\n");
    let inbox = store.mailbox_by_name(b, "INBOX").await.unwrap().unwrap();
    assert_eq!((inbox.uid_next, inbox.highest_modseq), (6, 6));
}

async fn over_quota_commits_nothing(f: Fixture) {
    let store = &f.store;
    let roomy = account(store, "roomy@example.org", 0).await;
    let tight = account(store, "tight@example.org", 100).await;
    let big = vec![b'x'; 80];
    assert!(matches!(
        deliver_bytes(store, &big, vec![local(tight)]).await,
        DeliveryOutcome::Done(_)
    ));
    let outcome = deliver_bytes(store, &big, vec![local(roomy), local(tight)]).await;
    assert_eq!(
        outcome,
        DeliveryOutcome::OverQuota {
            accounts: vec![tight],
            permanent: false
        }
    );
    // All or nothing: the roomy account did not get its copy either.
    assert!(store.maildrop(roomy).await.unwrap().2.is_empty());
    assert_eq!(
        store
            .account_by_id(roomy)
            .await
            .unwrap()
            .unwrap()
            .used_bytes,
        0
    );
    let huge = vec![b'y'; 200];
    let outcome = deliver_bytes(store, &huge, vec![local(tight)]).await;
    assert_eq!(
        outcome,
        DeliveryOutcome::OverQuota {
            accounts: vec![tight],
            permanent: true
        }
    );
    assert_eq!(
        store
            .account_by_id(tight)
            .await
            .unwrap()
            .unwrap()
            .used_bytes,
        80
    );
}

async fn remote_targets_go_to_the_queue(f: Fixture) {
    let store = &f.store;
    let a = account(store, "a@example.org", 0).await;
    let outcome = deliver_bytes(
        store,
        b"Subject: out\r\n\r\nx\r\n",
        vec![
            local(a),
            DeliveryTarget::Remote {
                recipient: "far@elsewhere.test".into(),
            },
        ],
    )
    .await;
    let DeliveryOutcome::Done(outcomes) = outcome else {
        panic!("{outcome:?}")
    };
    let RecipientOutcome::Queued { queue_id } = outcomes[1] else {
        panic!("{outcomes:?}")
    };
    let queued = store.queued(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].id, queued[0].recipient.as_str()),
        (queue_id, "far@elsewhere.test")
    );
    assert_eq!(queued[0].sender, "sender@example.net");
}

async fn concurrent_deliveries_are_each_stored_once(f: Fixture) {
    const TASKS: usize = 50;
    const EACH: usize = 40;
    let store = f.store.clone();
    let mut accounts = Vec::new();
    for i in 0..10 {
        accounts.push(account(&store, &format!("u{i}@example.org"), 0).await);
    }
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        let accounts = accounts.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..EACH {
                let body = format!("Message-ID: <{t}.{n}@test>\r\n\r\ntask {t} message {n}\r\n");
                let target = accounts[(t * EACH + n) % accounts.len()];
                let outcome = deliver_bytes(&store, body.as_bytes(), vec![local(target)]).await;
                assert!(matches!(outcome, DeliveryOutcome::Done(_)), "{outcome:?}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut bodies = HashSet::new();
    for &a in &accounts {
        let (_, _, messages) = store.maildrop(a).await.unwrap();
        let uids: Vec<i64> = messages.iter().map(|m| m.uid).collect();
        assert!(
            uids.windows(2).all(|w| w[0] < w[1]),
            "UIDs not strictly increasing: {uids:?}"
        );
        let total: i64 = messages.iter().map(|m| m.size).sum();
        assert_eq!(
            store.account_by_id(a).await.unwrap().unwrap().used_bytes,
            total
        );
        for m in messages {
            assert!(
                bodies.insert(store.get_blob(&m.blob_id).await.unwrap()),
                "a message is stored twice"
            );
        }
    }
    assert_eq!(bodies.len(), TASKS * EACH);
}

async fn expunge_removes_credits_and_keeps_tombstones(f: Fixture) {
    let store = &f.store;
    let a = account(store, "a@example.org", 0).await;
    for i in 0..4 {
        deliver_bytes(store, format!("n{i}\r\n").as_bytes(), vec![local(a)]).await;
    }
    let (mailbox, _, before) = store.maildrop(a).await.unwrap();
    let modseq_before = store
        .mailbox_by_name(a, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .highest_modseq;
    let mut feed = store.feed().subscribe();
    assert_eq!(
        store.expunge_uids(a, mailbox, &[2, 4, 99]).await.unwrap(),
        2
    );
    let (_, _, after) = store.maildrop(a).await.unwrap();
    assert_eq!(after.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![1, 3]);
    let used = store.account_by_id(a).await.unwrap().unwrap().used_bytes;
    assert_eq!(used, after.iter().map(|m| m.size).sum::<i64>());
    assert!(used < before.iter().map(|m| m.size).sum::<i64>());
    let inbox = store.mailbox_by_name(a, "INBOX").await.unwrap().unwrap();
    assert_eq!(inbox.highest_modseq, modseq_before + 1);
    // On PostgreSQL a node also hears its own earlier deliveries back through LISTEN,
    // possibly after subscribing: hints may come late or twice (rule 4), so older ones
    // are skipped.
    let change = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match feed.recv().await.unwrap() {
                Change::Mailbox { modseq, .. } if modseq < inbox.highest_modseq => continue,
                change => return change,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        change,
        Change::Mailbox {
            account_id: a,
            mailbox_id: mailbox,
            modseq: inbox.highest_modseq
        }
    );
    // Expunging again changes nothing but is not an error.
    assert_eq!(store.expunge_uids(a, mailbox, &[2]).await.unwrap(), 0);
}

async fn leases_exclude_expire_and_release(f: Fixture) {
    let store = &f.store;
    let ttl = Duration::from_secs(60);
    assert!(
        store
            .acquire_lease("pop3:1", "node-a:s1", ttl)
            .await
            .unwrap()
    );
    assert!(
        !store
            .acquire_lease("pop3:1", "node-b:s2", ttl)
            .await
            .unwrap()
    );
    assert!(
        store
            .acquire_lease("pop3:1", "node-a:s1", ttl)
            .await
            .unwrap(),
        "re-acquiring our own lease"
    );
    assert!(store.renew_lease("pop3:1", "node-a:s1", ttl).await.unwrap());
    assert!(!store.renew_lease("pop3:1", "node-b:s2", ttl).await.unwrap());
    assert_eq!(
        store.lease_holder("pop3:1").await.unwrap().unwrap().0,
        "node-a:s1"
    );
    store.release_lease("pop3:1", "node-b:s2").await.unwrap();
    assert!(
        !store
            .acquire_lease("pop3:1", "node-b:s2", ttl)
            .await
            .unwrap(),
        "others cannot release it"
    );
    store.release_lease("pop3:1", "node-a:s1").await.unwrap();
    assert!(
        store
            .acquire_lease("pop3:1", "node-b:s2", Duration::from_secs(1))
            .await
            .unwrap()
    );
    // A holder that stops renewing loses the lease when it expires.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(
        store
            .acquire_lease("pop3:1", "node-a:s3", ttl)
            .await
            .unwrap()
    );
    assert!(!store.renew_lease("pop3:1", "node-b:s2", ttl).await.unwrap());
}

async fn change_feed_reaches_other_nodes(f: Fixture) {
    let a = account(&f.store, "a@example.org", 0).await;
    let other = f.second_node().await;
    let mut local_feed = f.store.feed().subscribe();
    let mut remote_feed = other.feed().subscribe();
    let DeliveryOutcome::Done(outcomes) = deliver_bytes(&f.store, b"x\r\n", vec![local(a)]).await
    else {
        panic!()
    };
    let RecipientOutcome::Delivered {
        mailbox_id, modseq, ..
    } = outcomes[0]
    else {
        panic!()
    };
    let expected = Change::Mailbox {
        account_id: a,
        mailbox_id,
        modseq,
    };
    let seen = tokio::time::timeout(Duration::from_secs(1), local_feed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, expected);
    if f.store.backend() == postcell_store::Backend::Postgres {
        // Another node hears it through NOTIFY within a second.
        let seen = tokio::time::timeout(Duration::from_secs(1), remote_feed.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, expected);
    }
    other.close().await;
}

async fn blobs_are_content_addressed(f: Fixture) {
    let store = &f.store;
    let one = store.put_blob(b"same bytes".to_vec()).await.unwrap();
    let two = store.put_blob(b"same bytes".to_vec()).await.unwrap();
    assert_eq!(one, two);
    assert_eq!(one.as_str().len(), 64);
    assert_eq!(store.get_blob(&one).await.unwrap(), b"same bytes");
    let missing = postcell_store::BlobId::of(b"never written");
    assert!(matches!(
        store.get_blob(&missing).await,
        Err(StoreError::BlobMissing(_))
    ));
    assert!(postcell_store::BlobId::parse("../../etc/passwd").is_err());
}

/// The files under the blob folder (none on a database-blob store).
fn blob_files(f: &Fixture) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    if let BlobConfig::Folder(root) = &f.config.blobs {
        walk(root, &mut files);
    }
    files
}

/// A body in the table comes with the message's row; a larger one, kept in a file (or,
/// with the database storage, in the table too), is read after it. Read by size, each
/// is found wherever it is.
async fn a_message_is_read_with_its_body(f: Fixture) {
    let store = &f.store;
    let a = account(store, "a@example.org", 0).await;
    let small = b"Subject: small\r\n\r\nbody\r\n".to_vec();
    let large = [
        b"Subject: large\r\n\r\n".to_vec(),
        vec![b'x'; INLINE_MAX + 10],
    ]
    .concat();
    deliver_bytes(store, &small, vec![local(a)]).await;
    deliver_bytes(store, &large, vec![local(a)]).await;
    let (mailbox, _, messages) = store.maildrop(a).await.unwrap();
    for (message, body) in messages.iter().zip([&small, &large]) {
        let (meta, read) = store
            .message_with_body(mailbox, message.uid)
            .await
            .unwrap()
            .expect("the message exists");
        assert_eq!((meta.uid, meta.size), (message.uid, body.len() as i64));
        assert_eq!(meta.blob_id, message.blob_id);
        assert!(&read == body, "uid {}: the body differs", message.uid);
    }
    assert!(
        store
            .message_with_body(mailbox, 99)
            .await
            .unwrap()
            .is_none()
    );
    // By size: a small body is looked for in the table first, and found elsewhere too.
    let appended = b"Subject: appended\r\n\r\nkept as a file\r\n".to_vec();
    let appended_id = store.put_blob(appended.clone()).await.unwrap();
    for (id, body) in [
        (&messages[0].blob_id, &small),
        (&messages[1].blob_id, &large),
        (&appended_id, &appended),
    ] {
        let read = store.get_message_blob(id, body.len() as i64).await.unwrap();
        assert!(&read == body, "blob {id}: the body differs");
    }
}

async fn small_bodies_are_written_by_the_delivery_transaction(f: Fixture) {
    let store = &f.store;
    let a = account(store, "a@example.org", 10_000).await;
    let small = b"Subject: small\r\n\r\nbody\r\n".to_vec();
    let staged = store.stage_blob(small.clone()).await.unwrap();
    assert_eq!(staged.id(), &postcell_store::BlobId::of(&small));
    // Nothing is written before the delivery commits it.
    assert!(matches!(
        store.get_blob(staged.id()).await,
        Err(StoreError::BlobMissing(_))
    ));
    let delivery = |blob: postcell_store::StagedBlob, size: usize| Delivery {
        blob,
        size: size as i64,
        internal_date: postcell_store::now(),
        message_id: None,
        summary: None,
        sender: "sender@example.net".into(),
        remote: None,
        targets: vec![local(a)],
    };
    let outcome = store.deliver(&delivery(staged.clone(), small.len())).await;
    assert!(
        matches!(outcome, Ok(DeliveryOutcome::Done(_))),
        "{outcome:?}"
    );
    assert_eq!(store.get_blob(staged.id()).await.unwrap(), small);
    assert!(blob_files(&f).is_empty(), "{:?}", blob_files(&f));

    // A delivery refused for quota leaves no row behind.
    let refused = vec![b'r'; 20_000];
    let staged_refused = store.stage_blob(refused.clone()).await.unwrap();
    let outcome = store
        .deliver(&delivery(staged_refused.clone(), refused.len()))
        .await
        .unwrap();
    assert!(
        matches!(outcome, DeliveryOutcome::OverQuota { .. }),
        "{outcome:?}"
    );
    assert!(matches!(
        store.get_blob(staged_refused.id()).await,
        Err(StoreError::BlobMissing(_))
    ));

    // A body over the limit gets its own file at once on a folder store.
    let large = vec![b'l'; postcell_store::INLINE_MAX + 1];
    let staged_large = store.stage_blob(large.clone()).await.unwrap();
    if matches!(f.config.blobs, BlobConfig::Folder(_)) {
        assert_eq!(blob_files(&f).len(), 1);
        assert_eq!(store.get_blob(staged_large.id()).await.unwrap(), large);
    }

    // Once no message refers to it, the collector takes the row.
    let (mailbox, _, messages) = store.maildrop(a).await.unwrap();
    let uids: Vec<i64> = messages.iter().map(|m| m.uid).collect();
    assert_eq!(store.expunge_uids(a, mailbox, &uids).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = store.collect_blobs(Duration::ZERO, &|| true).await.unwrap();
    assert!(report.deleted >= 1, "{report}");
    assert!(matches!(
        store.get_blob(staged.id()).await,
        Err(StoreError::BlobMissing(_))
    ));
}

async fn delivery_log_is_searchable(f: Fixture) {
    let store = &f.store;
    let a = account(store, "a@example.org", 0).await;
    deliver_bytes(store, b"x\r\n", vec![local(a)]).await;
    store
        .record_delivery(&postcell_store::LogEntry {
            direction: postcell_store::Direction::Inbound,
            queue_id: None,
            message_id: None,
            sender: "spammer@bad.test".into(),
            recipient: "nobody@example.org".into(),
            status: DeliveryStatus::Rejected,
            remote: Some("192.0.2.9".into()),
            reply: Some("550 5.1.1 User unknown".into()),
        })
        .await
        .unwrap();
    let all = store.search_log(&LogQuery::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].status, "rejected", "newest first");
    assert_eq!(all[0].node, "node-a");
    let rejected = store
        .search_log(&LogQuery {
            status: Some(DeliveryStatus::Rejected),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rejected.len(), 1);
    let by_address = store
        .search_log(&LogQuery {
            address: Some(format!("rcpt-{a}@example.org")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_address.len(), 1);
    assert_eq!(by_address[0].status, "delivered");
    let future = store
        .search_log(&LogQuery {
            since: Some(postcell_store::now() + 3600),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(future.is_empty());
}

async fn mailboxes_are_created_renamed_and_deleted(f: Fixture) {
    let store = &f.store;
    let a = account(store, "a@example.org", 0).await;
    let work = store.create_mailbox(a, "Work", None).await.unwrap();
    store.create_mailbox(a, "Work/2026", None).await.unwrap();
    assert!(matches!(
        store.create_mailbox(a, "Work", None).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        store.create_mailbox(a, "inbox", None).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let blob = store.put_blob(b"m\r\n".to_vec()).await.unwrap();
    store
        .append(a, work.id, &message(&blob, 3, 0, &[], 1))
        .await
        .unwrap();
    assert!(matches!(
        store.rename_mailbox(a, "Work", "Work/Inner").await,
        Err(StoreError::Invalid(_))
    ));
    store.rename_mailbox(a, "Work", "Jobs").await.unwrap();
    let names: Vec<String> = store
        .mailboxes(a)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(
        names.contains(&"Jobs".to_string()) && names.contains(&"Jobs/2026".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("Work")), "{names:?}");
    let jobs = store.mailbox_by_name(a, "Jobs").await.unwrap().unwrap();
    assert_eq!(
        store.mailbox_messages(jobs.id).await.unwrap().len(),
        1,
        "messages follow the rename"
    );
    assert_eq!(store.account_by_id(a).await.unwrap().unwrap().used_bytes, 3);

    // Renaming INBOX moves its messages and leaves it empty (RFC 9051 6.3.6).
    deliver_bytes(store, b"in\r\n", vec![local(a)]).await;
    store.rename_mailbox(a, "INBOX", "Old").await.unwrap();
    let inbox = store.mailbox_by_name(a, "INBOX").await.unwrap().unwrap();
    assert!(store.mailbox_messages(inbox.id).await.unwrap().is_empty());
    let old = store.mailbox_by_name(a, "Old").await.unwrap().unwrap();
    assert_eq!(store.mailbox_messages(old.id).await.unwrap().len(), 1);

    store.set_subscribed(a, "Jobs", false).await.unwrap();
    assert!(
        !store
            .mailbox_by_name(a, "Jobs")
            .await
            .unwrap()
            .unwrap()
            .subscribed
    );
    store.delete_mailbox(a, "Jobs").await.unwrap();
    assert_eq!(
        store.account_by_id(a).await.unwrap().unwrap().used_bytes,
        4,
        "the deleted mailbox's bytes are credited"
    );
    assert!(matches!(
        store.delete_mailbox(a, "INBOX").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.delete_mailbox(a, "Nope").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn append_store_and_changes_since(f: Fixture) {
    let store = &f.store;
    let a = account(store, "a@example.org", 10).await;
    let inbox = store.mailbox_by_name(a, "INBOX").await.unwrap().unwrap();
    let blob = store.put_blob(b"12345\r\n".to_vec()).await.unwrap();
    let AppendOutcome::Appended {
        uid,
        modseq,
        uid_validity,
    } = store
        .append(
            a,
            inbox.id,
            &message(&blob, 7, SEEN, &["$Work".into()], 100),
        )
        .await
        .unwrap()
    else {
        panic!("fits in the quota")
    };
    assert_eq!((uid, uid_validity), (1, inbox.uid_validity));
    assert_eq!(
        store
            .append(a, inbox.id, &message(&blob, 7, 0, &[], 100))
            .await
            .unwrap(),
        AppendOutcome::OverQuota
    );
    store.set_quota(a, 0).await.unwrap();
    store
        .append(a, inbox.id, &message(&blob, 7, 0, &[], 100))
        .await
        .unwrap();

    let all = store.mailbox_messages(inbox.id).await.unwrap();
    assert_eq!(
        all.iter()
            .map(|m| (m.uid, m.flags, m.keywords.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, SEEN, "$Work"), (2, 0, "")]
    );

    let flag = |operation, flags, unchanged_since| FlagChange {
        operation,
        flags,
        keywords: vec![],
        unchanged_since,
    };
    let out = store
        .store_flags(
            a,
            inbox.id,
            &UidRanges::all(),
            &flag(FlagOperation::Add, FLAGGED, None),
        )
        .await
        .unwrap();
    assert_eq!(out.updated.len(), 2);
    let after_flag = out.updated[0].modseq;
    assert!(after_flag > modseq);
    assert!(
        out.updated
            .iter()
            .all(|m| m.flags & FLAGGED != 0 && m.modseq == after_flag)
    );
    // Setting what is already set changes nothing and spends no MODSEQ.
    let again = store
        .store_flags(
            a,
            inbox.id,
            &UidRanges::all(),
            &flag(FlagOperation::Add, FLAGGED, None),
        )
        .await
        .unwrap();
    assert!(again.updated.is_empty());
    assert_eq!(
        store
            .mailbox_by_name(a, "INBOX")
            .await
            .unwrap()
            .unwrap()
            .highest_modseq,
        after_flag
    );
    // CONDSTORE: UNCHANGEDSINCE older than the message's MODSEQ fails for it.
    let cond = store
        .store_flags(
            a,
            inbox.id,
            &UidRanges::from_uids(&[1]),
            &flag(FlagOperation::Add, DELETED, Some(after_flag - 1)),
        )
        .await
        .unwrap();
    assert_eq!((cond.updated.len(), cond.modified), (0, vec![1]));
    store
        .store_flags(
            a,
            inbox.id,
            &UidRanges::from_uids(&[1]),
            &flag(FlagOperation::Add, DELETED, Some(after_flag)),
        )
        .await
        .unwrap();

    let changes = store.changes_since(inbox.id, after_flag).await.unwrap();
    assert_eq!(
        changes.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1]
    );
    assert!(changes.expunged.is_empty());
    let expunged = store
        .expunge_deleted(a, inbox.id, &UidRanges::all())
        .await
        .unwrap();
    assert_eq!(expunged, vec![1]);
    let changes = store.changes_since(inbox.id, after_flag).await.unwrap();
    assert_eq!(changes.expunged, vec![1]);
    assert_eq!(
        changes.highest_modseq,
        store
            .mailbox_by_name(a, "INBOX")
            .await
            .unwrap()
            .unwrap()
            .highest_modseq
    );
    assert_eq!(store.account_by_id(a).await.unwrap().unwrap().used_bytes, 7);
}

async fn copy_and_move_keep_flags_and_assign_new_uids(f: Fixture) {
    let store = &f.store;
    let a = account(store, "a@example.org", 0).await;
    let inbox = store.mailbox_by_name(a, "INBOX").await.unwrap().unwrap();
    let archive = store.mailbox_by_name(a, "Archive").await.unwrap().unwrap();
    for i in 0..3 {
        let blob = store
            .put_blob(format!("m{i}\r\n").into_bytes())
            .await
            .unwrap();
        store
            .append(a, inbox.id, &message(&blob, 4, SEEN, &["k".into()], 1))
            .await
            .unwrap();
    }
    let CopyOutcome::Copied {
        uid_validity,
        pairs,
    } = store
        .copy_messages(
            a,
            inbox.id,
            &UidRanges::from_uids(&[1, 3]),
            archive.id,
            false,
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (uid_validity, pairs),
        (archive.uid_validity, vec![(1, 1), (3, 2)])
    );
    assert_eq!(
        store.account_by_id(a).await.unwrap().unwrap().used_bytes,
        20,
        "a copy counts against the quota"
    );
    let copied = store.mailbox_messages(archive.id).await.unwrap();
    assert!(copied.iter().all(|m| m.flags == SEEN && m.keywords == "k"));

    let CopyOutcome::Copied { pairs, .. } = store
        .copy_messages(a, inbox.id, &UidRanges::from_uids(&[2]), archive.id, true)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(pairs, vec![(2, 3)]);
    assert_eq!(
        store
            .mailbox_messages(inbox.id)
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert_eq!(
        store.account_by_id(a).await.unwrap().unwrap().used_bytes,
        20,
        "a move does not"
    );
    let inbox_now = store.mailbox_by_name(a, "INBOX").await.unwrap().unwrap();
    assert_eq!(
        store
            .changes_since(inbox.id, inbox_now.highest_modseq - 1)
            .await
            .unwrap()
            .expunged,
        vec![2]
    );
    let summaries = store
        .message_summaries(archive.id, &UidRanges::all())
        .await
        .unwrap();
    assert_eq!(summaries.len(), 3);
    assert!(
        summaries
            .iter()
            .all(|(_, s)| s.as_deref() == Some(&b"summary"[..])),
        "copies keep the cached summary"
    );
    store
        .set_message_summary(archive.id, 1, b"other")
        .await
        .unwrap();
    assert_eq!(
        store
            .message_summaries(archive.id, &UidRanges::from_uids(&[1]))
            .await
            .unwrap()[0]
            .1
            .as_deref(),
        Some(&b"other"[..])
    );
    let next = store
        .mailbox_by_name(a, "Archive")
        .await
        .unwrap()
        .unwrap()
        .uid_next;
    assert_eq!(next, 4);
}

/// Deliveries that commit together (SQLite's group commit) still succeed or fail one by
/// one: a delivery that does not fit is rolled back without taking its neighbours along.
async fn concurrent_over_quota_deliveries_fail_alone(f: Fixture) {
    let store = f.store.clone();
    let tight = account(&store, "tight@example.org", 50).await;
    let roomy = account(&store, "roomy@example.org", 0).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!("message {i:02}\r\n"); // 12 bytes
            let target = if i % 2 == 0 { tight } else { roomy };
            deliver_bytes(&store, body.as_bytes(), vec![local(target)]).await
        }));
    }
    let mut delivered = [0, 0];
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            DeliveryOutcome::Done(_) => delivered[i % 2] += 1,
            DeliveryOutcome::OverQuota {
                accounts,
                permanent,
            } => {
                assert_eq!((accounts, permanent), (vec![tight], false));
            }
        }
    }
    assert_eq!(
        delivered,
        [4, 10],
        "4 x 12 bytes fit in 50; every roomy delivery lands"
    );
    assert_eq!(
        store
            .account_by_id(tight)
            .await
            .unwrap()
            .unwrap()
            .used_bytes,
        48
    );
    assert_eq!(store.maildrop(tight).await.unwrap().2.len(), 4);
    assert_eq!(store.maildrop(roomy).await.unwrap().2.len(), 10);
}

/// One-inbox deliveries, deliveries to several targets and refused ones arriving
/// together (on SQLite, one group commit runs the first kind apart from the others):
/// each lands whole or not at all, and each is logged once.
async fn concurrent_deliveries_of_every_kind_commit_together(f: Fixture) {
    let store = f.store.clone();
    let a = account(&store, "a@example.org", 0).await;
    let b = account(&store, "b@example.org", 0).await;
    let full = account(&store, "full@example.org", 5).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let targets = match i % 4 {
                0 => vec![local(a)],
                1 => vec![
                    local(a),
                    DeliveryTarget::Remote {
                        recipient: format!("far{i}@elsewhere.test"),
                    },
                ],
                2 => vec![local(b), local(a)],
                _ => vec![local(full)],
            };
            let body = format!("Subject: {i}\r\n\r\nbody {i:02}\r\n");
            (i, deliver_bytes(&store, body.as_bytes(), targets).await)
        }));
    }
    for task in tasks {
        let (i, outcome) = task.await.unwrap();
        match (i % 4, outcome) {
            (
                3,
                DeliveryOutcome::OverQuota {
                    accounts,
                    permanent,
                },
            ) => {
                assert_eq!((accounts, permanent), (vec![full], true));
            }
            (kind, DeliveryOutcome::Done(outcomes)) if kind != 3 => {
                assert_eq!(outcomes.len(), if kind == 0 { 1 } else { 2 }, "{i}");
            }
            (_, outcome) => panic!("delivery {i}: {outcome:?}"),
        }
    }
    let inbox = |id| {
        let store = store.clone();
        async move { store.maildrop(id).await.unwrap().2 }
    };
    let (in_a, in_b) = (inbox(a).await, inbox(b).await);
    assert_eq!((in_a.len(), in_b.len()), (45, 15));
    assert!(inbox(full).await.is_empty());
    let uids: Vec<i64> = in_a.iter().map(|m| m.uid).collect();
    assert_eq!(uids, (1..=45).collect::<Vec<i64>>(), "UIDs without gaps");
    let used = |messages: &[postcell_store::MaildropMessage]| -> i64 {
        messages.iter().map(|m| m.size).sum()
    };
    for (id, messages) in [(a, &in_a), (b, &in_b)] {
        let account = store.account_by_id(id).await.unwrap().unwrap();
        assert_eq!(account.used_bytes, used(messages));
    }
    assert_eq!(
        store.account_by_id(full).await.unwrap().unwrap().used_bytes,
        0
    );
    assert_eq!(store.queued(100).await.unwrap().len(), 15);
    let logged = store
        .search_log(&LogQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        logged.len(),
        15 + 2 * 15 + 2 * 15,
        "one record per target delivered"
    );
}

/// On SQLite flag changes join the deliveries' group commit: each one still commits
/// or fails on its own, takes a MODSEQ only when it changes something, and is read
/// back by the sessions' reads.
async fn flag_changes_commit_beside_deliveries(f: Fixture) {
    let store = f.store.clone();
    let a = account(&store, "a@example.org", 0).await;
    let other = account(&store, "other@example.org", 0).await;
    for i in 0..10 {
        let body = format!("Subject: first {i}\r\n\r\nx\r\n");
        deliver_bytes(&store, body.as_bytes(), vec![local(a)]).await;
    }
    let inbox = store.mailbox_by_name(a, "INBOX").await.unwrap().unwrap();
    let flag = |flags| FlagChange {
        operation: FlagOperation::Add,
        flags,
        keywords: vec![],
        unchanged_since: None,
    };
    let mut tasks = Vec::new();
    for i in 0..40_i64 {
        let store = store.clone();
        let inbox = inbox.id;
        let flag = flag(if i % 4 == 1 { FLAGGED } else { SEEN });
        tasks.push(tokio::spawn(async move {
            match i % 4 {
                0 | 2 => {
                    let body = format!("Subject: then {i}\r\n\r\nx\r\n");
                    let outcome = deliver_bytes(&store, body.as_bytes(), vec![local(a)]).await;
                    assert!(matches!(outcome, DeliveryOutcome::Done(_)), "{outcome:?}");
                }
                // Message i/4 + 1 gets \Flagged, and \Seen twice: the second time
                // changes nothing.
                1 | 3 => {
                    let uid = UidRanges::from_uids(&[i / 4 + 1]);
                    let out = store.store_flags(a, inbox, &uid, &flag).await.unwrap();
                    assert_eq!(out.updated.len(), 1, "{out:?}");
                    if i % 4 == 3 {
                        let again = store.store_flags(a, inbox, &uid, &flag).await.unwrap();
                        assert!(again.updated.is_empty(), "{again:?}");
                    }
                }
                _ => unreachable!(),
            }
            // Someone else's mailbox: refused, and nothing else with it.
            if i == 7 {
                let refused = store
                    .store_flags(other, inbox, &UidRanges::all(), &flag)
                    .await;
                assert!(
                    matches!(refused, Err(StoreError::NotFound(_))),
                    "{refused:?}"
                );
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all = store.mailbox_messages(inbox.id).await.unwrap();
    assert_eq!(all.len(), 30);
    let (first, then) = all.split_at(10);
    assert!(first.iter().all(|m| m.flags == FLAGGED | SEEN), "{first:?}");
    assert!(then.iter().all(|m| m.flags == 0), "{then:?}");
    // One MODSEQ per message delivered and per flag change that changed something.
    let highest = store.highest_modseq(inbox.id).await.unwrap();
    let mut modseqs: Vec<i64> = first.iter().map(|m| m.modseq).collect();
    modseqs.sort_unstable();
    modseqs.dedup();
    assert_eq!(
        modseqs.len(),
        10,
        "each message's last change had its own MODSEQ"
    );
    let before = inbox.highest_modseq;
    assert_eq!(highest - before, 20 + 2 * 10, "{before} then {highest}");
    let none = store.changes_since(inbox.id, highest).await.unwrap();
    assert!(none.changed.is_empty() && none.expunged.is_empty());
    assert_eq!((none.highest_modseq, none.uid_next), (highest, 31));
    let last = store.changes_since(inbox.id, highest - 1).await.unwrap();
    assert_eq!(last.changed.len(), 1);
}

async fn queue_one(store: &Store, recipient: &str) -> i64 {
    let outcome = deliver_bytes(
        store,
        format!("Subject: to {recipient}\r\n\r\nx\r\n").as_bytes(),
        vec![DeliveryTarget::Remote {
            recipient: recipient.into(),
        }],
    )
    .await;
    match outcome {
        DeliveryOutcome::Done(outcomes) => match outcomes[0] {
            RecipientOutcome::Queued { queue_id } => queue_id,
            ref other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

async fn queue_claims_exclude_other_nodes_until_the_lease_expires(f: Fixture) {
    use postcell_store::{Attempt, AttemptOutcome};
    let a = &f.store;
    let b = f.second_node().await;
    let id = queue_one(a, "far@elsewhere.test").await;
    let ttl = std::time::Duration::from_secs(1);
    let claimed = a.claim_due("a/1", ttl, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(claimed[0].domain(), "elsewhere.test");
    assert!(
        b.claim_due("b/1", ttl, 10).await.unwrap().is_empty(),
        "held by a"
    );
    // a dies: its lease runs out and b takes the entry over.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let taken = b
        .claim_due("b/1", std::time::Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].lease_owner.as_deref(), Some("b/1"));
    let delivered = Attempt {
        outcome: AttemptOutcome::Delivered,
        remote: Some("mx.elsewhere.test[192.0.2.1]:25"),
        reply: "250 2.0.0 Ok",
    };
    // a comes back too late: it no longer holds the lease, so nothing changes.
    assert!(
        !a.finish_attempt(&claimed[0], "a/1", &delivered)
            .await
            .unwrap()
    );
    assert_eq!(
        b.renew_queue_leases("b/1", std::time::Duration::from_secs(30))
            .await
            .unwrap(),
        1
    );
    assert!(
        b.finish_attempt(&taken[0], "b/1", &delivered)
            .await
            .unwrap()
    );
    assert!(a.queue_entry(id).await.unwrap().is_none());
    let log = a.queue_log(id).await.unwrap();
    let statuses: Vec<(&str, &str)> = log
        .iter()
        .map(|r| (r.status.as_str(), r.node.as_str()))
        .collect();
    assert_eq!(statuses, [("queued", a.node_id()), ("delivered", "node-b")]);
    b.close().await;
}

async fn queue_outcomes_are_logged_and_deferred_entries_wait(f: Fixture) {
    use postcell_store::{Attempt, AttemptOutcome};
    let store = &f.store;
    let deferred = queue_one(store, "slow@elsewhere.test").await;
    let bounced = queue_one(store, "gone@elsewhere.test").await;
    let ttl = std::time::Duration::from_secs(30);
    let claimed = store.claim_due("w", ttl, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let later = postcell_store::now() + 3600;
    for entry in &claimed {
        let attempt = if entry.id == deferred {
            Attempt {
                outcome: AttemptOutcome::Deferred {
                    next_attempt_at: later,
                },
                remote: Some("mx[192.0.2.1]:25"),
                reply: "451 4.3.0 later",
            }
        } else {
            Attempt {
                outcome: AttemptOutcome::Bounced,
                remote: Some("mx[192.0.2.1]:25"),
                reply: "550 5.1.1 unknown",
            }
        };
        assert!(store.finish_attempt(entry, "w", &attempt).await.unwrap());
    }
    let waiting = store.queue_entry(deferred).await.unwrap().unwrap();
    assert_eq!(
        (
            waiting.attempts,
            waiting.next_attempt_at,
            waiting.last_reply.as_deref(),
            waiting.lease_owner
        ),
        (1, later, Some("451 4.3.0 later"), None)
    );
    assert!(store.queue_entry(bounced).await.unwrap().is_none());
    assert!(
        store.claim_due("w", ttl, 10).await.unwrap().is_empty(),
        "not due yet"
    );
    assert_eq!(store.retry_queue(Some(deferred)).await.unwrap(), 1);
    assert_eq!(
        store.claim_due("w", ttl, 10).await.unwrap().len(),
        1,
        "due after retry"
    );
    assert!(store.delete_queue_entry(deferred).await.unwrap());
    assert!(!store.delete_queue_entry(deferred).await.unwrap());
    let bounces = store
        .search_log(&LogQuery {
            status: Some(DeliveryStatus::Bounced),
            limit: 10,
            ..LogQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(bounces.len(), 1);
    assert_eq!(
        (bounces[0].direction.as_str(), bounces[0].reply.as_deref()),
        ("outbound", Some("550 5.1.1 unknown"))
    );
}

async fn settings_forwards_and_dkim_keys_round_trip(f: Fixture) {
    use postcell_store::AccountSettings;
    let store = &f.store;
    let a = account(store, "fwd@example.org", 0).await;
    assert_eq!(
        store.account_settings(a).await.unwrap(),
        AccountSettings::default()
    );
    let settings = AccountSettings {
        rewrite_from: true,
        forward_keep_copy: false,
    };
    store.set_account_settings(a, &settings).await.unwrap();
    assert_eq!(store.account_settings(a).await.unwrap(), settings);
    store.add_forward(a, "z@elsewhere.test").await.unwrap();
    store.add_forward(a, "b@example.org").await.unwrap();
    store.add_forward(a, "b@example.org").await.unwrap();
    assert_eq!(
        store.forwards(a).await.unwrap(),
        ["b@example.org", "z@elsewhere.test"]
    );
    assert_eq!(
        store
            .delete_forward(a, Some("b@example.org"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.delete_forward(a, None).await.unwrap(), 1);
    assert!(store.forwards(a).await.unwrap().is_empty());
    store
        .put_dkim_key("example.org", "old", "rsa-sha256", "cHJpdg==", "cHVi")
        .await
        .unwrap();
    assert_eq!(
        store
            .dkim_key("example.org")
            .await
            .unwrap()
            .unwrap()
            .selector,
        "old"
    );
    assert!(store.dkim_key("example.net").await.unwrap().is_none());
    assert_eq!(store.dkim_keys().await.unwrap().len(), 1);
    // A forward target with its own envelope sender (SRS) is queued with it.
    let outcome = deliver_bytes(
        store,
        b"Subject: fwd\r\n\r\nx\r\n",
        vec![DeliveryTarget::Forward {
            recipient: "z@elsewhere.test".into(),
            sender: "SRS0=abcd=AA=example.net=sender@example.org".into(),
        }],
    )
    .await;
    assert!(matches!(outcome, DeliveryOutcome::Done(_)), "{outcome:?}");
    let queued = store.queued(10).await.unwrap();
    assert_eq!(
        queued[0].sender,
        "SRS0=abcd=AA=example.net=sender@example.org"
    );
}

async fn snapshot_counts_and_tombstones_for_imap_sessions(f: Fixture) {
    let store = &f.store;
    let a = account(store, "snap@example.org", 0).await;
    let inbox = store.mailbox_by_name(a, "INBOX").await.unwrap().unwrap();
    let blob = store.put_blob(b"hello\r\n".to_vec()).await.unwrap();
    for flags in [SEEN, 0, DELETED] {
        store
            .append(a, inbox.id, &message(&blob, 7, flags, &["$x".into()], 100))
            .await
            .unwrap();
    }
    let snapshot = store.mailbox_snapshot(inbox.id).await.unwrap();
    assert_eq!(
        snapshot
            .messages
            .iter()
            .map(|m| (m.uid, m.flags, m.keywords.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, SEEN, "$x"), (2, 0, "$x"), (3, DELETED, "$x")]
    );
    assert_eq!(
        (snapshot.uid_next, snapshot.uid_validity),
        (4, inbox.uid_validity)
    );
    assert_eq!(
        snapshot.highest_modseq,
        store.highest_modseq(inbox.id).await.unwrap()
    );
    let counts = store.mailbox_counts(inbox.id).await.unwrap();
    assert_eq!(
        (counts.messages, counts.unseen, counts.deleted, counts.size),
        (3, 2, 1, 21)
    );
    let before = snapshot.highest_modseq;
    store
        .expunge_deleted(a, inbox.id, &UidRanges::all())
        .await
        .unwrap();
    assert_eq!(
        store.expunged_since(inbox.id, before).await.unwrap(),
        vec![3]
    );
    assert!(
        store
            .expunged_since(inbox.id, store.highest_modseq(inbox.id).await.unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.mailbox_snapshot(999_999).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn scram_credentials_round_trip(f: Fixture) {
    let store = &f.store;
    let a = account(store, "scram@example.org", 0).await;
    assert_eq!(store.scram_credentials(a).await.unwrap(), None);
    let secrets = postcell_store::ScramCredentials {
        salt: vec![1, 2, 3],
        iterations: 4096,
        stored_key: vec![0xff; 32],
        server_key: vec![0; 32],
    };
    store
        .set_password_secrets(a, "$argon2id$new", Some(&secrets))
        .await
        .unwrap();
    assert_eq!(
        store.scram_credentials(a).await.unwrap(),
        Some(secrets.clone())
    );
    let account = store.account_by_id(a).await.unwrap().unwrap();
    assert_eq!(account.password_hash, "$argon2id$new");
    assert!(!format!("{secrets:?}").contains("255"));
    // A hash set alone clears the secrets of the old password.
    store.set_password_hash(a, "$argon2id$other").await.unwrap();
    assert_eq!(store.scram_credentials(a).await.unwrap(), None);
    assert!(matches!(
        store.set_password_secrets(999_999, "x", None).await,
        Err(StoreError::NotFound(_))
    ));
}
