//! A local Lambda Runtime API, so the real function binaries run here as on Lambda: the binary
//! polls `GET /2018-06-01/runtime/invocation/next`, we hand it an event, and it posts the
//! response (or an error) back.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

type Outcome = Result<Value, Value>;

#[derive(Default)]
struct Runtime {
    first_poll: Mutex<Option<std::time::Instant>>,
    pending: Mutex<VecDeque<(String, Value, u128)>>,
    arrived: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<Value>>,
}

pub struct FakeRuntime {
    pub addr: SocketAddr,
    runtime: Arc<Runtime>,
}

impl FakeRuntime {
    pub async fn start() -> Self {
        let runtime = Arc::new(Runtime::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&runtime));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, runtime }
    }

    /// What the function reported to `/runtime/init/error`, if anything.
    pub fn init_error(&self) -> Option<Value> {
        self.runtime.init_error.lock().unwrap().clone()
    }

    /// When the function first asked for an event (its init was done).
    pub fn first_poll(&self) -> Option<std::time::Instant> {
        *self.runtime.first_poll.lock().unwrap()
    }

    /// Sends one event and waits for the function's answer: `Ok(response)` or `Err(error)`.
    /// The invocation's deadline is 60 s away.
    pub async fn invoke(&self, event: Value) -> Outcome {
        self.invoke_with_deadline(event, Duration::from_secs(60))
            .await
    }

    /// The same, with the invocation's deadline (`Lambda-Runtime-Deadline-Ms`) this far away.
    pub async fn invoke_with_deadline(&self, event: Value, within: Duration) -> Outcome {
        let id = seyaha::domain::ObjectId::generate(0).to_string();
        let (tx, rx) = oneshot::channel();
        self.runtime.waiting.lock().unwrap().insert(id.clone(), tx);
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + within.as_millis();
        self.runtime
            .pending
            .lock()
            .unwrap()
            .push_back((id, event, deadline));
        self.runtime.arrived.notify_one();
        match tokio::time::timeout(Duration::from_secs(60), rx).await {
            Ok(Ok(outcome)) => outcome,
            _ => panic!(
                "the function did not answer; init error: {:?}",
                self.runtime.init_error.lock().unwrap()
            ),
        }
    }
}

async fn next(State(runtime): State<Arc<Runtime>>) -> Response {
    runtime
        .first_poll
        .lock()
        .unwrap()
        .get_or_insert_with(std::time::Instant::now);
    loop {
        let notified = runtime.arrived.notified();
        if let Some((id, event, deadline)) = runtime.pending.lock().unwrap().pop_front() {
            let mut headers = HeaderMap::new();
            headers.insert(
                "lambda-runtime-aws-request-id",
                HeaderValue::from_str(&id).unwrap(),
            );
            headers.insert(
                "lambda-runtime-deadline-ms",
                HeaderValue::from_str(&deadline.to_string()).unwrap(),
            );
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                HeaderValue::from_static("arn:aws:lambda:us-east-1:000000000000:function:test"),
            );
            headers.insert(
                "lambda-runtime-trace-id",
                HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
            );
            return (headers, axum::Json(event)).into_response();
        }
        notified.await;
    }
}

fn parse(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(
    State(runtime): State<Arc<Runtime>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    if let Some(tx) = runtime.waiting.lock().unwrap().remove(&id) {
        let _ = tx.send(Ok(parse(&body)));
    }
    StatusCode::ACCEPTED
}

async fn error(
    State(runtime): State<Arc<Runtime>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    if let Some(tx) = runtime.waiting.lock().unwrap().remove(&id) {
        let _ = tx.send(Err(parse(&body)));
    }
    StatusCode::ACCEPTED
}

async fn init_error(State(runtime): State<Arc<Runtime>>, body: Bytes) -> StatusCode {
    *runtime.init_error.lock().unwrap() = Some(parse(&body));
    StatusCode::ACCEPTED
}

/// Where `cargo build --workspace --bins` (run by `make test`) puts a function binary.
pub fn function_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the functions first (`cargo build --workspace --bins`, which `make test` runs)",
        path.display()
    );
    path
}

/// A function binary running against a [`FakeRuntime`]; killed on drop.
pub struct Function {
    child: Child,
    /// Just before the process was spawned.
    pub spawned_at: std::time::Instant,
    pub runtime: FakeRuntime,
    stderr: Arc<Mutex<String>>,
}

impl Function {
    pub async fn start(name: &str, env: &[(String, String)]) -> Self {
        Self::start_at(function_binary(name), name, env).await
    }

    /// Starts a binary at an explicit path (e.g. a release build).
    pub async fn start_at(binary: PathBuf, name: &str, env: &[(String, String)]) -> Self {
        let runtime = FakeRuntime::start().await;
        let spawned_at = std::time::Instant::now();
        let mut child = Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", runtime.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("RUST_LOG", "debug")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the function");
        let stderr = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream);
                let mut line = String::new();
                while std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) > 0 {
                    sink.lock().unwrap().push_str(&line);
                    line.clear();
                }
            });
        }
        Self {
            child,
            spawned_at,
            runtime,
            stderr,
        }
    }

    pub async fn invoke(&self, event: Value) -> Outcome {
        self.runtime.invoke(event).await
    }

    pub async fn invoke_with_deadline(&self, event: Value, within: Duration) -> Outcome {
        self.runtime.invoke_with_deadline(event, within).await
    }

    /// Waits (polling, at most `limit`) for the process to end; `None` if it is still running.
    pub async fn exit_status(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The OS process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the function logged so far (stdout and stderr).
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The CloudWatch Embedded Metric Format documents the function printed so far: the lines
    /// that are JSON objects with `_aws.CloudWatchMetrics`, in order.
    pub fn emf_documents(&self) -> Vec<Value> {
        self.logs()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|document| document["_aws"]["CloudWatchMetrics"].is_array())
            .collect()
    }

    /// Waits (at most 10 s) until a document printed after the first `seen` has `metric`, and
    /// returns that document. The function flushes after it answered, so this polls.
    pub async fn emf_document_with(&self, seen: usize, metric: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(document) = self
                .emf_documents()
                .into_iter()
                .skip(seen)
                .find(|document| document.get(metric).is_some())
            {
                return document;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no EMF document with {metric}; output:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads an event from `events/` at the workspace root.
pub fn event_file(name: &str) -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let text = std::fs::read_to_string(root.join("events").join(name))
        .unwrap_or_else(|e| panic!("events/{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("events/{name}: {e}"))
}

/// An API Gateway HTTP API (v2) event from an `events/` file, with the method, path, headers and
/// body replaced.
pub fn http_event(
    file: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Value {
    let mut event = event_file(file);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    event["routeKey"] = json!("$default");
    let mut all = json!({"content-type": "application/json", "user-agent": "seyaha-tests"});
    for (name, value) in headers {
        all[*name] = json!(value);
    }
    event["headers"] = all;
    event["body"] = body.map_or(Value::Null, |b| json!(b.to_string()));
    event["isBase64Encoded"] = json!(false);
    event
}

/// Status and JSON body of an API Gateway v2 response from lambda_http.
pub fn http_reply(response: &Value) -> (u16, Value) {
    let status = response["statusCode"].as_u64().expect("statusCode") as u16;
    let body = response["body"]
        .as_str()
        .map(|b| serde_json::from_str(b).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    (status, body)
}
