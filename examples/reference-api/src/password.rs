//! Password hashing for user logins: PBKDF2-HMAC-SHA256 with a random salt per password.
//!
//! Stored form: `pbkdf2-sha256$ITERATIONS$SALT_B64$HASH_B64` (standard base64, no
//! padding), so the cost can change without breaking stored hashes.
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

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &str) -> String {
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
        password.as_bytes(),
        &mut out,
    );
    format!(
        "{SCHEME}${ITERATIONS}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    )
}

/// Checks `password` against a stored hash in constant time. A malformed stored hash
/// never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(iter), Some(salt), Some(expected), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let Some(iterations) = iter
        .parse::<u32>()
        .ok()
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
        password.as_bytes(),
        &expected,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_the_right_password_only() {
        let stored = hash("correct horse");
        assert!(stored.starts_with("pbkdf2-sha256$10000$"));
        assert!(verify("correct horse", &stored));
        assert!(!verify("correct horsf", &stored));
        assert_ne!(hash("correct horse"), stored, "salts differ");
    }

    #[test]
    fn malformed_hashes_never_match() {
        for stored in [
            "",
            "plain",
            "pbkdf2-sha256$x$aa$bb",
            "pbkdf2-sha256$0$aa$bb",
            "pbkdf2-sha256$99999999999$aa$bb",
            "md5$1000$aa$bb",
            "pbkdf2-sha256$1000$!!$bb",
        ] {
            assert!(!verify("pw", stored), "{stored}");
        }
    }
}
