//! The once-per-cell jobs Postcell runs: blob collection and expiry. The work is the
//! store's ([`Store::collect_blobs`], [`Store::expire`]); this module makes jobs of it.

use std::sync::Arc;
use std::time::Duration;

use postcell_store::{Retention, Store};
use tokio_util::sync::CancellationToken;

use crate::Job;

/// Deletes blobs no message or queue entry refers to, once they are older than `grace`.
pub fn blob_collection(interval: Duration, grace: Duration) -> Job {
    Job {
        name: "blob-gc",
        interval,
        work: Arc::new(move |store: Store, halt: CancellationToken| {
            Box::pin(async move {
                let keep_going = || !halt.is_cancelled();
                let report = store.collect_blobs(grace, &keep_going).await?;
                Ok(report.to_string())
            })
        }),
    }
}

/// Removes expunge tombstones, delivery-log records, metric samples and job runs past
/// their retention.
pub fn expiry(interval: Duration, retention: Retention) -> Job {
    Job {
        name: "expiry",
        interval,
        work: Arc::new(move |store: Store, halt: CancellationToken| {
            let retention = retention.clone();
            Box::pin(async move {
                let keep_going = || !halt.is_cancelled();
                let report = store.expire(&retention, &keep_going).await?;
                Ok(report.to_string())
            })
        }),
    }
}
