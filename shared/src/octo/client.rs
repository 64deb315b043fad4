//! HTTP client for a partner's OCTO API, with the SSRF guard, timeouts and a size cap on
//! every call. Built once per process and shared: it pools connections.

use std::error::Error as _;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use reqwest::{StatusCode, redirect};

use crate::domain::{AuthKey, AuthType, BaseUrl};
use crate::net::{AddressRefused, EndpointPolicy, EndpointRefused};

/// The capabilities we ask for: content gives titles, pricing gives `pricingFrom`.
pub const OCTO_CAPABILITIES: &str = "octo/content,octo/pricing";
const MAX_REDIRECTS: usize = 3;

#[derive(Debug, Clone, Copy)]
pub struct OctoClientConfig {
    pub connect_timeout: Duration,
    /// The whole request, body included.
    pub request_timeout: Duration,
    pub max_response_bytes: usize,
}

impl Default for OctoClientConfig {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(5), request_timeout: Duration::from_secs(20), max_response_bytes: 50 * 1024 * 1024 }
    }
}

/// How to authenticate to one partner.
#[derive(Debug, Clone)]
pub struct OctoCredentials {
    pub auth_type: AuthType,
    pub auth_key: AuthKey,
}

/// Which partner call failed, for the messages.
pub const GET_PRODUCTS: &str = "GET /products";
pub const GET_PRODUCT: &str = "GET /products/{id}";
pub const POST_AVAILABILITY: &str = "POST /availability";

/// Why a call to the partner failed. Messages name the call and the cause, and never include
/// the credential or the partner's response body.
#[derive(Debug, thiserror::Error)]
pub enum OctoError {
    #[error("refused to call base_url: it {0}")]
    Refused(EndpointRefused),
    #[error("could not connect to {host}")]
    Connect { host: String },
    #[error("{call} timed out after {seconds} s")]
    Timeout { call: &'static str, seconds: u64 },
    #[error("authentication refused: {call} returned HTTP {status} (check auth_type and auth_key)")]
    AuthRefused { call: &'static str, status: u16 },
    #[error("{call} returned HTTP {status}")]
    Status { call: &'static str, status: u16 },
    /// HTTP 429; `retry_after` is the partner's `Retry-After` in seconds, when it sent one.
    #[error("{call} was rate limited (HTTP 429)")]
    RateLimited { call: &'static str, retry_after: Option<u64> },
    #[error("{call} returned more than {limit} bytes")]
    TooLarge { call: &'static str, limit: usize },
    #[error("{call} failed: {reason}")]
    Transport { call: &'static str, reason: String },
}

#[derive(Clone)]
pub struct OctoClient {
    http: reqwest::Client,
    policy: EndpointPolicy,
    config: OctoClientConfig,
}

impl OctoClient {
    pub fn new(policy: EndpointPolicy, config: OctoClientConfig) -> Self {
        let redirect_policy = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error("too many redirects");
            }
            match BaseUrl::parse(attempt.url().as_str()) {
                Ok(target) if policy.check_url(&target).is_ok() => attempt.follow(),
                _ => attempt.error(AddressRefused),
            }
        });
        let http = reqwest::Client::builder()
            .dns_resolver(std::sync::Arc::new(policy.resolver()))
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(redirect_policy)
            // A proxy from the environment would resolve names itself, around our guard.
            .no_proxy()
            .user_agent(concat!("seyaha-partner-integrations/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the OCTO HTTP client configuration is valid");
        Self { http, policy, config }
    }

    /// The HTTP client (pooled, guarded), for the calls of sibling modules.
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET {base_url}/products`: the raw body of a 2xx answer, at most `max_response_bytes`.
    pub async fn fetch_products_body(&self, base_url: &BaseUrl, credentials: &OctoCredentials) -> Result<Vec<u8>, OctoError> {
        let request = self.http.get(base_url.endpoint("products")).header("Octo-Capabilities", OCTO_CAPABILITIES);
        self.call(GET_PRODUCTS, base_url, credentials, request).await
    }

    /// `GET {base_url}/products/{product_id}`: the product's raw body, or `None` on 404 (the
    /// partner no longer has it).
    pub async fn fetch_product_body(
        &self,
        base_url: &BaseUrl,
        credentials: &OctoCredentials,
        product_id: &str,
    ) -> Result<Option<Vec<u8>>, OctoError> {
        let request = self.http.get(base_url.endpoint_item("products", product_id)).header("Octo-Capabilities", OCTO_CAPABILITIES);
        match self.call(GET_PRODUCT, base_url, credentials, request).await {
            Ok(body) => Ok(Some(body)),
            Err(OctoError::Status { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `POST {base_url}/availability` with `body` (`productId`, `optionId`, `localDateStart`,
    /// `localDateEnd`): the raw body of the answer (a JSON array of availabilities).
    pub async fn fetch_availability_body(
        &self,
        base_url: &BaseUrl,
        credentials: &OctoCredentials,
        body: &serde_json::Value,
    ) -> Result<Vec<u8>, OctoError> {
        let request = self
            .http
            .post(base_url.endpoint("availability"))
            .header("Octo-Capabilities", OCTO_CAPABILITIES)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        self.call(POST_AVAILABILITY, base_url, credentials, request).await
    }

    /// Sends one call with the guard, the credential and the size cap; the raw body of a 2xx.
    pub(super) async fn call(
        &self,
        call: &'static str,
        base_url: &BaseUrl,
        credentials: &OctoCredentials,
        request: reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, OctoError> {
        self.policy.check_url(base_url).map_err(OctoError::Refused)?;
        let mut authorization = HeaderValue::from_str(&credentials.auth_type.authorization_value(credentials.auth_key.expose()))
            .map_err(|_| transport(call, "auth_key is not a valid header value"))?;
        authorization.set_sensitive(true);
        let request = request.header(AUTHORIZATION, authorization).header(ACCEPT, "application/json");
        let started = Instant::now();
        let (status, result) = self.exchange(call, base_url, request).await;
        crate::metrics::partner_call(call, status, started.elapsed());
        result
    }

    /// Sends the request and reads the body: the status that came back (`None` when there was
    /// no answer, or its body could not be read), and the outcome.
    async fn exchange(
        &self,
        call: &'static str,
        base_url: &BaseUrl,
        request: reqwest::RequestBuilder,
    ) -> (Option<u16>, Result<Vec<u8>, OctoError>) {
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return (None, Err(self.classify(call, base_url, error))),
        };
        let status = response.status();
        let answered = Some(status.as_u16());
        if !status.is_success() {
            return (
                answered,
                Err(match status {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => OctoError::AuthRefused { call, status: status.as_u16() },
                    StatusCode::TOO_MANY_REQUESTS => OctoError::RateLimited { call, retry_after: retry_after(response.headers()) },
                    _ => OctoError::Status { call, status: status.as_u16() },
                }),
            );
        }
        let limit = self.config.max_response_bytes;
        if response.content_length().is_some_and(|len| len > limit as u64) {
            return (answered, Err(OctoError::TooLarge { call, limit }));
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > limit => return (answered, Err(OctoError::TooLarge { call, limit })),
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => return (answered, Ok(body)),
                Err(error) => return (None, Err(self.classify(call, base_url, error))),
            }
        }
    }

    fn classify(&self, call: &'static str, base_url: &BaseUrl, error: reqwest::Error) -> OctoError {
        let mut source = error.source();
        while let Some(cause) = source {
            if cause.downcast_ref::<AddressRefused>().is_some() {
                return OctoError::Refused(EndpointRefused::RefusedAddress);
            }
            source = cause.source();
        }
        if error.is_timeout() {
            OctoError::Timeout { call, seconds: self.config.request_timeout.as_secs().max(1) }
        } else if error.is_connect() {
            OctoError::Connect { host: base_url.host().to_string() }
        } else if error.is_redirect() {
            transport(call, "too many redirects")
        } else if error.is_decode() || error.is_body() {
            transport(call, "the response body could not be read")
        } else {
            transport(call, "the request could not be completed")
        }
    }
}

pub(super) fn transport(call: &'static str, reason: &str) -> OctoError {
    OctoError::Transport { call, reason: reason.to_owned() }
}

/// `Retry-After` in seconds (the delta form; an HTTP date is read as absent).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}
