//! What JWTs must satisfy, as configured: their scope (issuer, audience), their longest
//! lifetime, and the public key they are verified with when the API holds no signing key.
//! Plain configuration values, read by `settings` and used by `api::auth`.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey};

/// Who must have issued a token and for whom (`SEYAHA_JWT_ISSUER`, `SEYAHA_JWT_AUDIENCE`).
/// Unset: not checked, so a token from any system holding the shared secret is accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenScope {
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// What a token must satisfy besides its signature: the scope, and the longest lifetime
/// accepted (`SEYAHA_JWT_MAX_LIFETIME_SECS`; `None`: any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRules {
    pub scope: TokenScope,
    pub max_lifetime: Option<Duration>,
}

/// A public key tokens are verified with (`SEYAHA_JWT_PUBLIC_KEY`). The algorithm follows from
/// the key: an RSA key verifies RS256 only, a P-256 EC key ES256 only.
#[derive(Clone)]
pub struct PublicKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({:?})", self.algorithm)
    }
}

/// The DER of the P-256 curve's OID (1.2.840.10045.3.1.7), as a SubjectPublicKeyInfo names it.
const P256_OID_DER: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

impl PublicKey {
    /// Reads a PEM public key (`-----BEGIN PUBLIC KEY-----`, or `RSA PUBLIC KEY`). Line breaks
    /// may be given as spaces or as `\n` escapes (a template parameter is one line).
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let pem = normalise_pem(text)?;
        if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
            // Verification takes 2048 to 8192 bits: refuse any other size here, not on every token.
            let bits =
                rsa_modulus_bits(&pem_body(&pem)?).ok_or("cannot read the RSA key's modulus")?;
            if !(2048..=8192).contains(&bits) {
                return Err(format!(
                    "an RSA key must have 2048 to 8192 bits; this one has {bits}"
                ));
            }
            return Ok(Self {
                algorithm: Algorithm::RS256,
                key,
            });
        }
        if let Ok(key) = DecodingKey::from_ec_pem(pem.as_bytes()) {
            let der = pem_body(&pem)?;
            if !der
                .windows(P256_OID_DER.len())
                .any(|window| window == P256_OID_DER)
            {
                return Err("an EC key must be on the P-256 curve (ES256)".into());
            }
            return Ok(Self {
                algorithm: Algorithm::ES256,
                key,
            });
        }
        Err("not an RSA or P-256 EC public key in PEM (-----BEGIN PUBLIC KEY-----)".into())
    }

    /// The one algorithm tokens must be signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// What the verifier checks signatures with.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

/// A PEM block rebuilt with its line breaks, whatever whitespace or `\n` escapes stood for them.
fn normalise_pem(text: &str) -> Result<String, String> {
    let text = text.replace("\\n", "\n");
    let text = text.trim();
    let after_begin = text
        .strip_prefix("-----BEGIN ")
        .ok_or("must start with -----BEGIN PUBLIC KEY-----")?;
    let (label, rest) = after_begin
        .split_once("-----")
        .ok_or("no end to the BEGIN line")?;
    if label.contains("PRIVATE") {
        // Refused whole: the point of a public key is that this API holds nothing that signs.
        return Err(
            "is a private key: give the public key (openssl pkey -in key.pem -pubout)".into(),
        );
    }
    if !matches!(label, "PUBLIC KEY" | "RSA PUBLIC KEY") {
        return Err(format!("is a {label}, not a PUBLIC KEY"));
    }
    let end = format!("-----END {label}-----");
    let body = rest
        .trim_end()
        .strip_suffix(end.as_str())
        .ok_or_else(|| format!("must end with {end}"))?;
    let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap_or_default())
        .collect();
    Ok(format!(
        "-----BEGIN {label}-----\n{}\n{end}\n",
        lines.join("\n")
    ))
}

/// The size of an RSA public key's modulus, from its DER: a SubjectPublicKeyInfo (`PUBLIC KEY`)
/// or the PKCS#1 `RSAPublicKey` it wraps (`RSA PUBLIC KEY`).
fn rsa_modulus_bits(der: &[u8]) -> Option<u64> {
    use simple_asn1::ASN1Block::{BitString, Integer, Sequence};
    match simple_asn1::from_der(der).ok()?.first()? {
        Sequence(_, items) => match items.as_slice() {
            [Integer(_, modulus), Integer(..)] => Some(modulus.bits()),
            [Sequence(..), BitString(_, _, public_key)] => rsa_modulus_bits(public_key),
            _ => None,
        },
        _ => None,
    }
}

/// The DER inside a normalised PEM block.
fn pem_body(pem: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| "the PEM body is not base64".to_owned())
}
