//! Who is calling: JWTs for partners and admins, HS256 with a shared secret (the default) or
//! RS256/ES256 against a configured public key (then the API holds no key that can sign).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{PartnerId, Principal, Role};
pub use crate::domain::{PublicKey, TokenRules, TokenScope};
use crate::ports::{SecretStoreError, SigningKeySource};

/// Seconds of clock skew tolerated between the issuer and us: on `exp`, `nbf` and `iat`.
const CLOCK_LEEWAY_SECONDS: u64 = 60;

/// Why a token was not accepted. `WrongRole` is a valid token (403); the rest are 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("token has expired")]
    Expired,
    #[error("token is invalid")]
    Invalid,
    #[error("token is not signed with the algorithm this API accepts")]
    WrongAlgorithm,
    #[error("token is not valid yet (nbf is in the future)")]
    NotYetValid,
    #[error("token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("token lifetime is longer than the {max_seconds} s this API accepts (exp - iat)")]
    LifetimeTooLong { max_seconds: u64 },
    #[error("token header names critical extensions (crit), and this API supports none")]
    CriticalExtension,
    #[error("token has no valid partner id")]
    NoPartnerId,
    #[error("token role is not allowed here")]
    WrongRole,
}

#[derive(Deserialize)]
struct Claims {
    role: Option<Value>,
    sub: Option<Value>,
    id: Option<Value>,
    #[serde(rename = "_id")]
    underscore_id: Option<Value>,
    /// Checked for a number by the validation (it is required).
    exp: Option<Value>,
    iat: Option<Value>,
}

/// What tokens are verified with.
pub enum VerifyingKey {
    /// HS256 with the secret the issuer signs with (seyaha-local's default; an option on AWS).
    SharedSecret(SecretString),
    /// RS256 or ES256 with the issuer's public key: nothing here can sign a token.
    Public(PublicKey),
}

/// Verifies tokens with one key and one algorithm: HS256 with a shared secret, or the public
/// key's. Every other algorithm, `none` included, is refused, and `exp` is required; so are
/// `iss` and `aud` when the scope names them. `nbf` and `iat` may not lie in the future (past
/// the leeway), a `crit` header is refused (we understand no extension), and with a maximum
/// lifetime `exp` may lie no further than that after `iat` (or now, without `iat`).
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    max_lifetime: Option<Duration>,
}

impl JwtVerifier {
    pub fn new(secret: &SecretString) -> Self {
        Self::scoped(secret, &TokenScope::default())
    }

    pub fn scoped(secret: &SecretString, scope: &TokenScope) -> Self {
        let rules = TokenRules {
            scope: scope.clone(),
            max_lifetime: None,
        };
        Self::with_key(VerifyingKey::SharedSecret(secret.clone()), &rules)
    }

    pub fn with_key(key: VerifyingKey, rules: &TokenRules) -> Self {
        let (algorithm, key) = match key {
            VerifyingKey::SharedSecret(secret) => (
                Algorithm::HS256,
                DecodingKey::from_secret(secret.expose_secret().as_bytes()),
            ),
            VerifyingKey::Public(public) => (public.algorithm(), public.decoding_key().clone()),
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = CLOCK_LEEWAY_SECONDS;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &rules.scope.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &rules.scope.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Self {
            key,
            validation,
            max_lifetime: rules.max_lifetime.filter(|max| !max.is_zero()),
        }
    }

    /// Verifies an `Authorization` header value (`Bearer <jwt>`).
    pub fn verify_header(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let header = header
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or(AuthError::Missing)?;
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(AuthError::Invalid),
        };
        self.verify(token)
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let data =
            decode::<Claims>(token, &self.key, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidAlgorithm => AuthError::WrongAlgorithm,
                _ => AuthError::Invalid,
            })?;
        // RFC 7515 4.1.11: an extension named critical must be understood; we understand none.
        if data.header.crit.is_some() {
            return Err(AuthError::CriticalExtension);
        }
        let claims = data.claims;
        // The issuer's clock, like exp's check: the wall clock, not the service's Clock port.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        self.check_times(claims.exp.as_ref(), claims.iat.as_ref(), now)?;
        match claims
            .role
            .as_ref()
            .and_then(Value::as_str)
            .and_then(|role| role.parse::<Role>().ok())
        {
            Some(Role::Admin) => Ok(Principal::Admin),
            Some(Role::Partner) => {
                // The partner id is `sub`, falling back to `id`, then `_id`: the first one present.
                let id = [claims.sub, claims.id, claims.underscore_id]
                    .into_iter()
                    .flatten()
                    .find(|v| !v.is_null());
                let id = id
                    .as_ref()
                    .and_then(Value::as_str)
                    .ok_or(AuthError::NoPartnerId)?;
                PartnerId::parse(id)
                    .map(Principal::Partner)
                    .map_err(|_| AuthError::NoPartnerId)
            }
            None => Err(AuthError::WrongRole),
        }
    }

    /// `iat` not in the future (past the leeway), and the lifetime within the maximum.
    fn check_times(
        &self,
        exp: Option<&Value>,
        iat: Option<&Value>,
        now: f64,
    ) -> Result<(), AuthError> {
        let leeway = CLOCK_LEEWAY_SECONDS as f64;
        let exp = exp.and_then(Value::as_f64).ok_or(AuthError::Invalid)?;
        let iat = match iat {
            None => None,
            Some(value) => Some(
                value
                    .as_f64()
                    .filter(|iat| iat.is_finite())
                    .ok_or(AuthError::Invalid)?,
            ),
        };
        if iat.is_some_and(|iat| iat > now + leeway) {
            return Err(AuthError::IssuedInFuture);
        }
        if let Some(max) = self.max_lifetime {
            // exp - iat is the issuer's own arithmetic; exp - now also carries the clocks' skew.
            let (lifetime, slack) = match iat {
                Some(iat) => (exp - iat, 0.0),
                None => (exp - now, leeway),
            };
            if lifetime > max.as_secs_f64() + slack {
                return Err(AuthError::LifetimeTooLong {
                    max_seconds: max.as_secs(),
                });
            }
        }
        Ok(())
    }
}

/// The verifier. With a public key it is ready at once; with the shared secret it is built from
/// the signing key port the first time a request needs it (on Lambda the secret lives in Secrets
/// Manager: reading it at init would add a round trip to every cold start, even for requests
/// that carry no JWT). A failed read is retried by the next request.
pub struct JwtSource {
    verifier: tokio::sync::OnceCell<JwtVerifier>,
    /// `None` with a public key: the secret is then never read.
    key: Option<Arc<dyn SigningKeySource>>,
    rules: TokenRules,
}

impl JwtSource {
    /// HS256 with the secret of the signing key port.
    pub fn new(key: Arc<dyn SigningKeySource>, rules: TokenRules) -> Self {
        Self {
            verifier: tokio::sync::OnceCell::new(),
            key: Some(key),
            rules,
        }
    }

    /// The public key's algorithm only; no secret is read.
    pub fn public(key: PublicKey, rules: TokenRules) -> Self {
        let verifier = JwtVerifier::with_key(VerifyingKey::Public(key), &rules);
        Self {
            verifier: tokio::sync::OnceCell::new_with(Some(verifier)),
            key: None,
            rules,
        }
    }

    pub async fn verifier(&self) -> Result<&JwtVerifier, SecretStoreError> {
        self.verifier
            .get_or_try_init(|| async {
                let key = self.key.as_ref().ok_or_else(|| {
                    SecretStoreError::new("no JWT verification key is configured")
                })?;
                let secret = key.jwt_secret().await?;
                Ok(JwtVerifier::with_key(
                    VerifyingKey::SharedSecret(secret),
                    &self.rules,
                ))
            })
            .await
    }
}

#[derive(Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    role: Role,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Signs a token, as the Seyaha portal would; used by `seyaha-local token` and by tests.
pub fn mint_token(secret: &SecretString, role: Role, subject: &str, valid_for: Duration) -> String {
    mint_scoped_token(secret, role, subject, valid_for, &TokenScope::default())
}

/// Signs a token carrying the scope's issuer and audience (what a verifier with that scope wants).
pub fn mint_scoped_token(
    secret: &SecretString,
    role: Role,
    subject: &str,
    valid_for: Duration,
    scope: &TokenScope,
) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let claims = MintedClaims {
        sub: subject,
        role,
        iat: now,
        exp: now + valid_for.as_secs(),
        iss: scope.issuer.as_deref(),
        aud: scope.audience.as_deref(),
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
    .expect("HS256 signing with a byte secret cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTNER: &str = "64a1b2c3d4e5f6a7b8c9d0e2";

    fn secret() -> SecretString {
        SecretString::from("test-secret-with-enough-entropy-0123456789")
    }

    fn sign(claims: serde_json::Value, alg: Algorithm) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(b"test-secret-with-enough-entropy-0123456789"),
        )
        .unwrap()
    }

    fn in_an_hour() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600
    }

    #[test]
    fn minted_tokens_verify() {
        let verifier = JwtVerifier::new(&secret());
        let token = mint_token(&secret(), Role::Partner, PARTNER, Duration::from_secs(60));
        assert_eq!(
            verifier.verify_header(Some(&format!("Bearer {token}"))),
            Ok(Principal::Partner(PartnerId::parse(PARTNER).unwrap()))
        );
        let admin = mint_token(&secret(), Role::Admin, "ops", Duration::from_secs(60));
        assert_eq!(verifier.verify(&admin), Ok(Principal::Admin));
    }

    #[test]
    fn partner_id_falls_back_from_sub_to_id_to_underscore_id() {
        let verifier = JwtVerifier::new(&secret());
        let exp = in_an_hour();
        let by_id = sign(
            serde_json::json!({"role": "partner", "id": PARTNER, "exp": exp}),
            Algorithm::HS256,
        );
        let by_underscore = sign(
            serde_json::json!({"role": "partner", "_id": PARTNER, "exp": exp}),
            Algorithm::HS256,
        );
        let none = sign(
            serde_json::json!({"role": "partner", "exp": exp}),
            Algorithm::HS256,
        );
        let bad = sign(
            serde_json::json!({"role": "partner", "sub": "not-an-id", "exp": exp}),
            Algorithm::HS256,
        );
        assert!(matches!(verifier.verify(&by_id), Ok(Principal::Partner(_))));
        assert!(matches!(
            verifier.verify(&by_underscore),
            Ok(Principal::Partner(_))
        ));
        assert_eq!(verifier.verify(&none), Err(AuthError::NoPartnerId));
        assert_eq!(verifier.verify(&bad), Err(AuthError::NoPartnerId));
    }

    #[test]
    fn a_scope_requires_its_issuer_and_audience() {
        let scope = TokenScope {
            issuer: Some("https://portal.seyaha.example".into()),
            audience: Some("partner-integrations".into()),
        };
        let verifier = JwtVerifier::scoped(&secret(), &scope);
        let exp = in_an_hour();
        let claims = |extra: serde_json::Value| {
            let mut claims = serde_json::json!({"role": "admin", "exp": exp});
            claims
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            sign(claims, Algorithm::HS256)
        };
        let (iss, aud) = ("https://portal.seyaha.example", "partner-integrations");
        assert_eq!(
            verifier.verify(&claims(serde_json::json!({"iss": iss, "aud": aud}))),
            Ok(Principal::Admin)
        );
        assert_eq!(
            verifier.verify(&claims(
                serde_json::json!({"iss": iss, "aud": [aud, "other"]})
            )),
            Ok(Principal::Admin)
        );
        for refused in [
            serde_json::json!({}),
            serde_json::json!({"iss": iss}),
            serde_json::json!({"aud": aud}),
            serde_json::json!({"iss": "https://elsewhere.example", "aud": aud}),
            serde_json::json!({"iss": iss, "aud": "another-service"}),
        ] {
            assert_eq!(
                verifier.verify(&claims(refused.clone())),
                Err(AuthError::Invalid),
                "{refused}"
            );
        }
        // Minted with the scope, a token verifies; without a scope, iss and aud are not checked.
        let minted = mint_scoped_token(
            &secret(),
            Role::Admin,
            "ops",
            Duration::from_secs(60),
            &scope,
        );
        assert_eq!(verifier.verify(&minted), Ok(Principal::Admin));
        assert_eq!(
            JwtVerifier::new(&secret()).verify(&claims(
                serde_json::json!({"iss": "anyone", "aud": "anything"})
            )),
            Ok(Principal::Admin)
        );
    }

    #[test]
    fn refuses_other_algorithms_missing_exp_expiry_and_unknown_roles() {
        let verifier = JwtVerifier::new(&secret());
        let exp = in_an_hour();
        let hs384 = sign(
            serde_json::json!({"role": "admin", "exp": exp}),
            Algorithm::HS384,
        );
        assert_eq!(verifier.verify(&hs384), Err(AuthError::WrongAlgorithm));
        let no_exp = sign(serde_json::json!({"role": "admin"}), Algorithm::HS256);
        assert_eq!(verifier.verify(&no_exp), Err(AuthError::Invalid));
        let expired = sign(
            serde_json::json!({"role": "admin", "exp": exp - 3600 - 120}),
            Algorithm::HS256,
        );
        assert_eq!(verifier.verify(&expired), Err(AuthError::Expired));
        let within_leeway = sign(
            serde_json::json!({"role": "admin", "exp": exp - 3600 - 30}),
            Algorithm::HS256,
        );
        assert_eq!(verifier.verify(&within_leeway), Ok(Principal::Admin));
        let user = sign(
            serde_json::json!({"role": "user", "sub": PARTNER, "exp": exp}),
            Algorithm::HS256,
        );
        assert_eq!(verifier.verify(&user), Err(AuthError::WrongRole));
        assert_eq!(verifier.verify_header(None), Err(AuthError::Missing));
        assert_eq!(
            verifier.verify_header(Some("Basic abc")),
            Err(AuthError::Invalid)
        );
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/../tests/fixtures/jwt/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn sign_with(claims: &serde_json::Value, header: Header, key: &EncodingKey) -> String {
        encode(&header, claims, key).unwrap()
    }

    #[test]
    fn refuses_nbf_ahead_iat_in_the_future_and_crit_headers() {
        let verifier = JwtVerifier::new(&secret());
        let exp = in_an_hour();
        let nbf_ahead = sign(
            serde_json::json!({"role": "admin", "exp": exp, "nbf": now() + 365 * 24 * 3600}),
            Algorithm::HS256,
        );
        assert_eq!(verifier.verify(&nbf_ahead), Err(AuthError::NotYetValid));
        let nbf_within_leeway = sign(
            serde_json::json!({"role": "admin", "exp": exp, "nbf": now() + 30}),
            Algorithm::HS256,
        );
        assert_eq!(verifier.verify(&nbf_within_leeway), Ok(Principal::Admin));
        let iat_2100 = sign(
            serde_json::json!({"role": "admin", "exp": exp, "iat": 4_102_444_800u64}),
            Algorithm::HS256,
        );
        assert_eq!(verifier.verify(&iat_2100), Err(AuthError::IssuedInFuture));
        let iat_within_leeway = sign(
            serde_json::json!({"role": "admin", "exp": exp, "iat": now() + 30}),
            Algorithm::HS256,
        );
        assert_eq!(verifier.verify(&iat_within_leeway), Ok(Principal::Admin));
        let iat_not_a_number = sign(
            serde_json::json!({"role": "admin", "exp": exp, "iat": "yesterday"}),
            Algorithm::HS256,
        );
        assert_eq!(verifier.verify(&iat_not_a_number), Err(AuthError::Invalid));
        let key = EncodingKey::from_secret(b"test-secret-with-enough-entropy-0123456789");
        for crit in [vec!["x".to_owned()], vec![]] {
            let header = Header {
                crit: Some(crit.clone()),
                ..Header::new(Algorithm::HS256)
            };
            let token = sign_with(
                &serde_json::json!({"role": "admin", "exp": exp, "x": 1}),
                header,
                &key,
            );
            assert_eq!(
                verifier.verify(&token),
                Err(AuthError::CriticalExtension),
                "{crit:?}"
            );
        }
        // The messages say which check failed, and nothing of the key.
        assert_eq!(
            AuthError::NotYetValid.to_string(),
            "token is not valid yet (nbf is in the future)"
        );
        assert_eq!(
            AuthError::IssuedInFuture.to_string(),
            "token was issued in the future (iat)"
        );
    }

    #[test]
    fn a_maximum_lifetime_refuses_longer_tokens() {
        let day = Duration::from_secs(24 * 3600);
        let rules = TokenRules {
            scope: TokenScope::default(),
            max_lifetime: Some(day),
        };
        let verifier = JwtVerifier::with_key(VerifyingKey::SharedSecret(secret()), &rules);
        let now = now();
        let exp_2200 = sign(
            serde_json::json!({"role": "admin", "exp": 7_258_118_400u64}),
            Algorithm::HS256,
        );
        assert_eq!(
            verifier.verify(&exp_2200),
            Err(AuthError::LifetimeTooLong {
                max_seconds: 86_400
            })
        );
        let long = sign(
            serde_json::json!({"role": "admin", "iat": now, "exp": now + 86_401}),
            Algorithm::HS256,
        );
        assert_eq!(
            verifier.verify(&long),
            Err(AuthError::LifetimeTooLong {
                max_seconds: 86_400
            })
        );
        // exp - iat, not exp - now: issued a while ago, a token of exactly the maximum still fits.
        let exact = sign(
            serde_json::json!({"role": "admin", "iat": now - 600, "exp": now - 600 + 86_400}),
            Algorithm::HS256,
        );
        assert_eq!(verifier.verify(&exact), Ok(Principal::Admin));
        let no_iat = sign(
            serde_json::json!({"role": "admin", "exp": now + 3600}),
            Algorithm::HS256,
        );
        assert_eq!(verifier.verify(&no_iat), Ok(Principal::Admin));
        assert_eq!(
            verifier.verify(&mint_token(&secret(), Role::Admin, "ops", day)),
            Ok(Principal::Admin)
        );
        // Without a maximum (the default), any lifetime.
        assert_eq!(
            JwtVerifier::new(&secret()).verify(&exp_2200),
            Ok(Principal::Admin)
        );
    }

    #[test]
    fn a_public_key_verifies_its_algorithm_only() {
        let claims = serde_json::json!({"role": "partner", "sub": PARTNER, "iat": now(), "exp": in_an_hour()});
        let partner = Ok(Principal::Partner(PartnerId::parse(PARTNER).unwrap()));
        let rs_private =
            EncodingKey::from_rsa_pem(fixture("rs256-private.pem").as_bytes()).unwrap();
        let es_private = EncodingKey::from_ec_pem(fixture("es256-private.pem").as_bytes()).unwrap();
        let other_private =
            EncodingKey::from_rsa_pem(fixture("other-rs256-private.pem").as_bytes()).unwrap();
        let rs256 = sign_with(&claims, Header::new(Algorithm::RS256), &rs_private);
        let es256 = sign_with(&claims, Header::new(Algorithm::ES256), &es_private);
        let hs256 = sign(claims.clone(), Algorithm::HS256);

        let rsa = PublicKey::from_pem(&fixture("rs256-public.pem")).unwrap();
        assert_eq!(rsa.algorithm(), Algorithm::RS256);
        let verifier = JwtVerifier::with_key(VerifyingKey::Public(rsa), &TokenRules::default());
        assert_eq!(verifier.verify(&rs256), partner);
        assert_eq!(verifier.verify(&hs256), Err(AuthError::WrongAlgorithm));
        assert_eq!(verifier.verify(&es256), Err(AuthError::WrongAlgorithm));
        let rs384 = sign_with(&claims, Header::new(Algorithm::RS384), &rs_private);
        assert_eq!(verifier.verify(&rs384), Err(AuthError::WrongAlgorithm));
        assert_eq!(
            verifier.verify(&sign_with(
                &claims,
                Header::new(Algorithm::RS256),
                &other_private
            )),
            Err(AuthError::Invalid)
        );
        // The time and header checks hold with a public key too.
        let crit = Header {
            crit: Some(vec!["x".into()]),
            ..Header::new(Algorithm::RS256)
        };
        assert_eq!(
            verifier.verify(&sign_with(&claims, crit, &rs_private)),
            Err(AuthError::CriticalExtension)
        );

        let ec = PublicKey::from_pem(&fixture("es256-public.pem")).unwrap();
        assert_eq!(ec.algorithm(), Algorithm::ES256);
        let verifier = JwtVerifier::with_key(VerifyingKey::Public(ec), &TokenRules::default());
        assert_eq!(verifier.verify(&es256), partner);
        assert_eq!(verifier.verify(&hs256), Err(AuthError::WrongAlgorithm));
        assert_eq!(verifier.verify(&rs256), Err(AuthError::WrongAlgorithm));
    }

    #[test]
    fn public_keys_are_read_from_pem_in_any_line_layout() {
        let pem = fixture("rs256-public.pem");
        let one_line = pem.trim().replace('\n', " ");
        let escaped = pem.trim().replace('\n', "\\n");
        for layout in [
            pem.as_str(),
            one_line.as_str(),
            escaped.as_str(),
            &pem.replace('\n', "\r\n"),
        ] {
            assert_eq!(
                PublicKey::from_pem(layout).map(|key| key.algorithm()),
                Ok(Algorithm::RS256),
                "{layout:?}"
            );
        }
        let pkcs1 =
            PublicKey::from_pem(&fixture("rs256-public-pkcs1.pem")).map(|key| key.algorithm());
        assert_eq!(
            pkcs1,
            Ok(Algorithm::RS256),
            "-----BEGIN RSA PUBLIC KEY-----"
        );
        let rsa1024 = PublicKey::from_pem(&fixture("rsa1024-public.pem")).unwrap_err();
        assert!(
            rsa1024.contains("2048 to 8192 bits") && rsa1024.contains("1024"),
            "{rsa1024}"
        );
        let p384 = PublicKey::from_pem(&fixture("p384-public.pem")).unwrap_err();
        assert!(p384.contains("P-256"), "{p384}");
        let private = PublicKey::from_pem(&fixture("es256-private.pem")).unwrap_err();
        assert!(private.contains("private key"), "{private}");
        for refused in [
            "",
            "not a key",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
            &fixture("rs256-private.pem"),
        ] {
            assert!(
                PublicKey::from_pem(refused).is_err(),
                "{:?}",
                refused.get(..40)
            );
        }
    }
}
