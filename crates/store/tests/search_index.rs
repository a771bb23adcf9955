//! The search index on both backends: what it finds, how it folds case, the short-needle
//! fallback, one row per blob, removal with the last message, and indexing after the
//! fact. Every test runs against SQLite and a real PostgreSQL.

use postcell_store::{
    BackendConfig, BlobConfig, BlobId, Delivery, DeliveryOutcome, DeliveryTarget, Durability,
    IndexerSettings, NewAccount, NewMessage, RecipientOutcome, SentDay, Store, StoreConfig,
    StoreError, TextField, UidRanges,
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
            _dir: tempfile::tempdir().unwrap(),
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
    fields_are_searched_apart_and_without_case,
    short_needles_scan_the_text_table,
    pattern_characters_are_plain_text,
    japanese_in_legacy_charsets_is_found_in_utf8,
    sent_days_headers_and_references,
    one_row_per_blob_removed_with_the_last_message,
    queued_messages_are_indexed_before_a_search,
    a_long_queue_gives_up_only_the_mailbox_searched,
    the_background_indexer_empties_the_queue,
);

const BOB: &[u8] = b"From: Bob Smith <bob@example.net>\r\nTo: alice@example.org\r\n\
Cc: Carol <carol@example.org>\r\nBcc: dave@example.org\r\nSubject: Lunch on FRIDAY\r\n\
Date: Fri, 6 Mar 2026 23:30:00 -0800\r\nMessage-ID: <lunch@example.net>\r\n\
X-Mailer: \xc3\x89crivain 2.0\r\n\r\nShall we meet at noon? 100% sure_thing\r\n";

const CAROL: &[u8] = b"From: Carol <carol@example.org>\r\nTo: alice@example.org\r\n\
Subject: Re: Lunch on Friday\r\nDate: Sat, 7 Mar 2026 09:00:00 +0100\r\n\
References: <lunch@example.net>\r\n <other@example.net>\r\nIn-Reply-To: <lunch@example.net>\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n<p>Yes, <b>noon</b> works. \xc3\x89t\xc3\xa9 plans?</p>\r\n";

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

/// Delivers `raw` to each account's INBOX, then (if `index`) lets the indexer write
/// everything queued; returns the mailbox ids.
async fn deliver(store: &Store, raw: &[u8], accounts: &[i64], index: bool) -> Vec<i64> {
    let blob_id = store.put_blob(raw.to_vec()).await.unwrap();
    let outcome = store
        .deliver(&Delivery {
            blob: blob_id.into(),
            size: raw.len() as i64,
            internal_date: postcell_store::now(),
            message_id: None,
            summary: None,
            sender: "sender@example.net".into(),
            remote: None,
            targets: accounts
                .iter()
                .map(|&account_id| DeliveryTarget::Local {
                    account_id,
                    recipient: format!("{account_id}@example.org"),
                })
                .collect(),
        })
        .await
        .unwrap();
    let DeliveryOutcome::Done(outcomes) = outcome else {
        panic!("{outcome:?}")
    };
    if index {
        index_everything(store).await;
    }
    outcomes
        .into_iter()
        .map(|o| match o {
            RecipientOutcome::Delivered { mailbox_id, .. } => mailbox_id,
            other => panic!("{other:?}"),
        })
        .collect()
}

async fn index_everything(store: &Store) {
    for _ in 0..100 {
        if store.index_queued(50).await.unwrap() == 0 {
            assert_eq!(store.search_queue_len().await.unwrap(), 0);
            return;
        }
    }
    panic!("the index queue does not empty");
}

/// The answer of the search, which must not depend on how the store finds it: as for a
/// small mailbox (SQLite reads header fields row by row) and as for a large one (it
/// asks the FTS index).
async fn find(store: &Store, mailbox: i64, field: TextField, needle: &str) -> Vec<i64> {
    let small = store.search_text(mailbox, 3, field, needle).await.unwrap();
    let large = store
        .search_text(mailbox, 1_000_000, field, needle)
        .await
        .unwrap();
    assert_eq!(
        small, large,
        "{field:?} {needle:?}: scan and index disagree"
    );
    small
}

/// The index rows left once the blob collector has run: on SQLite it removes the rows
/// of blobs no message refers to (the index is a file of its own, out of reach of a
/// trigger); on PostgreSQL a trigger already has. The long grace spares every blob.
async fn indexed_after_collection(store: &Store) -> i64 {
    let grace = std::time::Duration::from_secs(3600);
    store.collect_blobs(grace, &|| true).await.unwrap();
    indexed(store).await
}

async fn indexed(store: &Store) -> i64 {
    let counts = store.counts().await.unwrap();
    counts
        .iter()
        .find(|(label, _)| *label == "indexed")
        .unwrap()
        .1
}

async fn fields_are_searched_apart_and_without_case(f: Fixture) {
    let store = &f.store;
    let alice = account(store, "alice@example.org").await;
    let inbox = deliver(store, BOB, &[alice], true).await[0];
    deliver(store, CAROL, &[alice], true).await;
    assert_eq!(
        find(store, inbox, TextField::From, "BOB smith").await,
        vec![1]
    );
    assert_eq!(find(store, inbox, TextField::From, "carol").await, vec![2]);
    assert_eq!(find(store, inbox, TextField::Cc, "carol").await, vec![1]);
    assert_eq!(find(store, inbox, TextField::Bcc, "dave@").await, vec![1]);
    assert_eq!(
        find(store, inbox, TextField::To, "alice@example").await,
        vec![1, 2]
    );
    assert_eq!(
        find(store, inbox, TextField::Subject, "lunch on friday").await,
        vec![1, 2]
    );
    assert_eq!(
        find(store, inbox, TextField::Subject, "re: lunch").await,
        vec![2]
    );
    assert_eq!(
        find(store, inbox, TextField::Body, "NOON").await,
        vec![1, 2]
    );
    // HTML is searched as its text: the tags are gone.
    assert_eq!(
        find(store, inbox, TextField::Body, "yes, noon works").await,
        vec![2]
    );
    assert!(find(store, inbox, TextField::Body, "<b>").await.is_empty());
    // Case folding is Unicode's, not ASCII's only.
    assert_eq!(
        find(store, inbox, TextField::Body, "ÉTÉ PLANS").await,
        vec![2]
    );
    assert_eq!(
        find(store, inbox, TextField::Headers, "écrivain").await,
        vec![1]
    );
    // TEXT is the header or the body; BODY is not the header.
    assert_eq!(
        find(store, inbox, TextField::Text, "écrivain").await,
        vec![1]
    );
    assert!(
        find(store, inbox, TextField::Body, "écrivain")
            .await
            .is_empty()
    );
    assert_eq!(
        find(store, inbox, TextField::Text, "shall we").await,
        vec![1]
    );
    assert!(
        find(store, inbox, TextField::Text, "not in any message")
            .await
            .is_empty()
    );
    // Another account's mailbox sees none of it.
    let bob = account(store, "bob@example.org").await;
    let other = deliver(store, b"Subject: x\r\n\r\ny\r\n", &[bob], true).await[0];
    assert!(find(store, other, TextField::Body, "noon").await.is_empty());
}

async fn short_needles_scan_the_text_table(f: Fixture) {
    let store = &f.store;
    let alice = account(store, "alice@example.org").await;
    let inbox = deliver(store, BOB, &[alice], true).await[0];
    deliver(store, CAROL, &[alice], true).await;
    deliver(
        store,
        "Subject: 日本\r\n\r\n日\r\n".as_bytes(),
        &[alice],
        true,
    )
    .await;
    assert_eq!(find(store, inbox, TextField::Body, "NO").await, vec![1, 2]);
    assert_eq!(find(store, inbox, TextField::Body, "%").await, vec![1]);
    assert_eq!(
        find(store, inbox, TextField::Subject, "日本").await,
        vec![3]
    );
    assert_eq!(find(store, inbox, TextField::Body, "日").await, vec![3]);
    assert_eq!(find(store, inbox, TextField::Body, "É").await, vec![2]);
    assert_eq!(find(store, inbox, TextField::From, "").await, vec![1, 2, 3]);
}

async fn pattern_characters_are_plain_text(f: Fixture) {
    let store = &f.store;
    let alice = account(store, "alice@example.org").await;
    let inbox = deliver(store, BOB, &[alice], true).await[0];
    deliver(store, b"Subject: y\r\n\r\n100 percent\r\n", &[alice], true).await;
    deliver(
        store,
        b"Subject: y\r\n\r\nsure thing \"quoted\"\r\n",
        &[alice],
        true,
    )
    .await;
    assert_eq!(find(store, inbox, TextField::Body, "100%").await, vec![1]);
    assert_eq!(
        find(store, inbox, TextField::Body, "sure_thing").await,
        vec![1]
    );
    assert_eq!(
        find(store, inbox, TextField::Body, "\"quoted\"").await,
        vec![3]
    );
    assert!(find(store, inbox, TextField::Body, "1%0").await.is_empty());
    assert!(
        find(store, inbox, TextField::Body, "sure*")
            .await
            .is_empty()
    );
    assert!(
        find(store, inbox, TextField::Body, "body : noon")
            .await
            .is_empty()
    );
}

async fn japanese_in_legacy_charsets_is_found_in_utf8(f: Fixture) {
    let store = &f.store;
    let alice = account(store, "alice@example.org").await;
    // "会議の議事録です。" in ISO-2022-JP, subject "打ち合わせ" as an encoded word.
    let mut iso = b"From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@example.jp>\r\n\
Subject: =?ISO-2022-JP?B?GyRCQkckQTlnJG8kOxsoQg==?=\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
        .to_vec();
    iso.extend_from_slice(b"\x1b$B2q5D$N5D;vO?$G$9!#\x1b(B\r\n");
    let inbox = deliver(store, &iso, &[alice], true).await[0];
    // "日本語のメール" in Shift_JIS, quoted-printable.
    let sjis = b"Subject: test\r\nContent-Type: text/plain; charset=Shift_JIS\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\n=93=FA=96{=8C=EA=82=CC=83=81=81[=83=8B\r\n";
    deliver(store, sjis, &[alice], true).await;
    assert_eq!(find(store, inbox, TextField::Body, "議事録").await, vec![1]);
    assert_eq!(
        find(store, inbox, TextField::Subject, "打ち合わせ").await,
        vec![1]
    );
    assert_eq!(find(store, inbox, TextField::From, "山田").await, vec![1]);
    assert_eq!(
        find(store, inbox, TextField::Body, "日本語のメール").await,
        vec![2]
    );
    assert_eq!(find(store, inbox, TextField::Text, "メール").await, vec![2]);
}

async fn sent_days_headers_and_references(f: Fixture) {
    let store = &f.store;
    let alice = account(store, "alice@example.org").await;
    let inbox = deliver(store, BOB, &[alice], true).await[0];
    deliver(store, CAROL, &[alice], true).await;
    deliver(store, b"Subject: no date\r\n\r\nx\r\n", &[alice], true).await;
    // Bob wrote on 6 March in his zone (7 March in UTC); Carol on 7 March.
    let march_6 = 20_518;
    let sent = |condition| store.search_sent_day(inbox, condition);
    assert_eq!(sent(SentDay::On(march_6)).await.unwrap(), vec![1]);
    assert_eq!(sent(SentDay::Before(march_6 + 1)).await.unwrap(), vec![1]);
    assert_eq!(sent(SentDay::Since(march_6)).await.unwrap(), vec![1, 2]);
    assert_eq!(sent(SentDay::Since(march_6 + 1)).await.unwrap(), vec![2]);
    let headers = store.search_headers(inbox, 3, "<lunch@").await.unwrap();
    assert_eq!(
        headers.iter().map(|(uid, _)| *uid).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(headers[0].1.contains("message-id: <lunch@example.net>\n"));
    assert_eq!(store.search_headers(inbox, 3, "").await.unwrap().len(), 3);
    let references = store
        .message_references(inbox, &UidRanges::all())
        .await
        .unwrap();
    assert_eq!(
        references,
        vec![(2, "<lunch@example.net> <other@example.net>".to_owned())]
    );
}

async fn one_row_per_blob_removed_with_the_last_message(f: Fixture) {
    let store = &f.store;
    let alice = account(store, "alice@example.org").await;
    let bob = account(store, "bob@example.org").await;
    let mailboxes = deliver(store, BOB, &[alice, bob], true).await;
    assert_eq!(
        indexed(store).await,
        1,
        "one row for a blob in two mailboxes"
    );
    let archive = store
        .mailbox_by_name(alice, "Archive")
        .await
        .unwrap()
        .unwrap()
        .id;
    store
        .copy_messages(alice, mailboxes[0], &UidRanges::all(), archive, false)
        .await
        .unwrap();
    assert_eq!(indexed(store).await, 1, "a copy shares its source's row");
    assert_eq!(find(store, archive, TextField::Body, "noon").await, vec![1]);
    store.expunge_uids(alice, mailboxes[0], &[1]).await.unwrap();
    store.expunge_uids(bob, mailboxes[1], &[1]).await.unwrap();
    assert_eq!(
        indexed_after_collection(store).await,
        1,
        "the copy in Archive still refers to it"
    );
    assert_eq!(find(store, archive, TextField::Body, "noon").await, vec![1]);
    // MOVE out of Archive keeps it; deleting the mailbox it went to removes it.
    let trash = store
        .mailbox_by_name(alice, "Trash")
        .await
        .unwrap()
        .unwrap()
        .id;
    store
        .copy_messages(alice, archive, &UidRanges::all(), trash, true)
        .await
        .unwrap();
    assert_eq!(indexed(store).await, 1);
    assert_eq!(find(store, trash, TextField::Body, "noon").await, vec![1]);
    store.delete_mailbox(alice, "Trash").await.unwrap();
    assert_eq!(
        indexed_after_collection(store).await,
        0,
        "gone with the last message"
    );
    // Deleting an account takes its texts too.
    deliver(store, CAROL, &[bob], true).await;
    assert_eq!(indexed_after_collection(store).await, 1);
    store.delete_account(bob).await.unwrap();
    assert_eq!(indexed_after_collection(store).await, 0);
}

/// Past a few hundred queued blobs, a search looks its mailbox's messages up in the
/// queue rather than reading the queue: the same blobs either way.
async fn a_long_queue_gives_up_only_the_mailbox_searched(f: Fixture) {
    let store = &f.store;
    let alice = account(store, "alice@example.org").await;
    let bob = account(store, "bob@example.org").await;
    for n in 0..300 {
        let raw = format!("Subject: n{n}\r\n\r\nbulk {n}\r\n");
        deliver(store, raw.as_bytes(), &[bob], false).await;
    }
    let inbox = deliver(store, BOB, &[alice], false).await[0];
    deliver(store, CAROL, &[alice], false).await;
    assert_eq!(store.search_queue_len().await.unwrap(), 302);
    assert_eq!(store.index_mailbox(inbox).await.unwrap(), 2);
    assert_eq!(
        store.search_queue_len().await.unwrap(),
        300,
        "bob's stay queued"
    );
    assert_eq!(
        find(store, inbox, TextField::Body, "noon").await,
        vec![1, 2]
    );
}

async fn queued_messages_are_indexed_before_a_search(f: Fixture) {
    let store = &f.store;
    let alice = account(store, "alice@example.org").await;
    let inbox = deliver(store, BOB, &[alice], false).await[0];
    deliver(store, CAROL, &[alice], false).await;
    assert_eq!(store.search_queue_len().await.unwrap(), 2);
    assert_eq!(indexed(store).await, 0, "a delivery only queues its text");
    assert!(find(store, inbox, TextField::Body, "noon").await.is_empty());
    assert_eq!(store.index_mailbox(inbox).await.unwrap(), 2);
    assert_eq!(store.index_mailbox(inbox).await.unwrap(), 0);
    assert_eq!(store.search_queue_len().await.unwrap(), 0);
    assert_eq!(
        find(store, inbox, TextField::Body, "noon").await,
        vec![1, 2]
    );
    // The same text delivered again is queued again (the writer does not look into
    // the index), and indexing it again leaves its one row as it was.
    deliver(store, BOB, &[alice], false).await;
    assert_eq!(store.search_queue_len().await.unwrap(), 1);
    assert_eq!(store.index_mailbox(inbox).await.unwrap(), 1);
    assert_eq!(indexed(store).await, 2);
    assert_eq!(
        find(store, inbox, TextField::Body, "noon").await,
        vec![1, 2, 3]
    );

    let drafts = store
        .mailbox_by_name(alice, "Drafts")
        .await
        .unwrap()
        .unwrap()
        .id;
    let blob = store
        .put_blob(b"Subject: draft\r\n\r\nunfinished\r\n".to_vec())
        .await
        .unwrap();
    append(store, alice, drafts, blob, 30).await;
    // A message whose blob is gone is indexed as empty, once.
    append(store, alice, drafts, BlobId::of(b"never written"), 13).await;
    assert_eq!(
        store.search_queue_len().await.unwrap(),
        2,
        "APPEND queues too"
    );
    assert_eq!(
        store.index_mailbox(inbox).await.unwrap(),
        0,
        "another mailbox"
    );
    assert_eq!(store.index_mailbox(drafts).await.unwrap(), 2);
    assert_eq!(store.index_mailbox(drafts).await.unwrap(), 0);
    assert_eq!(
        find(store, drafts, TextField::Body, "unfinished").await,
        vec![1]
    );
    assert_eq!(
        find(store, drafts, TextField::Subject, "").await,
        vec![1, 2]
    );

    // What is expunged before the indexer reaches it leaves the queue, and the indexer
    // writes no row for it.
    let sent = b"Subject: gone soon\r\n\r\nephemeral\r\n";
    deliver(store, sent, &[alice], false).await;
    assert_eq!(store.search_queue_len().await.unwrap(), 1);
    store.expunge_uids(alice, inbox, &[4]).await.unwrap();
    assert_eq!(store.search_queue_len().await.unwrap(), 0);
    let before = indexed(store).await;
    assert_eq!(store.index_queued(10).await.unwrap(), 0);
    assert_eq!(indexed(store).await, before);
}

async fn the_background_indexer_empties_the_queue(f: Fixture) {
    let store = &f.store;
    let alice = account(store, "alice@example.org").await;
    let mut inbox = 0;
    for n in 0..30 {
        let raw = format!("Subject: note {n}\r\n\r\nbody number{n:03}\r\n");
        inbox = deliver(store, raw.as_bytes(), &[alice], false).await[0];
    }
    assert_eq!(store.search_queue_len().await.unwrap(), 30);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let indexer = tokio::spawn(store.clone().run_indexer(
        IndexerSettings {
            batch: 7,
            ..IndexerSettings::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.search_queue_len().await.unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the indexer left {} queued",
            store.search_queue_len().await.unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(indexed(store).await, 30);
    assert_eq!(
        find(store, inbox, TextField::Body, "number017").await,
        vec![18]
    );
    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(5), indexer)
        .await
        .expect("the indexer stops when told")
        .unwrap();
}

async fn append(store: &Store, account: i64, mailbox: i64, blob_id: BlobId, size: i64) {
    store
        .append(
            account,
            mailbox,
            &NewMessage {
                blob_id,
                size,
                flags: 0,
                keywords: Vec::new(),
                internal_date: postcell_store::now(),
                summary: None,
            },
        )
        .await
        .unwrap();
}

/// pg_trgm makes trigrams of the letters LC_CTYPE knows: none of Japanese under `C`
/// (searches are then right but scan), and the index serves them under a UTF-8 ctype.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_trigrams_follow_the_database_ctype() {
    let pg = postcell_testkit::shared_postgres();
    let name = format!("trgm_utf8_{}", std::process::id());
    pg.psql(
        "postgres",
        &format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' \
             LC_COLLATE 'C' LC_CTYPE 'C.utf8'"
        ),
    )
    .unwrap();
    let c_locale = pg.fresh_database().unwrap();
    for (url, japanese_trigrams) in [(pg.url(&name), true), (c_locale, false)] {
        let config = StoreConfig {
            backend: BackendConfig::Postgres {
                url: url.clone(),
                max_connections: 4,
            },
            blobs: BlobConfig::Database,
            node_id: "node-a".into(),
        };
        let store = Store::open(&config).await.unwrap();
        let alice = account(&store, "alice@example.org").await;
        let raw =
            "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n会議の議事録 at noon\r\n";
        let inbox = deliver(&store, raw.as_bytes(), &[alice], true).await[0];
        assert_eq!(
            find(&store, inbox, TextField::Body, "議事録").await,
            vec![1]
        );
        assert_eq!(find(&store, inbox, TextField::Body, "noon").await, vec![1]);
        let db = url.rsplit('/').next().unwrap();
        let trigrams = pg.psql(db, "SELECT show_trgm('議事録')").unwrap();
        assert_eq!(
            trigrams.trim() != "{}",
            japanese_trigrams,
            "{db}: {trigrams}"
        );
        let plan = pg
            .psql(
                db,
                "SET enable_seqscan = off; EXPLAIN SELECT id FROM search_text WHERE body LIKE '%noon%'",
            )
            .unwrap();
        assert!(plan.contains("search_text_trigrams"), "{plan}");
        store.close().await;
    }
}

/// On SQLite the index is a file of its own that holds nothing the messages cannot
/// give again: deleted, it comes back empty at the next open with every message
/// queued, and a search finds them as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_sqlite_index_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let config = StoreConfig {
        backend: BackendConfig::Sqlite {
            path: path.clone(),
            durability: Durability::Full,
        },
        blobs: BlobConfig::Folder(dir.path().join("blobs")),
        node_id: "node-a".into(),
    };
    let index_file = postcell_store::search_index_path(&path);
    assert_eq!(index_file, dir.path().join("state.search.db"));

    let store = Store::open(&config).await.unwrap();
    let alice = account(&store, "alice@example.org").await;
    let inbox = deliver(&store, BOB, &[alice], true).await[0];
    deliver(&store, CAROL, &[alice], true).await;
    assert_eq!(indexed(&store).await, 2);
    assert_eq!(store.search_queue_len().await.unwrap(), 0);
    store.close().await;
    assert!(index_file.exists());

    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", index_file.display());
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{file}: {e}"),
        }
    }
    let store = Store::open(&config).await.unwrap();
    assert_eq!(indexed(&store).await, 0);
    assert_eq!(store.search_queue_len().await.unwrap(), 2);
    assert_eq!(store.index_mailbox(inbox).await.unwrap(), 2);
    assert_eq!(
        find(&store, inbox, TextField::Body, "noon").await,
        vec![1, 2]
    );
    assert_eq!(indexed(&store).await, 2);
    store.close().await;

    // Opened again, the file is kept as it is.
    let store = Store::open(&config).await.unwrap();
    assert_eq!(store.search_queue_len().await.unwrap(), 0);
    assert_eq!(indexed(&store).await, 2);
    store.close().await;
}
