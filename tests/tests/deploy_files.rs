//! The deploy files against the code: every metric an alert rule, the dashboard,
//! the autoscaler or the adapter rule queries is one the services export, and the
//! gauges the alerts need are on `/metrics`. (`scripts/check-deploy` checks the
//! files' own syntax with promtool, kubernetes-validate, hadolint and the compose
//! schema.)

use axum::body::Body;
use axum::http::Request;
use palisade_core::telemetry::names;
use palisade_tests::{Routers, repo_root};
use std::sync::atomic::Ordering;

/// Every `palisade_…` word in a deploy file (histogram series by their family name).
fn metrics_named(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut named: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("palisade_"))
        .map(|w| {
            let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| w.strip_suffix(s));
            family.filter(|f| names::ALL.contains(f)).unwrap_or(w).to_string()
        })
        .collect();
    named.sort();
    named.dedup();
    named
}

/// A renamed metric breaks this test, not a page at 3 a.m. or a blank panel.
#[test]
fn deploy_files_query_only_exported_metrics() {
    for (path, must_name) in [
        ("deploy/prometheus/alerts.yml", "palisade_plugin_quarantined"),
        ("deploy/grafana/palisade.json", "palisade_screening_category_events_total"),
        ("deploy/k8s/autoscaling.yaml", "palisade_ingest_queue_depth"),
        ("deploy/k8s/prometheus-adapter-rules.yaml", "palisade_ingest_queue_depth"),
    ] {
        let named = metrics_named(path);
        assert!(named.iter().any(|n| n == must_name), "{path}: {named:?}");
        for metric in &named {
            assert!(names::ALL.contains(&metric.as_str()), "{path} queries {metric}, which no service exports");
        }
    }
}

/// The dashboard shows every family an operator needs (each in some panel).
#[test]
fn the_dashboard_covers_ingest_screening_plugins_and_adapters() {
    let named = metrics_named("deploy/grafana/palisade.json");
    for family in [
        names::INGEST_EVENTS,
        names::HTTP_REQUEST_DURATION,
        names::INGEST_QUEUE_DEPTH,
        names::SCREENING_EVENTS,
        names::SCREENING_CATEGORIES,
        names::SCREENING_RISK,
        names::PLUGIN_CALLS,
        names::PLUGIN_ERRORS,
        names::PLUGIN_CALL_DURATION,
        names::SCREENING_CACHE,
        names::ADAPTER_OUTBOUND,
    ] {
        assert!(named.iter().any(|n| n == family), "no panel shows {family}");
    }
}

fn value(metrics: &str, name: &str) -> f64 {
    let line = metrics.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '));
    line.unwrap_or_else(|| panic!("{name} not on /metrics")).rsplit(' ').next().unwrap().parse().unwrap()
}

async fn scrape(router: &axum::Router) -> String {
    use tower::ServiceExt;
    let response = router.clone().oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    String::from_utf8(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap()
}

/// What the Redis, backlog and memory alerts read is on both services' /metrics,
/// current at scrape time.
#[tokio::test]
async fn scrape_time_gauges_follow_redis_the_backlog_and_memory() {
    let r = Routers::new(&[], &["policy"]);
    r.backlog.events.store(1234, Ordering::Relaxed);
    for router in [&r.ingest, &r.screen] {
        let metrics = scrape(router).await;
        assert_eq!(value(&metrics, names::INGEST_QUEUE_DEPTH), 1234.0);
        assert_eq!(value(&metrics, names::REDIS_UP), 1.0);
        let (rss, limit) =
            (value(&metrics, names::PROCESS_RESIDENT_MEMORY), value(&metrics, names::PROCESS_MEMORY_LIMIT));
        assert!(rss > 1e6 && rss < limit, "rss {rss} limit {limit}");
    }
    r.backlog.redis_ok.store(false, Ordering::Relaxed);
    assert_eq!(value(&scrape(&r.ingest).await, names::REDIS_UP), 0.0, "Redis lost: the gauge says so");
}
