//! The root of a partner's OCTO API (`base_url`).

use std::fmt;

use serde_with::{DeserializeFromStr, SerializeDisplay};
use url::{Host, Url};

const MAX_LEN: usize = 2048;

/// Why a string is not an acceptable `base_url`. The text completes "base_url: ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBaseUrl {
    #[error("must be an absolute URL")]
    NotAbsolute,
    #[error("must use http or https")]
    Scheme,
    #[error("must have a host")]
    NoHost,
    #[error("must not contain credentials")]
    Credentials,
    #[error("must not contain a fragment")]
    Fragment,
    #[error("must not contain a query string")]
    Query,
    #[error("must be at most {MAX_LEN} characters")]
    TooLong,
}

/// An absolute http(s) URL with a host, without credentials, query or fragment, and without a
/// trailing slash, so `{base_url}/products` is always well formed.
#[derive(Clone, PartialEq, Eq, SerializeDisplay, DeserializeFromStr)]
pub struct BaseUrl {
    url: Url,
    text: String,
}

impl BaseUrl {
    pub fn parse(input: &str) -> Result<Self, InvalidBaseUrl> {
        let input = input.trim();
        if input.len() > MAX_LEN {
            return Err(InvalidBaseUrl::TooLong);
        }
        let url = Url::parse(input).map_err(|_| InvalidBaseUrl::NotAbsolute)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(InvalidBaseUrl::Scheme);
        }
        match url.host() {
            None => return Err(InvalidBaseUrl::NoHost),
            Some(Host::Domain("")) => return Err(InvalidBaseUrl::NoHost),
            Some(_) => {}
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InvalidBaseUrl::Credentials);
        }
        if url.fragment().is_some() {
            return Err(InvalidBaseUrl::Fragment);
        }
        if url.query().is_some() {
            return Err(InvalidBaseUrl::Query);
        }
        let text = url.as_str().trim_end_matches('/').to_owned();
        // Re-read the stripped text, so equal texts always mean equal URLs.
        let url = Url::parse(&text).map_err(|_| InvalidBaseUrl::NotAbsolute)?;
        Ok(Self { url, text })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    pub fn host(&self) -> Host<&str> {
        self.url.host().expect("a BaseUrl always has a host")
    }

    /// Port to connect to, with the scheme's default filled in.
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(443)
    }

    /// `{base_url}/{path}` for an OCTO endpoint such as `products`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/{}", self.text, path.trim_start_matches('/'))
    }

    /// `{base_url}/{path}/{id}` for one item of an endpoint (`products/{id}`), `id` encoded as
    /// one path segment: an id from outside may hold `/`, `?` or `#`.
    pub fn endpoint_item(&self, path: &str, id: &str) -> String {
        let mut url =
            Url::parse(&self.endpoint(path)).expect("a base URL with a path appended is a URL");
        url.path_segments_mut()
            .expect("an http(s) URL has a path")
            .push(id);
        url.into()
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.text)
    }
}

impl std::str::FromStr for BaseUrl {
    type Err = InvalidBaseUrl;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_id_is_one_encoded_path_segment() {
        let base = BaseUrl::parse("https://octo.example.com/api/v1").unwrap();
        assert_eq!(
            base.endpoint_item("products", "p1"),
            "https://octo.example.com/api/v1/products/p1"
        );
        assert_eq!(
            base.endpoint_item("notifications/subscriptions", "a/b?c#d e"),
            "https://octo.example.com/api/v1/notifications/subscriptions/a%2Fb%3Fc%23d%20e"
        );
    }

    #[test]
    fn strips_trailing_slashes() {
        assert_eq!(
            BaseUrl::parse("https://octo.example.com/")
                .unwrap()
                .as_str(),
            "https://octo.example.com"
        );
        assert_eq!(
            BaseUrl::parse("https://octo.example.com/api/octo//")
                .unwrap()
                .as_str(),
            "https://octo.example.com/api/octo"
        );
        assert_eq!(
            BaseUrl::parse("https://octo.example.com")
                .unwrap()
                .endpoint("products"),
            "https://octo.example.com/products"
        );
    }

    #[test]
    fn trailing_slashes_do_not_make_a_different_url() {
        assert_eq!(
            BaseUrl::parse("https://a.example//").unwrap(),
            BaseUrl::parse("https://a.example").unwrap()
        );
    }

    #[test]
    fn keeps_explicit_ports_and_http() {
        let url = BaseUrl::parse("http://127.0.0.1:8080/octo").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/octo");
        assert_eq!(url.port(), 8080);
        assert!(!url.is_https());
    }

    #[test]
    fn refuses_what_cannot_be_a_base_url() {
        let cases = [
            ("octo.example.com", InvalidBaseUrl::NotAbsolute),
            ("/products", InvalidBaseUrl::NotAbsolute),
            ("ftp://octo.example.com", InvalidBaseUrl::Scheme),
            ("javascript:alert(1)", InvalidBaseUrl::Scheme),
            (
                "https://user:pw@octo.example.com",
                InvalidBaseUrl::Credentials,
            ),
            ("https://user@octo.example.com", InvalidBaseUrl::Credentials),
            ("https://octo.example.com/#x", InvalidBaseUrl::Fragment),
            ("https://octo.example.com/?a=1", InvalidBaseUrl::Query),
        ];
        for (input, expected) in cases {
            assert_eq!(BaseUrl::parse(input), Err(expected), "{input}");
        }
        assert_eq!(
            BaseUrl::parse(&format!("https://e.com/{}", "a".repeat(3000))),
            Err(InvalidBaseUrl::TooLong)
        );
    }
}
