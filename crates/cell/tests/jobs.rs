//! Once-per-cell jobs on a real PostgreSQL: three nodes (each with its own runtime and
//! connection pool, as separate processes would have) compete for a job. It runs on
//! exactly one node at a time; when that node dies (its runtime is dropped, nothing is
//! released) the job moves to another node once the lease expires; when a node drains,
//! it gives the job up at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postcell_cell::{Job, JobRunner};
use postcell_store::{BackendConfig, BlobConfig, Store, StoreConfig};
use tokio_util::sync::CancellationToken;

/// One run as the job saw it: node, start, end.
type Runs = Arc<Mutex<Vec<(String, Instant, Option<Instant>)>>>;

const LEASE_TTL: Duration = Duration::from_secs(2);

/// A node: a thread with its own runtime running a JobRunner until told to stop
/// (`drain`) or killed (`kill`: the runtime goes away without releasing anything).
struct Node {
    name: String,
    stop: CancellationToken,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Node {
    fn start(name: &str, url: &str, runs: Runs) -> Node {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let stop = CancellationToken::new();
        let config = StoreConfig {
            backend: BackendConfig::Postgres {
                url: url.to_owned(),
                max_connections: 4,
            },
            blobs: BlobConfig::Database,
            node_id: name.to_owned(),
        };
        let node_name = name.to_owned();
        let token = stop.clone();
        runtime.spawn(async move {
            let store = Store::open(&config).await.unwrap();
            let runner_name = node_name.clone();
            let job = Job {
                name: "probe",
                interval: Duration::from_millis(200),
                work: Arc::new(move |_store: Store, _halt: CancellationToken| {
                    let runs = runs.clone();
                    let node = runner_name.clone();
                    Box::pin(async move {
                        let index = {
                            let mut runs = runs.lock().unwrap();
                            runs.push((node, Instant::now(), None));
                            runs.len() - 1
                        };
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        runs.lock().unwrap()[index].2 = Some(Instant::now());
                        Ok("probed".to_owned())
                    })
                }),
            };
            let runner = JobRunner {
                store: store.clone(),
                owner: node_name,
                lease_ttl: LEASE_TTL,
                jobs: vec![job],
            };
            runner.spawn(token).wait().await;
            store.close().await;
        });
        Node {
            name: name.to_owned(),
            stop,
            runtime: Some(runtime),
        }
    }

    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    fn drain(&mut self) {
        self.stop.cancel();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(10));
        }
    }
}

/// The node that ran the job last, after waiting `time`.
fn last_runner(runs: &Runs, time: Duration) -> String {
    std::thread::sleep(time);
    runs.lock()
        .unwrap()
        .last()
        .expect("the job never ran")
        .0
        .clone()
}

fn assert_one_at_a_time(runs: &Runs) {
    let runs = runs.lock().unwrap();
    for pair in runs.windows(2) {
        let (first, second) = (&pair[0], &pair[1]);
        // A run cut short by its node's death has no end: it ended with the node.
        if let Some(end) = first.2 {
            assert!(
                end <= second.1,
                "{} started while {} still ran",
                second.0,
                first.0
            );
        }
    }
}

#[test]
fn a_job_runs_on_one_node_at_a_time_and_moves_when_its_node_dies_or_drains() {
    let pg = postcell_testkit::shared_postgres();
    let url = pg.fresh_database().unwrap();
    // Create the schema once, so the three nodes do not all migrate at the same time.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&StoreConfig {
            backend: BackendConfig::Postgres {
                url: url.clone(),
                max_connections: 1,
            },
            blobs: BlobConfig::Database,
            node_id: "setup".into(),
        })
        .await
        .unwrap();
        store.close().await;
    });

    let runs: Runs = Arc::default();
    let mut nodes: Vec<Node> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|name| Node::start(name, &url, runs.clone()))
        .collect();

    let first = last_runner(&runs, Duration::from_secs(3));
    {
        let runs = runs.lock().unwrap();
        assert!(runs.len() >= 5, "the job ran only {} times", runs.len());
        assert!(
            runs.iter().all(|r| r.0 == first),
            "several nodes ran the job: {:?}",
            runs.iter().map(|r| &r.0).collect::<Vec<_>>()
        );
    }

    // The runner dies: nothing is released, the lease must expire first.
    let killed_at = Instant::now();
    nodes.iter_mut().find(|n| n.name == first).unwrap().kill();
    let second = last_runner(&runs, LEASE_TTL * 2 + Duration::from_secs(1));
    assert_ne!(second, first, "the job did not move after its node died");
    let moved_at = runs
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.0 == second)
        .unwrap()
        .1;
    assert!(
        moved_at.duration_since(killed_at) >= LEASE_TTL / 2,
        "the job moved before the dead node's lease could have expired"
    );

    // The new runner drains: it gives the lease back, and the last node takes the job
    // without waiting for an expiry.
    let drained_at = Instant::now();
    nodes.iter_mut().find(|n| n.name == second).unwrap().drain();
    let third = last_runner(&runs, LEASE_TTL);
    assert!(
        third != first && third != second,
        "{third} ran after draining"
    );
    let third_started = runs
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.0 == third)
        .unwrap()
        .1;
    assert!(third_started.duration_since(drained_at) < LEASE_TTL);
    assert_one_at_a_time(&runs);
    for node in &mut nodes {
        node.drain();
    }
}
