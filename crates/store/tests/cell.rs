//! The store's side of cell mode, on SQLite and on a real PostgreSQL: heartbeats and
//! the node-id guard, the drain flag, leases released by a stopping node, blob
//! collection, expiry, job runs and metric samples.

use std::time::Duration;

use postcell_store::{
    BackendConfig, BlobConfig, Delivery, DeliveryOutcome, DeliveryStatus, DeliveryTarget,
    Durability, Heartbeat, LogQuery, NewAccount, NodeState, RecipientOutcome, Retention, Store,
    StoreConfig, StoreError,
};
use tempfile::TempDir;

struct Fixture {
    store: Store,
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
                max_connections: 10,
            },
            blobs: BlobConfig::Database,
            node_id: "node-a".into(),
        };
        Fixture {
            store: Store::open(&config).await.unwrap(),
            _dir: dir,
        }
    }
}

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
    heartbeats_guard_the_node_id_and_carry_the_drain_flag,
    a_stopping_node_releases_its_leases_and_only_its_own,
    unreferenced_old_blobs_are_collected_and_nothing_else,
    old_rows_expire,
    job_runs_and_metric_samples_are_recorded,
);

fn beat<'a>(instance: &'a str, draining: bool) -> Heartbeat<'a> {
    Heartbeat {
        instance,
        roles: "mx,pop3",
        version: "0.1.0",
        address: "smtp=127.0.0.2:25",
        started_at: postcell_store::now(),
        interval_secs: 5,
        draining,
    }
}

async fn heartbeats_guard_the_node_id_and_carry_the_drain_flag(f: Fixture) {
    let store = &f.store;
    store.ping().await.unwrap();
    assert_eq!(
        store.heartbeat(&beat("h/1/a", false)).await.unwrap(),
        Some(false)
    );
    assert_eq!(
        store.heartbeat(&beat("h/1/a", false)).await.unwrap(),
        Some(false)
    );
    let row = store.node("node-a").await.unwrap().unwrap();
    assert_eq!(row.state(postcell_store::now()), NodeState::Up);
    assert_eq!(row.roles, "mx,pop3");
    assert_eq!(row.heartbeat_interval, 5);

    // `postcell drain` from anywhere: the next heartbeat reports it, and keeps it.
    assert!(store.request_drain("node-a").await.unwrap());
    assert!(!store.request_drain("no-such-node").await.unwrap());
    assert_eq!(
        store.heartbeat(&beat("h/1/a", false)).await.unwrap(),
        Some(true)
    );
    assert_eq!(
        store.heartbeat(&beat("h/1/a", false)).await.unwrap(),
        Some(true)
    );
    assert_eq!(
        store
            .node("node-a")
            .await
            .unwrap()
            .unwrap()
            .state(postcell_store::now()),
        NodeState::Draining
    );

    // A second process with the same id is kept out while the first one beats.
    assert_eq!(store.heartbeat(&beat("h/2/b", false)).await.unwrap(), None);
    assert_eq!(
        store.node("node-a").await.unwrap().unwrap().instance,
        "h/1/a"
    );
    // ...unless it knows the first one is dead (same host, process gone).
    assert!(
        store
            .take_over_node("h/1/a", &beat("h/2/b", false))
            .await
            .unwrap()
    );
    assert!(
        !store
            .take_over_node("h/1/a", &beat("h/3/c", false))
            .await
            .unwrap()
    );
    assert_eq!(
        store.heartbeat(&beat("h/2/b", false)).await.unwrap(),
        Some(false),
        "a new instance starts in rotation"
    );
    // A node draining by itself (SIGUSR1) records it.
    assert_eq!(
        store.heartbeat(&beat("h/2/b", true)).await.unwrap(),
        Some(true)
    );

    // A clean stop frees the id at once and shows as stopped, not down.
    store.node_stopped("h/2/b").await.unwrap();
    let row = store.node("node-a").await.unwrap().unwrap();
    assert_eq!(row.state(postcell_store::now()), NodeState::Stopped);
    assert_eq!(
        store.heartbeat(&beat("h/4/d", false)).await.unwrap(),
        Some(false)
    );
    let row = store.node("node-a").await.unwrap().unwrap();
    assert_eq!(row.stopped_at, None);
    // Three missed heartbeats make a node down.
    assert_eq!(row.state(row.heartbeat_at + 16), NodeState::Down);
    assert_eq!(row.state(row.heartbeat_at + 14), NodeState::Up);
    assert_eq!(store.nodes().await.unwrap().len(), 1);
}

async fn a_stopping_node_releases_its_leases_and_only_its_own(f: Fixture) {
    let store = &f.store;
    let ttl = Duration::from_secs(60);
    for (name, owner) in [
        ("job:blob-gc", "node-a"),
        ("pop3:maildrop:1", "node-a:0123"),
        ("pop3:maildrop:2", "node-b:4567"),
        // A node whose id starts like ours is not ours.
        ("pop3:maildrop:3", "node-ab:89ab"),
        ("job:expiry", "node-ab"),
    ] {
        assert!(store.acquire_lease(name, owner, ttl).await.unwrap());
    }
    assert_eq!(store.release_node_leases().await.unwrap(), 2);
    assert_eq!(store.lease_holder("job:blob-gc").await.unwrap(), None);
    assert_eq!(store.lease_holder("pop3:maildrop:1").await.unwrap(), None);
    for (name, owner) in [
        ("pop3:maildrop:2", "node-b:4567"),
        ("pop3:maildrop:3", "node-ab:89ab"),
        ("job:expiry", "node-ab"),
    ] {
        assert_eq!(store.lease_holder(name).await.unwrap().unwrap().0, owner);
    }
}

async fn account(store: &Store, name: &str) -> i64 {
    let domain = name.rsplit_once('@').unwrap().1;
    match store.add_domain(domain).await {
        Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
        Err(e) => panic!("{e}"),
    }
    store
        .create_account(&NewAccount {
            name: name.into(),
            password_hash: "$argon2id$not-checked-here".into(),
            quota_bytes: 0,
            is_admin: false,
        })
        .await
        .unwrap()
        .id
}

async fn deliver(store: &Store, data: &[u8], targets: Vec<DeliveryTarget>) -> DeliveryOutcome {
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

fn local(account_id: i64) -> DeliveryTarget {
    DeliveryTarget::Local {
        account_id,
        recipient: format!("rcpt-{account_id}@example.org"),
    }
}

const NEVER: &(dyn Fn() -> bool + Sync) = &|| true;

async fn unreferenced_old_blobs_are_collected_and_nothing_else(f: Fixture) {
    let store = &f.store;
    let a = account(store, "a@example.org").await;
    let in_mailbox = postcell_store::BlobId::of(b"in a mailbox\r\n");
    deliver(store, b"in a mailbox\r\n", vec![local(a)]).await;
    let queued = postcell_store::BlobId::of(b"queued for the relay\r\n");
    deliver(
        store,
        b"queued for the relay\r\n",
        vec![DeliveryTarget::Remote {
            recipient: "far@example.net".into(),
        }],
    )
    .await;
    // A crash between blob and commit leaves this behind.
    let orphan = store.put_blob(b"orphan\r\n".to_vec()).await.unwrap();
    // Written long ago too, but about to be referenced: writing it again refreshes it.
    let reused = store.put_blob(b"reused\r\n".to_vec()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    store.put_blob(b"reused\r\n".to_vec()).await.unwrap();
    let young = store.put_blob(b"young orphan\r\n".to_vec()).await.unwrap();

    let grace = Duration::from_secs(1);
    let first = store.collect_blobs(grace, NEVER).await.unwrap();
    let folder = store.backend() == postcell_store::Backend::Sqlite;
    if folder {
        // Set aside, still readable, deleted only on a later run.
        assert_eq!((first.quarantined, first.deleted), (1, 0), "{first}");
        assert_eq!(store.get_blob(&orphan).await.unwrap(), b"orphan\r\n");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let second = store.collect_blobs(grace, NEVER).await.unwrap();
        assert_eq!(second.deleted, 1, "{second}");
        assert_eq!(second.bytes_deleted, 8, "{second}");
    } else {
        assert_eq!(first.deleted, 1, "{first}");
        assert_eq!(first.bytes_deleted, 8, "{first}");
    }
    assert!(matches!(
        store.get_blob(&orphan).await,
        Err(StoreError::BlobMissing(_))
    ));
    for kept in [&in_mailbox, &queued, &reused, &young] {
        assert!(store.get_blob(kept).await.is_ok(), "{kept} was collected");
    }
    let again = store.collect_blobs(grace, NEVER).await.unwrap();
    assert_eq!((again.deleted, again.quarantined), (0, 0), "{again}");
}

async fn folder_quarantine_gives_back_a_blob_that_became_referenced(f: Fixture) {
    let store = &f.store;
    let a = account(store, "a@example.org").await;
    let id = store.put_blob(b"late commit\r\n".to_vec()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let grace = Duration::from_secs(1);
    assert_eq!(
        store.collect_blobs(grace, NEVER).await.unwrap().quarantined,
        1
    );
    // The transaction that refers to it commits after the first look.
    let DeliveryOutcome::Done(outcomes) = store
        .deliver(&Delivery {
            blob: id.clone().into(),
            size: 13,
            internal_date: postcell_store::now(),
            message_id: None,
            summary: None,
            sender: String::new(),
            remote: None,
            targets: vec![local(a)],
        })
        .await
        .unwrap()
    else {
        panic!("delivery refused")
    };
    assert!(matches!(outcomes[0], RecipientOutcome::Delivered { .. }));
    assert_eq!(store.get_blob(&id).await.unwrap(), b"late commit\r\n");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let second = store.collect_blobs(grace, NEVER).await.unwrap();
    assert_eq!((second.restored, second.deleted), (1, 0), "{second}");
    assert_eq!(store.get_blob(&id).await.unwrap(), b"late commit\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_folder_quarantine_gives_back_a_blob_that_became_referenced() {
    folder_quarantine_gives_back_a_blob_that_became_referenced(Fixture::sqlite().await).await
}

async fn old_rows_expire(f: Fixture) {
    let store = &f.store;
    let a = account(store, "a@example.org").await;
    let mut uids = Vec::new();
    let mut mailbox = 0;
    for text in [b"one\r\n".as_slice(), b"two\r\n"] {
        let DeliveryOutcome::Done(outcomes) = deliver(store, text, vec![local(a)]).await else {
            panic!()
        };
        let RecipientOutcome::Delivered {
            mailbox_id, uid, ..
        } = outcomes[0]
        else {
            panic!()
        };
        mailbox = mailbox_id;
        uids.push(uid);
    }
    store.expunge_uids(a, mailbox, &uids[..1]).await.unwrap();
    let run = store.job_started("expiry").await.unwrap();
    store.job_finished(run, "ok", "").await.unwrap();
    let retention = Retention {
        expunged: Duration::from_secs(1),
        delivery_log: Duration::from_secs(1),
        metric_samples: Duration::from_secs(1),
        job_runs: Duration::from_secs(1),
    };
    // The first run sees the tombstone for the first time and only stamps it.
    let first = store.expire(&retention, NEVER).await.unwrap();
    assert_eq!(first.expunged, 0, "{first}");
    assert_eq!(store.expunged_purged_modseq(mailbox).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let second = store.expire(&retention, NEVER).await.unwrap();
    assert_eq!(second.expunged, 1, "{second}");
    assert_eq!(second.delivery_log, 2, "{second}");
    assert_eq!(second.job_runs, 1, "{second}");
    assert!(store.expunged_purged_modseq(mailbox).await.unwrap() > 1);
    let log = store
        .search_log(&LogQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(log.is_empty(), "{log:?}");
    // The message that was not expunged is untouched.
    let (_, _, left) = store.maildrop(a).await.unwrap();
    assert_eq!(left.len(), 1);
    let long = Retention {
        expunged: Duration::from_secs(86400),
        delivery_log: Duration::from_secs(86400),
        metric_samples: Duration::from_secs(86400),
        job_runs: Duration::from_secs(86400),
    };
    deliver(store, b"three\r\n", vec![local(a)]).await;
    let kept = store.expire(&long, NEVER).await.unwrap();
    assert_eq!(kept, postcell_store::ExpiryReport::default());
    assert_eq!(
        store
            .search_log(&LogQuery {
                status: Some(DeliveryStatus::Delivered),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn job_runs_and_metric_samples_are_recorded(f: Fixture) {
    let store = &f.store;
    assert_eq!(store.job_last_started("blob-gc").await.unwrap(), None);
    let run = store.job_started("blob-gc").await.unwrap();
    store.job_finished(run, "ok", "deleted=3").await.unwrap();
    let last = store.job_last_started("blob-gc").await.unwrap().unwrap();
    assert!((postcell_store::now_ms() - last).abs() < 5000);
    let runs = store.job_runs(10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].node, "node-a");
    assert_eq!(runs[0].outcome.as_deref(), Some("ok"));
    assert_eq!(runs[0].detail.as_deref(), Some("deleted=3"));
    assert!(runs[0].finished_ms.unwrap() >= runs[0].started_ms);

    let series = r#"postcell_connections_total{listener="smtp"}"#;
    store
        .record_metric_samples(100, &[(series.into(), 7.0), ("postcell_up".into(), 1.0)])
        .await
        .unwrap();
    store
        .record_metric_samples(160, &[(series.into(), 9.0)])
        .await
        .unwrap();
    assert_eq!(
        store.metric_samples(series, 0).await.unwrap(),
        vec![
            ("node-a".to_owned(), 100, 7.0),
            ("node-a".to_owned(), 160, 9.0)
        ]
    );
}

/// PostgreSQL goes away and comes back: the change feed listens again by itself and
/// tells sessions to resync only once it is listening, and notices flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_feed_reconnects_and_asks_for_a_resync() {
    let pg = postcell_testkit::TempPostgres::start().unwrap();
    let url = pg.create_database("feed").unwrap();
    let config = |node: &str| StoreConfig {
        backend: BackendConfig::Postgres {
            url: url.clone(),
            max_connections: 4,
        },
        blobs: BlobConfig::Database,
        node_id: node.into(),
    };
    let listener = Store::open(&config("node-a")).await.unwrap();
    let mut feed = listener.feed().subscribe();
    pg.stop().unwrap();
    // While the database is away, queries fail within seconds instead of hanging.
    let started = std::time::Instant::now();
    assert!(listener.ping().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(8));
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.start_again().unwrap();
    let resync = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match feed.recv().await {
                Ok(postcell_store::Change::Resync) => return,
                Ok(_) => continue,
                Err(e) => panic!("feed closed: {e}"),
            }
        }
    })
    .await;
    assert!(resync.is_ok(), "no Resync after PostgreSQL came back");
    listener.ping().await.unwrap();
    // Notices from another node arrive again.
    let writer = Store::open(&config("node-b")).await.unwrap();
    let a = account(&writer, "a@example.org").await;
    deliver(&writer, b"after the outage\r\n", vec![local(a)]).await;
    let notice = tokio::time::timeout(Duration::from_secs(5), feed.recv())
        .await
        .expect("no notice after reconnecting")
        .unwrap();
    assert!(
        matches!(notice, postcell_store::Change::Mailbox { account_id, .. } if account_id == a),
        "{notice:?}"
    );
    writer.close().await;
    listener.close().await;
}
