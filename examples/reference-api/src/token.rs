//! Access tokens: HS256 JWTs carrying the caller's user, org and role.
//!
//! The org in a verified token is the only source of the tenant in the correct app.
//! Three planted bugs weaken verification here ([`Bug::AlgNone`],
//! [`Bug::SignatureNotVerified`], [`Bug::ExpiredAccepted`]); each is a separate branch
//! so that enabling one leaves the other checks intact.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bugs::{Bug, Bugs};

/// How long an access token is valid, in seconds.
pub const TOKEN_LIFETIME_SECS: u64 = 3600;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The user's org: the tenant.
    pub org_id: Uuid,
    /// The user's role in the org (`owner` for the user created at signup).
    #[serde(default)]
    pub role: String,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default)]
    pub iat: u64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Signs a fresh one-hour token.
pub fn issue(secret: &str, user: Uuid, org: Uuid, role: &str) -> Result<String, String> {
    let iat = now();
    let claims = Claims {
        sub: user,
        org_id: org,
        role: role.to_string(),
        iat,
        exp: iat + TOKEN_LIFETIME_SECS,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| format!("cannot sign token: {e}"))
}

/// Verifies a bearer token and returns its claims, or `None` when it must be refused.
pub fn verify(token: &str, secret: &str, bugs: &Bugs) -> Option<Claims> {
    let alg = header_alg(token)?;
    if bugs.contains(Bug::AlgNone) && alg.eq_ignore_ascii_case("none") {
        // Planted: an unsigned token is taken at its word, expiry and all.
        return unverified_claims(token);
    }
    if bugs.contains(Bug::SignatureNotVerified) && alg == "HS256" {
        // Planted: the payload is trusted without checking the signature; expiry is
        // still enforced unless `expired-accepted` is on too.
        let claims = unverified_claims(token)?;
        let expired = claims.exp <= now();
        return (!expired || bugs.contains(Bug::ExpiredAccepted)).then_some(claims);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    // Tokens are minted and checked by the same clock; no grace period keeps "expired"
    // meaning expired.
    validation.leeway = 0;
    validation.validate_exp = !bugs.contains(Bug::ExpiredAccepted);
    jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .ok()
    .map(|data| data.claims)
}

/// Forged tokens come from every kind of encoder; accept base64url with or without
/// padding when reading them by hand.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The `alg` of a token's header, read without trusting anything else in it.
fn header_alg(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let json: serde_json::Value = serde_json::from_slice(&B64URL.decode(header).ok()?).ok()?;
    json.get("alg")?.as_str().map(str::to_string)
}

/// The claims of a token, read without checking anything. Only planted bugs use this.
fn unverified_claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    serde_json::from_slice(&B64URL.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret";

    fn b64(json: &serde_json::Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
    }

    fn claims(exp: u64) -> serde_json::Value {
        serde_json::json!({
            "sub": Uuid::new_v4(), "org_id": Uuid::new_v4(), "role": "owner",
            "iat": 0, "exp": exp,
        })
    }

    fn alg_none() -> String {
        let header = serde_json::json!({"alg": "none", "typ": "JWT"});
        format!("{}.{}.", b64(&header), b64(&claims(now() + 60)))
    }

    fn tampered() -> String {
        let good = issue(SECRET, Uuid::new_v4(), Uuid::new_v4(), "owner").unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        format!("{}.{}.{}", parts[0], b64(&claims(now() + 60)), parts[2])
    }

    fn signed(secret: &str, exp: u64) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(exp),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn the_correct_app_refuses_every_forgery() {
        let none = Bugs::none();
        let good = issue(SECRET, Uuid::new_v4(), Uuid::new_v4(), "owner").unwrap();
        assert!(verify(&good, SECRET, &none).is_some());
        assert!(verify(&alg_none(), SECRET, &none).is_none());
        assert!(verify(&tampered(), SECRET, &none).is_none());
        assert!(verify(&signed("other", now() + 60), SECRET, &none).is_none());
        assert!(verify(&signed(SECRET, now() - 1), SECRET, &none).is_none());
        for junk in ["", "a.b.c", "....", "not a token"] {
            assert!(verify(junk, SECRET, &none).is_none());
        }
    }

    #[test]
    fn each_token_bug_opens_only_its_own_door() {
        let bugs = Bugs::from(Bug::AlgNone);
        assert!(verify(&alg_none(), SECRET, &bugs).is_some());
        assert!(verify(&tampered(), SECRET, &bugs).is_none());

        let bugs = Bugs::from(Bug::SignatureNotVerified);
        assert!(verify(&tampered(), SECRET, &bugs).is_some());
        assert!(verify(&signed("other", now() + 60), SECRET, &bugs).is_some());
        assert!(verify(&signed("other", now() - 1), SECRET, &bugs).is_none());
        assert!(verify(&alg_none(), SECRET, &bugs).is_none());

        let bugs = Bugs::from(Bug::ExpiredAccepted);
        assert!(verify(&signed(SECRET, now() - 7200), SECRET, &bugs).is_some());
        assert!(verify(&signed("other", now() - 7200), SECRET, &bugs).is_none());
        assert!(verify(&tampered(), SECRET, &bugs).is_none());
    }
}
