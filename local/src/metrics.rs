//! The service's metrics as Prometheus text at `GET /metrics` (seyaha-local only; on AWS the
//! functions print CloudWatch EMF instead). The recorder is process-global, so it is installed
//! once per process: every server started in it (tests start several) serves the same one.

use std::sync::OnceLock;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The Prometheus text exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder, once per process. `None` when another recorder was
/// installed first (metrics then go there, and `/metrics` says so).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), seyaha::metrics::SECONDS_BUCKETS)
                .expect("the bucket list is not empty");
            match builder.install_recorder() {
                Ok(handle) => {
                    seyaha::metrics::describe();
                    seyaha::metrics::initialize_at_zero();
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(error = %error, "another metrics recorder is installed; GET /metrics serves nothing");
                    None
                }
            }
        })
        .as_ref()
}

/// `GET /metrics`.
pub fn router() -> Router {
    Router::new().route("/metrics", get(render))
}

async fn render() -> Response {
    let Some(handle) = install() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are recorded elsewhere in this process\n",
        )
            .into_response();
    };
    // Histograms are folded in by upkeep; a scrape is a fine time for it.
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render()).into_response()
}
