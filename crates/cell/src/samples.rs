//! Every node writes a sample of its own metrics into the store now and then, so one
//! console (the admin pages, R14) can graph the whole cell from the store alone. The
//! series are the ones `/metrics` shows, taken from the same recorder, so a graph and
//! a Prometheus scrape never disagree.

use std::time::Duration;

use postcell_store::Store;
use tokio_util::sync::CancellationToken;

use crate::RenderMetrics;

/// Samples every `interval` until `stop`. A sample the store cannot take is dropped:
/// it is monitoring, not mail.
pub async fn run(
    store: Store,
    metrics: RenderMetrics,
    interval: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let samples = parse(&metrics());
        if let Err(e) = store
            .record_metric_samples(postcell_store::now(), &samples)
            .await
        {
            tracing::debug!(error = %e, "cannot store a metric sample");
        }
    }
}

/// The `postcell_*` series of a Prometheus text exposition with their values.
/// Histogram and summary parts are left out: the console graphs counters and gauges.
pub fn parse(exposition: &str) -> Vec<(String, f64)> {
    exposition
        .lines()
        .filter(|line| line.starts_with("postcell_"))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let name = series.split('{').next().unwrap_or(series);
            if name.ends_with("_bucket") || name.ends_with("_sum") || name.ends_with("_count") {
                return None;
            }
            let value: f64 = value.parse().ok()?;
            value.is_finite().then(|| (series.to_owned(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_with_their_labels() {
        let text = "# HELP postcell_connections_total connections\n\
                    # TYPE postcell_connections_total counter\n\
                    postcell_connections_total{listener=\"smtp\"} 12\n\
                    postcell_sessions_active{listener=\"pop3\"} 2\n\
                    postcell_node_draining 0\n\
                    postcell_latency_bucket{le=\"0.5\"} 3\n\
                    other_metric 1\n\
                    postcell_broken NaN\n";
        assert_eq!(
            parse(text),
            vec![
                (
                    "postcell_connections_total{listener=\"smtp\"}".to_owned(),
                    12.0
                ),
                (
                    "postcell_sessions_active{listener=\"pop3\"}".to_owned(),
                    2.0
                ),
                ("postcell_node_draining".to_owned(), 0.0),
            ]
        );
    }
}
