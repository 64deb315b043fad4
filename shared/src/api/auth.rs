//! Who is calling: HS256 JWTs for partners and admins.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{PartnerId, Principal, Role};
use crate::ports::{SecretStoreError, SigningKeySource};

/// Seconds of clock skew tolerated on `exp`.
const EXP_LEEWAY_SECONDS: u64 = 60;

/// Why a token was not accepted. `WrongRole` is a valid token (403); the rest are 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("token has expired")]
    Expired,
    #[error("token is invalid")]
    Invalid,
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
}

/// Who must have issued a token and for whom (`SEYAHA_JWT_ISSUER`, `SEYAHA_JWT_AUDIENCE`).
/// Unset: not checked, so a token from any system holding the shared secret is accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenScope {
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// Verifies tokens with one shared HS256 secret. Every other algorithm, `none` included,
/// is refused, and `exp` is required; so are `iss` and `aud` when the scope names them.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl JwtVerifier {
    pub fn new(secret: &SecretString) -> Self {
        Self::scoped(secret, &TokenScope::default())
    }

    pub fn scoped(secret: &SecretString, scope: &TokenScope) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = EXP_LEEWAY_SECONDS;
        let mut required = vec!["exp"];
        if let Some(issuer) = &scope.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &scope.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Self { key: DecodingKey::from_secret(secret.expose_secret().as_bytes()), validation }
    }

    /// Verifies an `Authorization` header value (`Bearer <jwt>`).
    pub fn verify_header(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let header = header.map(str::trim).filter(|h| !h.is_empty()).ok_or(AuthError::Missing)?;
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(AuthError::Invalid),
        };
        self.verify(token)
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })?
            .claims;
        match claims.role.as_ref().and_then(Value::as_str).and_then(|role| role.parse::<Role>().ok()) {
            Some(Role::Admin) => Ok(Principal::Admin),
            Some(Role::Partner) => {
                // The partner id is `sub`, falling back to `id`, then `_id`: the first one present.
                let id = [claims.sub, claims.id, claims.underscore_id].into_iter().flatten().find(|v| !v.is_null());
                let id = id.as_ref().and_then(Value::as_str).ok_or(AuthError::NoPartnerId)?;
                PartnerId::parse(id).map(Principal::Partner).map_err(|_| AuthError::NoPartnerId)
            }
            None => Err(AuthError::WrongRole),
        }
    }
}

/// The verifier, built from the signing key port the first time a request needs it (on Lambda
/// the key lives in Secrets Manager: reading it at init would add a round trip to every cold
/// start, even for requests that carry no JWT). A failed read is retried by the next request.
pub struct JwtSource {
    verifier: tokio::sync::OnceCell<JwtVerifier>,
    key: Arc<dyn SigningKeySource>,
    scope: TokenScope,
}

impl JwtSource {
    pub fn new(key: Arc<dyn SigningKeySource>, scope: TokenScope) -> Self {
        Self { verifier: tokio::sync::OnceCell::new(), key, scope }
    }

    pub async fn verifier(&self) -> Result<&JwtVerifier, SecretStoreError> {
        self.verifier
            .get_or_try_init(|| async { self.key.jwt_secret().await.map(|secret| JwtVerifier::scoped(&secret, &self.scope)) })
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
pub fn mint_scoped_token(secret: &SecretString, role: Role, subject: &str, valid_for: Duration, scope: &TokenScope) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let claims = MintedClaims {
        sub: subject,
        role,
        iat: now,
        exp: now + valid_for.as_secs(),
        iss: scope.issuer.as_deref(),
        aud: scope.audience.as_deref(),
    };
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.expose_secret().as_bytes()))
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
        encode(&Header::new(alg), &claims, &EncodingKey::from_secret(b"test-secret-with-enough-entropy-0123456789")).unwrap()
    }

    fn in_an_hour() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600
    }

    #[test]
    fn minted_tokens_verify() {
        let verifier = JwtVerifier::new(&secret());
        let token = mint_token(&secret(), Role::Partner, PARTNER, Duration::from_secs(60));
        assert_eq!(verifier.verify_header(Some(&format!("Bearer {token}"))), Ok(Principal::Partner(PartnerId::parse(PARTNER).unwrap())));
        let admin = mint_token(&secret(), Role::Admin, "ops", Duration::from_secs(60));
        assert_eq!(verifier.verify(&admin), Ok(Principal::Admin));
    }

    #[test]
    fn partner_id_falls_back_from_sub_to_id_to_underscore_id() {
        let verifier = JwtVerifier::new(&secret());
        let exp = in_an_hour();
        let by_id = sign(serde_json::json!({"role": "partner", "id": PARTNER, "exp": exp}), Algorithm::HS256);
        let by_underscore = sign(serde_json::json!({"role": "partner", "_id": PARTNER, "exp": exp}), Algorithm::HS256);
        let none = sign(serde_json::json!({"role": "partner", "exp": exp}), Algorithm::HS256);
        let bad = sign(serde_json::json!({"role": "partner", "sub": "not-an-id", "exp": exp}), Algorithm::HS256);
        assert!(matches!(verifier.verify(&by_id), Ok(Principal::Partner(_))));
        assert!(matches!(verifier.verify(&by_underscore), Ok(Principal::Partner(_))));
        assert_eq!(verifier.verify(&none), Err(AuthError::NoPartnerId));
        assert_eq!(verifier.verify(&bad), Err(AuthError::NoPartnerId));
    }

    #[test]
    fn a_scope_requires_its_issuer_and_audience() {
        let scope = TokenScope { issuer: Some("https://portal.seyaha.example".into()), audience: Some("partner-integrations".into()) };
        let verifier = JwtVerifier::scoped(&secret(), &scope);
        let exp = in_an_hour();
        let claims = |extra: serde_json::Value| {
            let mut claims = serde_json::json!({"role": "admin", "exp": exp});
            claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            sign(claims, Algorithm::HS256)
        };
        let (iss, aud) = ("https://portal.seyaha.example", "partner-integrations");
        assert_eq!(verifier.verify(&claims(serde_json::json!({"iss": iss, "aud": aud}))), Ok(Principal::Admin));
        assert_eq!(verifier.verify(&claims(serde_json::json!({"iss": iss, "aud": [aud, "other"]}))), Ok(Principal::Admin));
        for refused in [
            serde_json::json!({}),
            serde_json::json!({"iss": iss}),
            serde_json::json!({"aud": aud}),
            serde_json::json!({"iss": "https://elsewhere.example", "aud": aud}),
            serde_json::json!({"iss": iss, "aud": "another-service"}),
        ] {
            assert_eq!(verifier.verify(&claims(refused.clone())), Err(AuthError::Invalid), "{refused}");
        }
        // Minted with the scope, a token verifies; without a scope, iss and aud are not checked.
        let minted = mint_scoped_token(&secret(), Role::Admin, "ops", Duration::from_secs(60), &scope);
        assert_eq!(verifier.verify(&minted), Ok(Principal::Admin));
        assert_eq!(
            JwtVerifier::new(&secret()).verify(&claims(serde_json::json!({"iss": "anyone", "aud": "anything"}))),
            Ok(Principal::Admin)
        );
    }

    #[test]
    fn refuses_other_algorithms_missing_exp_expiry_and_unknown_roles() {
        let verifier = JwtVerifier::new(&secret());
        let exp = in_an_hour();
        let hs384 = sign(serde_json::json!({"role": "admin", "exp": exp}), Algorithm::HS384);
        assert_eq!(verifier.verify(&hs384), Err(AuthError::Invalid));
        let no_exp = sign(serde_json::json!({"role": "admin"}), Algorithm::HS256);
        assert_eq!(verifier.verify(&no_exp), Err(AuthError::Invalid));
        let expired = sign(serde_json::json!({"role": "admin", "exp": exp - 3600 - 120}), Algorithm::HS256);
        assert_eq!(verifier.verify(&expired), Err(AuthError::Expired));
        let within_leeway = sign(serde_json::json!({"role": "admin", "exp": exp - 3600 - 30}), Algorithm::HS256);
        assert_eq!(verifier.verify(&within_leeway), Ok(Principal::Admin));
        let user = sign(serde_json::json!({"role": "user", "sub": PARTNER, "exp": exp}), Algorithm::HS256);
        assert_eq!(verifier.verify(&user), Err(AuthError::WrongRole));
        assert_eq!(verifier.verify_header(None), Err(AuthError::Missing));
        assert_eq!(verifier.verify_header(Some("Basic abc")), Err(AuthError::Invalid));
    }
}
