//! Secrets: the partner's OCTO credential and the webhook secret. Neither ever prints.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Timestamp;

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
/// hex characters. It exists only in the create (or rotate) response; we keep its digest.
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

    /// What a digest that does not exist (no such integration, no previous secret) is compared
    /// with. No secret hashes to all zeros, and the result is refused anyway.
    const UNKNOWN: WebhookSecretDigest = WebhookSecretDigest([0; 32]);

    /// Whether `presented` is an integration's current webhook secret (digest `current`;
    /// `None`: no such integration), or its previous one while that is still accepted at `now`.
    ///
    /// Every case hashes the presented value once and makes the same two constant-time
    /// comparisons (a missing digest is replaced by a stand-in), combined without
    /// short-circuiting, so the response time does not tell an unknown id, a wrong secret and
    /// an expired previous secret apart.
    pub fn verify(
        current: Option<&WebhookSecretDigest>,
        previous: Option<&PreviousWebhookSecret>,
        presented: Option<&str>,
        now: Timestamp,
    ) -> bool {
        Self::verify_any(current, previous, None, presented, now)
    }

    /// [`verify`](Self::verify), also accepting the secret of Seyaha's push subscriptions on
    /// the partner's platform (`delivery`). Three comparisons every time.
    pub fn verify_any(
        current: Option<&WebhookSecretDigest>,
        previous: Option<&PreviousWebhookSecret>,
        delivery: Option<&WebhookSecretDigest>,
        presented: Option<&str>,
        now: Timestamp,
    ) -> bool {
        let presented = presented.unwrap_or_default();
        let digest = Self::of(presented);
        let is_current = current.unwrap_or(&Self::UNKNOWN).matches(&digest);
        let is_previous = previous
            .map_or(&Self::UNKNOWN, |previous| &previous.digest)
            .matches(&digest);
        let is_delivery = delivery.unwrap_or(&Self::UNKNOWN).matches(&digest);
        let previous_accepted = previous.is_some_and(|previous| previous.accepted_at(now));
        // Non-short-circuit `|` and `&`: every case does the same work.
        (is_current | (is_previous & previous_accepted) | (is_delivery & delivery.is_some()))
            & current.is_some()
            & !presented.is_empty()
    }
}

/// The webhook secret a rotation replaced, kept (as its digest) so the partner can move its
/// senders to the new one without losing calls: accepted until `valid_until`, then never again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousWebhookSecret {
    pub digest: WebhookSecretDigest,
    pub valid_until: Timestamp,
}

impl PreviousWebhookSecret {
    pub fn accepted_at(&self, now: Timestamp) -> bool {
        now < self.valid_until
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

    const NOW: i64 = 1_800_000_000_000;

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(NOW)
    }

    /// A previous secret accepted for another `for_millis` (negative: expired that long ago).
    fn previous(secret: &WebhookSecret, for_millis: i64) -> PreviousWebhookSecret {
        PreviousWebhookSecret {
            digest: secret.digest(),
            valid_until: now().plus_millis(for_millis),
        }
    }

    #[test]
    fn an_unknown_integration_costs_the_same_comparisons_as_a_wrong_secret() {
        let secret = WebhookSecret::generate();
        let stored = secret.digest();
        let wrong = WebhookSecret::generate();
        let verify =
            |current, presented| WebhookSecretDigest::verify(current, None, presented, now());
        assert_eq!(
            comparisons_during(|| verify(Some(&stored), Some(wrong.expose()))),
            (false, 3)
        );
        assert_eq!(
            comparisons_during(|| verify(None, Some(wrong.expose()))),
            (false, 3)
        );
        assert_eq!(comparisons_during(|| verify(None, None)), (false, 3));
        assert_eq!(
            comparisons_during(|| verify(Some(&stored), None)),
            (false, 3)
        );
        assert_eq!(
            comparisons_during(|| verify(Some(&stored), Some(secret.expose()))),
            (true, 3)
        );
        // Not even the digest of nothing matches the stand-in of an unknown integration.
        assert!(!verify(None, Some("")));
        assert!(!WebhookSecretDigest::UNKNOWN.matches(&WebhookSecretDigest::of("")));
    }

    #[test]
    fn the_previous_secret_works_until_it_expires_at_the_same_cost_as_any_other_answer() {
        let (old, current, wrong) = (
            WebhookSecret::generate(),
            WebhookSecret::generate(),
            WebhookSecret::generate(),
        );
        let stored = current.digest();
        let (live, expired) = (previous(&old, 1), previous(&old, 0));
        let verify = |previous: &PreviousWebhookSecret, presented: &WebhookSecret| {
            comparisons_during(|| {
                WebhookSecretDigest::verify(
                    Some(&stored),
                    Some(previous),
                    Some(presented.expose()),
                    now(),
                )
            })
        };
        assert_eq!(verify(&live, &current), (true, 3), "the current secret");
        assert_eq!(
            verify(&live, &old),
            (true, 3),
            "the previous secret inside the overlap"
        );
        assert_eq!(
            verify(&expired, &current),
            (true, 3),
            "the current secret after the overlap"
        );
        assert_eq!(
            verify(&expired, &old),
            (false, 3),
            "the previous secret at `valid_until`"
        );
        assert_eq!(verify(&live, &wrong), (false, 3), "a wrong secret");
        let expired_long_ago = previous(&old, -86_400_000);
        assert_eq!(verify(&expired_long_ago, &old), (false, 3));
        // An unknown integration with a stray previous digest (which the store never returns)
        // still refuses, and a missing secret never matches a previous one.
        assert!(!WebhookSecretDigest::verify(
            None,
            Some(&live),
            Some(old.expose()),
            now()
        ));
        assert!(!WebhookSecretDigest::verify(
            Some(&stored),
            Some(&live),
            None,
            now()
        ));
        assert!(!WebhookSecretDigest::verify(
            Some(&stored),
            Some(&previous(&old, 1)),
            Some(""),
            now()
        ));
    }

    #[test]
    fn the_delivery_secret_is_accepted_beside_the_webhook_secret_at_the_same_cost() {
        let (secret, delivery, wrong) = (
            WebhookSecret::generate(),
            WebhookSecret::generate(),
            WebhookSecret::generate(),
        );
        let (stored, pushed) = (secret.digest(), delivery.digest());
        let verify = |delivery_digest: Option<&WebhookSecretDigest>, presented: &WebhookSecret| {
            comparisons_during(|| {
                WebhookSecretDigest::verify_any(
                    Some(&stored),
                    None,
                    delivery_digest,
                    Some(presented.expose()),
                    now(),
                )
            })
        };
        assert_eq!(verify(Some(&pushed), &delivery), (true, 3));
        assert_eq!(verify(Some(&pushed), &secret), (true, 3));
        assert_eq!(verify(Some(&pushed), &wrong), (false, 3));
        assert_eq!(
            verify(None, &delivery),
            (false, 3),
            "no subscription, no delivery secret"
        );
        assert!(
            !WebhookSecretDigest::verify_any(
                None,
                None,
                Some(&pushed),
                Some(delivery.expose()),
                now()
            ),
            "unknown integration"
        );
    }

    #[test]
    fn a_previous_secret_is_accepted_strictly_before_valid_until() {
        let old = previous(&WebhookSecret::generate(), 0);
        assert!(old.accepted_at(now().plus_millis(-1)));
        assert!(!old.accepted_at(now()));
        assert!(!old.accepted_at(now().plus_millis(1)));
    }

    #[test]
    fn webhook_secrets_are_64_lowercase_hex_and_unique() {
        let a = WebhookSecret::generate();
        let b = WebhookSecret::generate();
        assert_eq!(a.expose().len(), 64);
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
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
        assert_eq!(
            AuthKey::parse("a\r\nX-Evil: 1").unwrap_err(),
            InvalidAuthKey::NotPrintable
        );
        let key = AuthKey::parse("sk_live_abc123").unwrap();
        assert_eq!(key.expose(), "sk_live_abc123");
        assert!(!format!("{key:?}").contains("sk_live"));
    }
}
