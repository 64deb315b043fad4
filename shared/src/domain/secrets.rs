//! Secrets: the partner's OCTO credential and the webhook secret. Neither ever prints.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const AUTH_KEY_MAX_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAuthKey {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {AUTH_KEY_MAX_LEN} characters")]
    TooLong,
    #[error("must contain only printable ASCII characters")]
    NotPrintable,
}

/// The credential for the partner's OCTO API. It goes into an `Authorization` header, so it
/// must be printable ASCII; its `Debug` output is redacted.
#[derive(Clone)]
pub struct AuthKey(SecretString);

impl AuthKey {
    pub fn parse(s: &str) -> Result<Self, InvalidAuthKey> {
        if s.trim().is_empty() {
            return Err(InvalidAuthKey::Empty);
        }
        if s.len() > AUTH_KEY_MAX_LEN {
            return Err(InvalidAuthKey::TooLong);
        }
        if !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(InvalidAuthKey::NotPrintable);
        }
        Ok(Self(SecretString::from(s.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey([REDACTED])")
    }
}

/// The secret partners send as `x-webhook-secret`: 32 bytes from the OS CSPRNG as 64 lowercase
/// hex characters. It exists only in the create response; we keep its digest.
pub struct WebhookSecret(SecretString);

impl WebhookSecret {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random number generator is unavailable");
        Self(SecretString::from(hex::encode(bytes)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn digest(&self) -> WebhookSecretDigest {
        WebhookSecretDigest::of(self.expose())
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// SHA-256 of a webhook secret. A digest reveals nothing usable, but we still compare in
/// constant time so response timing says nothing about how close a guess was.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WebhookSecretDigest([u8; 32]);

impl WebhookSecretDigest {
    pub fn of(presented: &str) -> Self {
        Self(Sha256::digest(presented.as_bytes()).into())
    }

    pub fn matches(&self, presented: &WebhookSecretDigest) -> bool {
        #[cfg(test)]
        tests::COMPARISONS.with(|count| count.set(count.get() + 1));
        self.0.ct_eq(&presented.0).into()
    }

    /// What the secret of an integration that does not exist is compared with. No secret
    /// hashes to all zeros, and the result is refused anyway.
    const UNKNOWN: WebhookSecretDigest = WebhookSecretDigest([0; 32]);

    /// Whether `presented` is the webhook secret whose digest is `stored` (`None`: no such
    /// integration). Both cases hash the presented secret and make the same constant-time
    /// comparison, so the response time does not reveal which integration ids exist.
    pub fn verify(stored: Option<&WebhookSecretDigest>, presented: Option<&str>) -> bool {
        let presented = presented.unwrap_or_default();
        let matched = stored.unwrap_or(&Self::UNKNOWN).matches(&Self::of(presented));
        // Non-short-circuit `&`: every case does the same work.
        matched & stored.is_some() & !presented.is_empty()
    }
}

impl fmt::Debug for WebhookSecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecretDigest(..)")
    }
}

impl WebhookSecretDigest {
    /// The stored form: 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<Self, hex::FromHexError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.as_bytes(), &mut bytes)?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        /// Digest comparisons made on this thread (tests run one per thread).
        pub(super) static COMPARISONS: Cell<usize> = const { Cell::new(0) };
    }

    fn comparisons_during(check: impl FnOnce() -> bool) -> (bool, usize) {
        let before = COMPARISONS.with(Cell::get);
        let result = check();
        (result, COMPARISONS.with(Cell::get) - before)
    }

    #[test]
    fn an_unknown_integration_costs_the_same_comparison_as_a_wrong_secret() {
        let secret = WebhookSecret::generate();
        let stored = secret.digest();
        let wrong = WebhookSecret::generate();
        assert_eq!(comparisons_during(|| WebhookSecretDigest::verify(Some(&stored), Some(wrong.expose()))), (false, 1));
        assert_eq!(comparisons_during(|| WebhookSecretDigest::verify(None, Some(wrong.expose()))), (false, 1));
        assert_eq!(comparisons_during(|| WebhookSecretDigest::verify(None, None)), (false, 1));
        assert_eq!(comparisons_during(|| WebhookSecretDigest::verify(Some(&stored), None)), (false, 1));
        assert_eq!(comparisons_during(|| WebhookSecretDigest::verify(Some(&stored), Some(secret.expose()))), (true, 1));
        // Not even the digest of nothing matches the stand-in of an unknown integration.
        assert!(!WebhookSecretDigest::verify(None, Some("")));
        assert!(!WebhookSecretDigest::UNKNOWN.matches(&WebhookSecretDigest::of("")));
    }

    #[test]
    fn webhook_secrets_are_64_lowercase_hex_and_unique() {
        let a = WebhookSecret::generate();
        let b = WebhookSecret::generate();
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn digest_matches_only_the_same_secret() {
        let secret = WebhookSecret::generate();
        let stored = secret.digest();
        assert!(stored.matches(&WebhookSecretDigest::of(secret.expose())));
        assert!(!stored.matches(&WebhookSecretDigest::of("")));
        let mut near = secret.expose().to_owned();
        near.pop();
        near.push('x');
        assert!(!stored.matches(&WebhookSecretDigest::of(&near)));
    }

    #[test]
    fn digest_round_trips_and_never_shows_the_secret() {
        let secret = WebhookSecret::generate();
        let stored = secret.digest().to_hex();
        assert!(!stored.contains(secret.expose()));
        let back = WebhookSecretDigest::from_hex(&stored).unwrap();
        assert!(back.matches(&secret.digest()));
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }

    #[test]
    fn auth_key_rules_and_redaction() {
        assert_eq!(AuthKey::parse("").unwrap_err(), InvalidAuthKey::Empty);
        assert_eq!(AuthKey::parse("   ").unwrap_err(), InvalidAuthKey::Empty);
        assert_eq!(AuthKey::parse("a\r\nX-Evil: 1").unwrap_err(), InvalidAuthKey::NotPrintable);
        let key = AuthKey::parse("sk_live_abc123").unwrap();
        assert_eq!(key.expose(), "sk_live_abc123");
        assert!(!format!("{key:?}").contains("sk_live"));
    }
}
