//! What every Lambda function does before and around serving: settings from the environment,
//! the AWS ports, the app (through the one composition root), JSON logs for CloudWatch, and
//! metrics as CloudWatch Embedded Metric Format (EMF) documents on stdout, flushed after every
//! invocation (CloudWatch Logs turns them into metrics; no API call, no extra latency).

use std::io::Write as _;
use std::sync::{Arc, OnceLock};

use futures_util::FutureExt as _;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{Diagnostic, IntoFunctionResponse, LambdaEvent, LambdaInvocation};
use metrics_cloudwatch_embedded::Collector;
use serde::{Deserialize, Serialize};

use crate::adapters::aws::AwsResources;
use crate::app::{self, App, Host};
use crate::ports::{Clock, Ports, SystemClock};
use crate::settings::{Settings, SettingsError};

pub use lambda_runtime::Error;

/// Builds the app for a Lambda function. Clients are built once per container; no network call
/// happens here (the first request pays for what it uses).
pub async fn start() -> Result<App, SettingsError> {
    init_tracing();
    let settings = Settings::from_env()?;
    init_metrics(&settings.metrics_namespace);
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let ports = ports(&config, &settings, Arc::new(SystemClock))?;
    Ok(app::build(ports, &settings, Host::Lambda))
}

/// The AWS ports, where the settings say the resources are.
pub fn ports(
    config: &aws_config::SdkConfig,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<Ports, SettingsError> {
    // template.yaml sets all three on every function: missing, the function was deployed
    // some other way.
    let table = settings.required(
        "table_name",
        "the DynamoDB table's name (template.yaml sets it)",
        &settings.table_name,
    )?;
    let queue_url = settings.required(
        "queue_url",
        "the real-time SQS queue's URL (template.yaml sets it)",
        &settings.queue_url,
    )?;
    let bulk_queue_url = settings.required(
        "bulk_queue_url",
        "the bulk SQS queue's URL (template.yaml sets it)",
        &settings.bulk_queue_url,
    )?;
    let resources = AwsResources {
        table: table.to_owned(),
        queue_url: queue_url.to_owned(),
        bulk_queue_url: bulk_queue_url.to_owned(),
        secret_prefix: settings.secret_prefix.clone(),
        jwt_secret_id: settings.jwt_secret_id.clone(),
    };
    Ok(crate::adapters::aws::ports(config, resources, clock))
}

/// [`start`], or, when the configuration cannot work, one plain line on stderr naming the
/// variable and what to set it to, the same message reported to the Runtime API as the init
/// error (so Lambda shows it as the reason the init failed), and exit code 1. Never Rust's
/// `Error: Missing(..)` debug form.
pub async fn start_or_exit() -> App {
    match start().await {
        Ok(app) => app,
        Err(error) => {
            let message = format!("cannot start: {error}");
            eprintln!("{message}");
            report_init_error(&message).await;
            std::process::exit(1);
        }
    }
}

/// Posts `message` to the Runtime API's `/runtime/init/error` (when running under one), within
/// two seconds; a failure to report is printed, never hides the error itself.
async fn report_init_error(message: &str) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let diagnostic = Diagnostic {
        error_type: "Seyaha.ConfigurationError".into(),
        error_message: message.into(),
    };
    let report = async {
        let client = lambda_runtime_api_client::Client::builder()
            .with_endpoint(format!("http://{api}").parse()?)
            .build()?;
        let request = lambda_runtime_api_client::build_request()
            .method("POST")
            .uri("/2018-06-01/runtime/init/error")
            .header("lambda-runtime-function-error-type", "Runtime.InitError")
            .body(lambda_runtime_api_client::body::Body::from(
                serde_json::to_vec(&diagnostic)?,
            ))?;
        let response = client.call(request).await?;
        Ok::<_, Error>(response.status())
    };
    match tokio::time::timeout(std::time::Duration::from_secs(2), report).await {
        Ok(Ok(status)) if status.is_success() => {}
        Ok(Ok(status)) => eprintln!("the Runtime API answered the init error with HTTP {status}"),
        Ok(Err(error)) => eprintln!("could not report the init error to the Runtime API: {error}"),
        Err(_) => eprintln!("could not report the init error to the Runtime API within 2 s"),
    }
}

/// Serves an HTTP router (API Gateway HTTP API events) until the container ends, flushing the
/// metrics after each invocation. What `lambda_http::run` does, plus the flush.
pub async fn run_http(router: axum::Router) -> Result<(), Error> {
    let runtime = lambda_runtime::Runtime::new(lambda_http::Adapter::from(router))
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(FlushMetricsLayer);
    runtime.run().await
}

/// Serves an event handler until the container ends, flushing the metrics after each
/// invocation. What `lambda_runtime::run` does, plus the flush.
pub async fn run<A, F, R, B, S, D, E>(handler: F) -> Result<(), Error>
where
    F: Service<LambdaEvent<A>, Response = R>,
    F::Future: Future<Output = Result<R, F::Error>>,
    F::Error: Into<Diagnostic> + std::fmt::Debug,
    A: for<'de> Deserialize<'de>,
    R: IntoFunctionResponse<B, S>,
    B: Serialize,
    S: futures_util::Stream<Item = Result<D, E>> + Unpin + Send + 'static,
    D: Into<bytes::Bytes> + Send,
    E: Into<Error> + Send + std::fmt::Debug,
{
    let runtime = lambda_runtime::Runtime::new(handler)
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(FlushMetricsLayer);
    runtime.run().await
}

/// The EMF collector of this process (`None`: another recorder was installed first).
static COLLECTOR: OnceLock<Option<&'static Collector>> = OnceLock::new();

/// Installs the EMF recorder once per process. The namespace is the only dimension-free
/// setting: labels become the dimensions, and the function is not one (the same metric from
/// every function adds up, and the dashboard needs no function names).
fn init_metrics(namespace: &str) {
    COLLECTOR.get_or_init(|| match metrics_cloudwatch_embedded::Builder::new().cloudwatch_namespace(namespace.to_owned()).init() {
        Ok(collector) => {
            crate::metrics::describe();
            Some(collector)
        }
        Err(error) => {
            tracing::warn!(error = %error, "a metrics recorder was already installed; EMF metrics are off");
            None
        }
    });
}

/// Prints what was recorded since the last flush: one EMF document (one line) per label set.
/// Counters restart from zero, so each document holds the invocation's own counts.
pub fn flush_metrics() {
    let Some(Some(collector)) = COLLECTOR.get() else {
        return;
    };
    let mut documents = Vec::new();
    if let Err(error) = collector.flush(&mut documents) {
        tracing::error!(error = %error, "could not serialize the metrics of this invocation");
        return;
    }
    if documents.is_empty() {
        return;
    }
    // One write under stdout's lock: a log line from another task cannot land inside a
    // document, which CloudWatch would then not read as EMF.
    let written = {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&documents).and_then(|()| stdout.flush())
    };
    if let Err(error) = written {
        tracing::error!(error = %error, "could not write the metrics of this invocation");
    }
}

/// Flushes the metrics when an invocation ends: outermost, so after the handler and after its
/// response went to the Runtime API, before the runtime asks for the next event (Lambda may
/// freeze the container then, and a later flush would credit them to another invocation).
#[derive(Clone, Copy)]
struct FlushMetricsLayer;

impl<S> Layer<S> for FlushMetricsLayer {
    type Service = FlushMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FlushMetrics(inner)
    }
}

struct FlushMetrics<S>(S);

type Flushed<F> = futures_util::future::Inspect<F, fn(&Result<(), Error>)>;

impl<S> Service<LambdaInvocation> for FlushMetrics<S>
where
    S: Service<LambdaInvocation, Response = (), Error = Error>,
{
    type Response = ();
    type Error = Error;
    type Future = Flushed<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        self.0.call(invocation).inspect(|_| flush_metrics())
    }
}

/// JSON logs for CloudWatch; the level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default
/// info). A plain level, not an env-filter: that would bring a regex engine into every package.
fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let level = level
        .trim()
        .parse::<tracing_subscriber::filter::LevelFilter>()
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    // A second call (a process that starts the app twice) keeps the first subscriber: not an error.
    let _first_subscriber_stays = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_max_level(level)
        .try_init();
}
