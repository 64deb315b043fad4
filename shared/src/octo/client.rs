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
    /// The whole request, body included (`GET /products`: until its answer's head, and the
    /// longest wait for the next piece of its body).
    pub request_timeout: Duration,
    pub max_response_bytes: usize,
    /// `GET /products` streamed: the whole call, body included.
    pub catalog_timeout: Duration,
    /// `GET /products` streamed: the most bytes read before the call is given up (a guard
    /// against an endless body; memory does not grow with it).
    pub max_catalog_bytes: u64,
}

impl Default for OctoClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            max_response_bytes: 50 * 1024 * 1024,
            catalog_timeout: Duration::from_secs(240),
            max_catalog_bytes: 2 * 1024 * 1024 * 1024,
        }
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
    RateLimited {
        call: &'static str,
        retry_after: Option<u64>,
    },
    /// HTTP 503 with a `Retry-After` (in seconds): down for maintenance, back then.
    #[error("{call} returned HTTP 503 (unavailable; Retry-After {retry_after} s)")]
    Unavailable {
        call: &'static str,
        retry_after: u64,
    },
    #[error("{call} returned more than {limit} bytes")]
    TooLarge { call: &'static str, limit: u64 },
    /// The whole-call timeout of a streamed body ran out while its bytes were still arriving.
    #[error(
        "{call} timed out after {seconds} s while its body was still arriving ({received} bytes read)"
    )]
    BodyTimeout {
        call: &'static str,
        seconds: u64,
        received: u64,
    },
    /// No byte of a streamed body arrived for this long.
    #[error("{call} stalled: no data for {seconds} s after {received} bytes")]
    Stalled {
        call: &'static str,
        seconds: u64,
        received: u64,
    },
    #[error("{call} failed: {reason}")]
    Transport { call: &'static str, reason: String },
}

impl OctoError {
    /// Whether the failure says the partner's endpoint is not working, and so counts toward
    /// DEGRADED and DOWN. A catalog over the size guard or still arriving when time ran out is
    /// an endpoint that works (and a large one), and a 429 or a 503 with `Retry-After` one
    /// asking to be called later: none of them may lead to DOWN's deactivation.
    pub fn counts_against_health(&self) -> bool {
        !matches!(
            self,
            Self::TooLarge { .. }
                | Self::BodyTimeout { .. }
                | Self::RateLimited { .. }
                | Self::Unavailable { .. }
        )
    }

    /// When the partner asked to be called again: a 429 (its `Retry-After`, or `default`
    /// without one) or a 503 with `Retry-After`.
    pub fn retry_after(&self, default: Duration) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => {
                Some(retry_after.map_or(default, Duration::from_secs))
            }
            Self::Unavailable { retry_after, .. } => Some(Duration::from_secs(*retry_after)),
            _ => None,
        }
    }
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
            .user_agent(concat!(
                "seyaha-partner-integrations/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .expect("the OCTO HTTP client configuration is valid");
        Self {
            http,
            policy,
            config,
        }
    }

    /// The HTTP client (pooled, guarded), for the calls of sibling modules.
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET {base_url}/products`, streamed: the 2xx answer's body to read piece by piece
    /// ([`ProductsBody::chunk`]). Its answer's head must come within `request_timeout`; the
    /// body may take `catalog_timeout` in all, with no gap longer than `request_timeout`, and
    /// at most `max_catalog_bytes`.
    pub async fn open_products(
        &self,
        base_url: &BaseUrl,
        credentials: &OctoCredentials,
    ) -> Result<ProductsBody, OctoError> {
        let call = GET_PRODUCTS;
        let request = self
            .http
            .get(base_url.endpoint("products"))
            .header("Octo-Capabilities", OCTO_CAPABILITIES)
            // Overrides the client's whole-call timeout for this one call.
            .timeout(self.config.catalog_timeout);
        let request = self.authorize(call, base_url, credentials, request)?;
        let started = Instant::now();
        let head = tokio::time::timeout(self.config.request_timeout, request.send()).await;
        let fail = |status: Option<u16>, error: OctoError| {
            crate::metrics::partner_call(call, status, started.elapsed());
            Err(error)
        };
        let response = match head {
            Err(_) => {
                return fail(
                    None,
                    OctoError::Timeout {
                        call,
                        seconds: self.config.request_timeout.as_secs().max(1),
                    },
                );
            }
            Ok(Err(error)) => return fail(None, self.classify(call, base_url, error)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            return fail(Some(status.as_u16()), status_error(call, &response));
        }
        let limit = self.config.max_catalog_bytes;
        if response.content_length().is_some_and(|len| len > limit) {
            return fail(Some(status.as_u16()), OctoError::TooLarge { call, limit });
        }
        Ok(ProductsBody {
            response,
            call,
            limit,
            received: 0,
            idle: self.config.request_timeout,
            total_seconds: self.config.catalog_timeout.as_secs().max(1),
            started,
            status: status.as_u16(),
            recorded: false,
        })
    }

    /// `GET {base_url}/products/{product_id}`: the product's raw body, or `None` on 404 (the
    /// partner no longer has it).
    pub async fn fetch_product_body(
        &self,
        base_url: &BaseUrl,
        credentials: &OctoCredentials,
        product_id: &str,
    ) -> Result<Option<Vec<u8>>, OctoError> {
        let request = self
            .http
            .get(base_url.endpoint_item("products", product_id))
            .header("Octo-Capabilities", OCTO_CAPABILITIES);
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
        self.call(POST_AVAILABILITY, base_url, credentials, request)
            .await
    }

    /// Sends one call with the guard, the credential and the size cap; the raw body of a 2xx.
    pub(super) async fn call(
        &self,
        call: &'static str,
        base_url: &BaseUrl,
        credentials: &OctoCredentials,
        request: reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, OctoError> {
        let request = self.authorize(call, base_url, credentials, request)?;
        let started = Instant::now();
        let (status, result) = self.exchange(call, base_url, request).await;
        crate::metrics::partner_call(call, status, started.elapsed());
        result
    }

    /// The guard's check of `base_url`, then the credential and `Accept` on the request.
    fn authorize(
        &self,
        call: &'static str,
        base_url: &BaseUrl,
        credentials: &OctoCredentials,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, OctoError> {
        self.policy
            .check_url(base_url)
            .map_err(OctoError::Refused)?;
        let mut authorization = HeaderValue::from_str(
            &credentials
                .auth_type
                .authorization_value(credentials.auth_key.expose()),
        )
        .map_err(|_| transport(call, "auth_key is not a valid header value"))?;
        authorization.set_sensitive(true);
        Ok(request
            .header(AUTHORIZATION, authorization)
            .header(ACCEPT, "application/json"))
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
            return (answered, Err(status_error(call, &response)));
        }
        let limit = self.config.max_response_bytes;
        let too_large = OctoError::TooLarge {
            call,
            limit: limit as u64,
        };
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return (answered, Err(too_large));
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > limit => {
                    return (answered, Err(too_large));
                }
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
            OctoError::Timeout {
                call,
                seconds: self.config.request_timeout.as_secs().max(1),
            }
        } else if error.is_connect() {
            OctoError::Connect {
                host: base_url.host().to_string(),
            }
        } else if error.is_redirect() {
            transport(call, "too many redirects")
        } else if error.is_decode() || error.is_body() {
            transport(call, "the response body could not be read")
        } else {
            transport(call, "the request could not be completed")
        }
    }
}

/// What a non-2xx answer means.
fn status_error(call: &'static str, response: &reqwest::Response) -> OctoError {
    let status = response.status();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => OctoError::AuthRefused {
            call,
            status: status.as_u16(),
        },
        StatusCode::TOO_MANY_REQUESTS => OctoError::RateLimited {
            call,
            retry_after: retry_after(response.headers()),
        },
        StatusCode::SERVICE_UNAVAILABLE => match retry_after(response.headers()) {
            Some(retry_after) => OctoError::Unavailable { call, retry_after },
            None => OctoError::Status {
                call,
                status: status.as_u16(),
            },
        },
        _ => OctoError::Status {
            call,
            status: status.as_u16(),
        },
    }
}

/// The body of a streamed `GET /products` answer ([`OctoClient::open_products`]). Dropping it
/// closes the connection.
pub struct ProductsBody {
    response: reqwest::Response,
    call: &'static str,
    limit: u64,
    received: u64,
    /// The longest wait for the next piece.
    idle: Duration,
    total_seconds: u64,
    started: Instant,
    status: u16,
    recorded: bool,
}

impl ProductsBody {
    /// The next piece of the body, `None` at its end. Fails when the body passes the guard,
    /// stalls longer than the idle limit, or is still arriving when the call's time is up.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, OctoError> {
        let (call, received) = (self.call, self.received);
        let next = match tokio::time::timeout(self.idle, self.response.chunk()).await {
            Err(_) => Err(OctoError::Stalled {
                call,
                seconds: self.idle.as_secs().max(1),
                received,
            }),
            Ok(Err(error)) if error.is_timeout() => Err(OctoError::BodyTimeout {
                call,
                seconds: self.total_seconds,
                received,
            }),
            Ok(Err(_)) => Err(transport(call, "the response body could not be read")),
            Ok(Ok(None)) => Ok(None),
            Ok(Ok(Some(chunk))) => {
                self.received += chunk.len() as u64;
                if self.received > self.limit {
                    Err(OctoError::TooLarge {
                        call,
                        limit: self.limit,
                    })
                } else {
                    Ok(Some(chunk))
                }
            }
        };
        if !matches!(next, Ok(Some(_))) {
            self.record();
        }
        next
    }

    /// Bytes read so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    fn record(&mut self) {
        if !self.recorded {
            self.recorded = true;
            crate::metrics::partner_call(self.call, Some(self.status), self.started.elapsed());
        }
    }
}

impl Drop for ProductsBody {
    /// A body left unread (a hand-off, a failed parse) still counts as one call.
    fn drop(&mut self) {
        self.record();
    }
}

pub(super) fn transport(call: &'static str, reason: &str) -> OctoError {
    OctoError::Transport {
        call,
        reason: reason.to_owned(),
    }
}

/// `Retry-After` in seconds (the delta form; an HTTP date is read as absent).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
