//! JSON Web Tokens for the runner (run stage): reading B's token, forging variants of it
//! for the `token_forgery` attack, and minting tokens for `orgs.mint` suites.
//!
//! Forgeries carry A's org id in the tenant claim; a target that accepts any of them
//! lets B act as A.

use super::error::RunError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

/// The usual names of a tenant claim, tried when the suite names none.
pub const TENANT_CLAIMS: [&str; 6] = [
    "org_id",
    "tenant_id",
    "organization_id",
    "orgId",
    "tenantId",
    "account_id",
];

/// A decoded (not verified) JWT.
#[derive(Clone, Debug)]
pub struct Jwt {
    pub header: Value,
    pub payload: Value,
    /// The signature part as sent (base64url).
    pub signature: String,
}

/// Decodes a compact JWT without verifying it; `None` if it is not one.
pub fn decode(token: &str) -> Option<Jwt> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&B64.decode(h.trim_end_matches('=')).ok()?).ok()?;
    let payload: Value = serde_json::from_slice(&B64.decode(p.trim_end_matches('=')).ok()?).ok()?;
    if !header.is_object() || !payload.is_object() {
        return None;
    }
    Some(Jwt {
        header,
        payload,
        signature: s.to_string(),
    })
}

fn enc(v: &Value) -> String {
    B64.encode(serde_json::to_vec(v).unwrap_or_default())
}

/// Reads a claim by dotted path (`org_id`, `app_metadata.tenant`).
pub fn claim<'a>(payload: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(payload, |v, k| v.get(k))
}

/// The claim value as text (strings without quotes).
pub fn claim_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sets a claim by dotted path, keeping the original's type where `value` parses as it.
pub fn set_claim(payload: &mut Value, path: &str, value: &str) {
    let mut cur = payload;
    let keys: Vec<&str> = path.split('.').collect();
    for (i, k) in keys.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let obj = cur.as_object_mut().expect("made an object above");
        if i == keys.len() - 1 {
            let new = match obj.get(*k) {
                Some(Value::Number(_)) => value
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::from(value)),
                _ => Value::from(value),
            };
            obj.insert(k.to_string(), new);
            return;
        }
        cur = obj.entry(k.to_string()).or_insert_with(|| json!({}));
    }
}

/// The tenant claim's name in a payload: `preferred` if given, else the first usual name
/// present.
pub fn tenant_claim_name(payload: &Value, preferred: Option<&str>) -> Option<String> {
    if let Some(p) = preferred {
        return Some(p.to_string());
    }
    TENANT_CLAIMS
        .iter()
        .find(|n| payload.get(**n).is_some())
        .map(|s| s.to_string())
}

/// `alg: none`, no signature.
pub fn forge_alg_none(t: &Jwt, claim: &str, org: &str) -> String {
    let mut p = t.payload.clone();
    set_claim(&mut p, claim, org);
    format!(
        "{}.{}.",
        enc(&json!({"alg": "none", "typ": "JWT"})),
        enc(&p)
    )
}

/// The payload changed under the original header and signature.
pub fn forge_tampered(t: &Jwt, claim: &str, org: &str) -> String {
    let mut p = t.payload.clone();
    set_claim(&mut p, claim, org);
    format!("{}.{}.{}", enc(&t.header), enc(&p), t.signature)
}

/// Re-signed (HS256) with a fresh random key the target cannot know.
pub fn forge_random_key(t: &Jwt, claim: &str, org: &str) -> String {
    let mut p = t.payload.clone();
    set_claim(&mut p, claim, org);
    let mut key = [0u8; 32];
    crate::random::fill(&mut key).expect("system random source");
    let mut header = t.header.clone();
    header["alg"] = Value::from("HS256");
    let signing_input = format!("{}.{}", enc(&header), enc(&p));
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let sig = aws_lc_rs::hmac::sign(&k, signing_input.as_bytes());
    format!("{signing_input}.{}", B64.encode(sig.as_ref()))
}

/// A never-issued token: three segments of random bytes, shaped like `t` (a JWT's
/// dots, about its length) but decoding to nothing. No verifier accepts it — not even
/// one that skips the signature — so what the target answers to it is what "rejected"
/// looks like there.
pub fn never_issued(t: &Jwt) -> String {
    let sig = B64
        .decode(t.signature.trim_end_matches('='))
        .map(|s| s.len())
        .unwrap_or(32)
        .clamp(16, 512);
    let part = |n: usize| {
        let mut b = vec![0u8; n];
        crate::random::fill(&mut b).expect("system random source");
        // A leading 0xff is never the start of JSON text, whatever follows.
        b[0] = 0xff;
        B64.encode(b)
    };
    format!("{}.{}.{}", part(24), part(48), part(sig))
}

/// A key tenantgate signs with.
#[derive(Clone)]
pub struct Signer {
    pub algorithm: jsonwebtoken::Algorithm,
    pub key: jsonwebtoken::EncodingKey,
}

impl Signer {
    /// Builds a signer from the suite's algorithm name and secret or PEM file.
    pub fn new(
        algorithm: &str,
        secret: Option<&str>,
        pem_path: Option<&str>,
    ) -> Result<Signer, RunError> {
        use jsonwebtoken::{Algorithm as A, EncodingKey as K};
        let alg: A = algorithm
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| RunError::UnknownAlgorithm(algorithm.to_string()))?;
        let key = match alg {
            A::HS256 | A::HS384 | A::HS512 => {
                K::from_secret(secret.ok_or(RunError::NoSecret)?.as_bytes())
            }
            _ => {
                let path = pem_path.ok_or(RunError::NoKeyFile)?;
                let pem = std::fs::read(path).map_err(|e| RunError::KeyFile {
                    path: path.to_string(),
                    reason: e.to_string(),
                })?;
                match alg {
                    A::ES256 | A::ES384 => K::from_ec_pem(&pem),
                    _ => K::from_rsa_pem(&pem),
                }
                .map_err(|e| RunError::BadPem {
                    path: path.to_string(),
                    reason: e.to_string(),
                })?
            }
        };
        Ok(Signer {
            algorithm: alg,
            key,
        })
    }

    /// Signs claims.
    pub fn sign(&self, claims: &Value) -> Result<String, RunError> {
        let header = jsonwebtoken::Header::new(self.algorithm);
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| RunError::Sign(e.to_string()))
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// B's claims with A's org id, signed with the real key, expired an hour ago.
pub fn forge_expired(t: &Jwt, claim: &str, org: &str, signer: &Signer) -> Result<String, RunError> {
    let mut p = t.payload.clone();
    set_claim(&mut p, claim, org);
    let now = now();
    p["iat"] = Value::from(now - 7200);
    p["exp"] = Value::from(now - 3600);
    if p.get("nbf").is_some() {
        p["nbf"] = Value::from(now - 7200);
    }
    signer.sign(&p)
}

/// B's claims with A's org id, signed with the real key, without `exp`: a server must
/// not accept a token that never expires.
pub fn forge_no_exp(t: &Jwt, claim: &str, org: &str, signer: &Signer) -> Result<String, RunError> {
    let mut p = t.payload.clone();
    set_claim(&mut p, claim, org);
    if let Some(o) = p.as_object_mut() {
        o.remove("exp");
    }
    p["iat"] = Value::from(now());
    signer.sign(&p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgeries_carry_the_other_org() {
        let s = Signer::new("HS256", Some("k3y-k3y-k3y"), None).unwrap();
        let tok = s
            .sign(&json!({"sub": "u", "org_id": "B", "exp": now() + 60}))
            .unwrap();
        let t = decode(&tok).unwrap();
        assert_eq!(
            tenant_claim_name(&t.payload, None).as_deref(),
            Some("org_id")
        );
        for f in [
            forge_alg_none(&t, "org_id", "A"),
            forge_tampered(&t, "org_id", "A"),
            forge_random_key(&t, "org_id", "A"),
            forge_expired(&t, "org_id", "A", &s).unwrap(),
            forge_no_exp(&t, "org_id", "A", &s).unwrap(),
        ] {
            let d = decode(&f).unwrap();
            assert_eq!(d.payload["org_id"], "A");
            assert_ne!(f, tok);
        }
        assert!(forge_alg_none(&t, "org_id", "A").ends_with('.'));
        let no_exp = decode(&forge_no_exp(&t, "org_id", "A", &s).unwrap()).unwrap();
        assert!(no_exp.payload.get("exp").is_none());
        assert!(decode("not-a-jwt").is_none());
    }

    #[test]
    fn nested_claims() {
        let mut p = json!({"app": {"tenant": 7}});
        set_claim(&mut p, "app.tenant", "9");
        assert_eq!(p["app"]["tenant"], 9);
        assert_eq!(claim(&p, "app.tenant"), Some(&json!(9)));
    }
}
