//! A fake OCTO supplier: a real HTTP server on a loopback port 0 with a settable catalog, an
//! auth check in both forms Seyaha sends, and the failure modes partners really produce.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The credential the fake accepts unless told otherwise.
pub const FAKE_KEY: &str = "fake-octo-key";

/// How the fake answers `GET /products`.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 with the catalog.
    Normal,
    /// This HTTP status with an OCTO error body.
    Status(u16),
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Hold every answer until [`FakeOcto::release`], then answer normally: a sync in flight
    /// for exactly as long as a test needs, without guessing durations.
    Held,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with JSON that is not an array.
    NotArray,
    /// 200 with a valid JSON array of this many bytes or more.
    Oversized(usize),
}

/// What one request carried.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub path: String,
    pub authorization: Option<String>,
    pub octo_capabilities: Option<String>,
}

struct FakeState {
    /// Open once `release` was called (for `Behaviour::Held`).
    gate: tokio::sync::watch::Sender<bool>,
    catalog: Value,
    /// When set, served byte for byte instead of `catalog`.
    raw: Option<String>,
    key: String,
    behaviour: Behaviour,
    seen: Vec<SeenRequest>,
}

#[derive(Clone)]
pub struct FakeOcto {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
}

impl FakeOcto {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(FakeState {
            gate: tokio::sync::watch::Sender::new(false),
            catalog: sample_catalog(3),
            raw: None,
            key: FAKE_KEY.into(),
            behaviour: Behaviour::Normal,
            seen: Vec::new(),
        }));
        let app = Router::new().route("/octo/products", get(products)).with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake OCTO supplier");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, state }
    }

    /// What a partner would register as `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/octo", self.addr)
    }

    pub fn set_catalog(&self, catalog: Value) {
        let mut state = self.state.lock().unwrap();
        state.catalog = catalog;
        state.raw = None;
    }

    /// Serves exactly these bytes as the catalog (key order, whitespace and all).
    pub fn set_raw_catalog(&self, text: String) {
        self.state.lock().unwrap().raw = Some(text);
    }

    pub fn catalog(&self) -> Value {
        self.state.lock().unwrap().catalog.clone()
    }

    /// How many `GET /products` calls arrived.
    pub fn product_calls(&self) -> usize {
        self.state.lock().unwrap().seen.len()
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviour = behaviour;
    }

    /// Lets held answers go (see [`Behaviour::Held`]).
    pub fn release(&self) {
        self.state.lock().unwrap().gate.send_replace(true);
    }

    pub fn set_key(&self, key: &str) {
        self.state.lock().unwrap().key = key.into();
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state.lock().unwrap().seen.clone()
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn products(State(state): State<Arc<Mutex<FakeState>>>, headers: HeaderMap) -> Response {
    let (behaviour, key, catalog, raw, mut gate) = {
        let mut state = state.lock().unwrap();
        state.seen.push(SeenRequest {
            path: "/octo/products".into(),
            authorization: header(&headers, "authorization"),
            octo_capabilities: header(&headers, "octo-capabilities"),
        });
        (state.behaviour.clone(), state.key.clone(), state.catalog.clone(), state.raw.clone(), state.gate.subscribe())
    };
    let catalog_response = move || match &raw {
        Some(text) => (StatusCode::OK, [("content-type", "application/json")], text.clone()).into_response(),
        None => axum::Json(catalog.clone()).into_response(),
    };
    let authorization = header(&headers, "authorization");
    let authorized = authorization.as_deref().is_some_and(|value| value == key || value.strip_prefix("Bearer ") == Some(key.as_str()));
    if !authorized {
        let status = if authorization.is_none() { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
        return (status, axum::Json(json!({"error": "FORBIDDEN", "errorMessage": "invalid API key"}))).into_response();
    }
    match behaviour {
        Behaviour::Normal => catalog_response(),
        Behaviour::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap();
            (status, axum::Json(json!({"error": "INTERNAL_SERVER_ERROR", "errorMessage": "supplier exploded"}))).into_response()
        }
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            catalog_response()
        }
        Behaviour::Held => {
            // An error means the fake is gone: answer anyway.
            gate.wait_for(|open| *open).await.ok();
            catalog_response()
        }
        Behaviour::Garbage => (StatusCode::OK, [("content-type", "application/json")], "<html>definitely not json").into_response(),
        Behaviour::NotArray => axum::Json(json!({"products": []})).into_response(),
        Behaviour::Oversized(bytes) => {
            let filler = "x".repeat(bytes);
            let body = json!([{ "id": "huge", "internalName": "huge", "options": [], "padding": filler }]);
            axum::Json(body).into_response()
        }
    }
}

/// An OCTO products array of `count` products, each with two options (`DEFAULT`, `option-1`) of two units.
pub fn sample_catalog(count: usize) -> Value {
    seyaha_local::octo_samples::generated_catalog(count, 2)
}
