//! Salted one-way hashing for every secret the API keeps: user passwords and API keys.
//! PBKDF2-HMAC-SHA256 with a random 16-byte salt per secret.
//!
//! Stored form: a PHC string, `$pbkdf2-sha256$i=ITERATIONS,l=32$SALT$HASH` (standard
//! base64 without padding), so the cost can change without breaking stored hashes and
//! any tool that reads PHC strings recognises it as a salted hash. [`verify`] also
//! accepts the older `pbkdf2-sha256$ITERATIONS$SALT$HASH` form, so databases prepared
//! by earlier versions keep working.
//!
//! The iteration count is deliberately modest ([`ITERATIONS`]): this is a test target
//! whose test suites sign up many users per run, and a production-strength count
//! (600 000 per OWASP's current advice) would make every signup cost a fraction of a
//! second. The format carries the count, so raising it is a one-line change.

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

/// PBKDF2 iterations for new hashes. Low on purpose; see the module docs.
pub const ITERATIONS: u32 = 10_000;

const SCHEME: &str = "pbkdf2-sha256";
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
/// Refuse stored hashes claiming absurd costs, so a corrupt row cannot stall a request.
const MAX_ITERATIONS: u32 = 10_000_000;

/// Hashes `secret` with a fresh random salt, as a PHC string.
pub fn hash(secret: &str) -> String {
    let mut salt = [0u8; SALT_LEN];
    // The system random source failing leaves nothing sensible to do; aws-lc aborts in
    // that case anyway.
    aws_lc_rs::rand::fill(&mut salt).expect("system random source");
    let iterations = NonZeroU32::new(ITERATIONS).expect("non-zero constant");
    let mut out = [0u8; HASH_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        secret.as_bytes(),
        &mut out,
    );
    format!(
        "${SCHEME}$i={ITERATIONS},l={HASH_LEN}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    )
}

/// Checks `secret` against a stored hash (PHC or the older form) in constant time. A
/// malformed stored hash never matches.
pub fn verify(secret: &str, stored: &str) -> bool {
    let (iterations, salt, expected) = match stored.strip_prefix('$') {
        Some(phc) => match phc_parts(phc) {
            Some(parts) => parts,
            None => return false,
        },
        None => match legacy_parts(stored) {
            Some(parts) => parts,
            None => return false,
        },
    };
    let Some(iterations) = Some(iterations)
        .filter(|n| *n <= MAX_ITERATIONS)
        .and_then(NonZeroU32::new)
    else {
        return false;
    };
    let (Ok(salt), Ok(expected)) = (
        STANDARD_NO_PAD.decode(salt),
        STANDARD_NO_PAD.decode(expected),
    ) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        secret.as_bytes(),
        &expected,
    )
    .is_ok()
}

/// `(iterations, salt, hash)` of `pbkdf2-sha256$i=N[,l=N]$SALT$HASH` (the leading `$`
/// already stripped).
fn phc_parts(phc: &str) -> Option<(u32, &str, &str)> {
    let mut parts = phc.split('$');
    let (Some(SCHEME), Some(params), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let mut iterations = None;
    for param in params.split(',') {
        match param.split_once('=') {
            Some(("i", n)) => iterations = Some(n.parse::<u32>().ok()?),
            Some(("l", _)) => {}
            _ => return None,
        }
    }
    Some((iterations?, salt, hash))
}

/// `(iterations, salt, hash)` of the older `pbkdf2-sha256$N$SALT$HASH`.
fn legacy_parts(stored: &str) -> Option<(u32, &str, &str)> {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(iter), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    Some((iter.parse().ok()?, salt, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_the_right_password_only() {
        let stored = hash("correct horse");
        assert!(
            stored.starts_with("$pbkdf2-sha256$i=10000,l=32$"),
            "{stored}"
        );
        assert_eq!(stored.split('$').count(), 5);
        assert!(verify("correct horse", &stored));
        assert!(!verify("correct horsf", &stored));
        assert_ne!(hash("correct horse"), stored, "salts differ");
    }

    #[test]
    fn the_older_form_still_verifies() {
        // The same salt and hash in the form earlier versions stored.
        let phc = hash("pw");
        let parts: Vec<&str> = phc.split('$').collect();
        let legacy = format!("pbkdf2-sha256$10000${}${}", parts[3], parts[4]);
        assert!(verify("pw", &legacy));
        assert!(!verify("px", &legacy));
    }

    #[test]
    fn malformed_hashes_never_match() {
        for stored in [
            "",
            "plain",
            "$",
            "pbkdf2-sha256$x$aa$bb",
            "pbkdf2-sha256$0$aa$bb",
            "pbkdf2-sha256$99999999999$aa$bb",
            "md5$1000$aa$bb",
            "pbkdf2-sha256$1000$!!$bb",
            "$pbkdf2-sha256$i=0$aa$bb",
            "$pbkdf2-sha256$i=99999999999$aa$bb",
            "$pbkdf2-sha256$x=1$aa$bb",
            "$pbkdf2-sha256$l=32$aa$bb",
            "$md5$i=1000$aa$bb",
            "$pbkdf2-sha256$i=1000$!!$bb",
        ] {
            assert!(!verify("pw", stored), "{stored}");
        }
    }
}
