//! Per-org API keys: how a key looks, and the one-way form it is stored in.
//!
//! A key is `tgk_<org>_<key id>_<secret>` (the two UUIDs as 32 hex digits, the secret 64
//! hex digits = 256 random bits). The org and key id in it are only *where to look*:
//! the key is accepted after its secret matches the stored hash, looked up under RLS in
//! that org, so a key naming another org finds nothing there.
//!
//! The correct app stores only a salted PBKDF2-HMAC-SHA256 hash in PHC string format,
//! exactly like passwords ([`crate::password`]): `$pbkdf2-sha256$i=ITERATIONS,l=32$SALT$HASH`
//! with a 16-byte random salt per key. Two planted bugs store weaker forms instead (the key
//! itself, or its unsalted SHA-256 hex digest); [`verify`] recognises every form so keys
//! made under any bug set keep working.

use aws_lc_rs::{constant_time, digest};
use uuid::Uuid;

use crate::password;

/// The key's prefix, so a leaked key is recognisable (secret scanners match prefixes).
pub const PREFIX: &str = "tgk";

const SECRET_BYTES: usize = 32;
/// How a key is stored. [`Storage::Salted`] is the correct app's; the others are planted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// A salted PBKDF2 hash in PHC format.
    Salted,
    /// The key itself (planted `api-key-plaintext`).
    Plaintext,
    /// The unsalted SHA-256 hex digest of the key (planted `api-key-unsalted`).
    UnsaltedSha256,
}

/// A new key for `org` with id `id`.
pub fn generate(org: Uuid, id: Uuid) -> String {
    let mut secret = [0u8; SECRET_BYTES];
    aws_lc_rs::rand::fill(&mut secret).expect("system random source");
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    format!("{PREFIX}_{}_{}_{hex}", org.simple(), id.simple())
}

/// The org and key id a key names, or `None` when it is not shaped like a key.
pub fn parse(key: &str) -> Option<(Uuid, Uuid)> {
    let mut parts = key.trim().split('_');
    let (Some(PREFIX), Some(org), Some(id), Some(secret), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let hex_of = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !(hex_of(org, 32) && hex_of(id, 32) && hex_of(secret, 2 * SECRET_BYTES)) {
        return None;
    }
    Some((Uuid::parse_str(org).ok()?, Uuid::parse_str(id).ok()?))
}

/// The form of `key` to store.
pub fn stored_form(key: &str, storage: Storage) -> String {
    match storage {
        Storage::Salted => password::hash(key),
        Storage::Plaintext => key.to_string(),
        Storage::UnsaltedSha256 => sha256_hex(key),
    }
}

fn sha256_hex(key: &str) -> String {
    digest::digest(&digest::SHA256, key.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `key` matches `stored`, in constant time for a given stored form. A PHC
/// string is checked as such; a 64-hex-digit value as an unsalted digest; anything else
/// as the plaintext (the planted forms). A malformed PHC string never matches.
pub fn verify(key: &str, stored: &str) -> bool {
    if stored.starts_with('$') {
        return password::verify(key, stored);
    }
    let expected = if stored.len() == 64 && stored.bytes().all(|b| b.is_ascii_hexdigit()) {
        sha256_hex(key)
    } else {
        key.to_string()
    };
    constant_time::verify_slices_are_equal(expected.as_bytes(), stored.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back_to_their_org_and_id() {
        let (org, id) = (Uuid::new_v4(), Uuid::new_v4());
        let key = generate(org, id);
        assert!(key.starts_with("tgk_"));
        assert_eq!(parse(&key), Some((org, id)));
        assert_ne!(generate(org, id), key, "secrets are random");
        for bad in [
            "",
            "tgk",
            "tgk_x_y_z",
            &key.replace("tgk_", "xyz_"),
            &format!("{key}_1"),
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_salted_form_is_a_phc_string_that_verifies_the_key_only() {
        let key = generate(Uuid::new_v4(), Uuid::new_v4());
        let stored = stored_form(&key, Storage::Salted);
        assert!(
            stored.starts_with("$pbkdf2-sha256$i=10000,l=32$"),
            "{stored}"
        );
        assert_eq!(stored.split('$').count(), 5);
        assert!(!stored.contains(&key));
        assert!(verify(&key, &stored));
        assert!(!verify(&format!("{key}0"), &stored));
        assert_ne!(stored_form(&key, Storage::Salted), stored, "salts differ");
    }

    #[test]
    fn the_planted_forms_verify_too() {
        let key = generate(Uuid::new_v4(), Uuid::new_v4());
        for storage in [Storage::Plaintext, Storage::UnsaltedSha256] {
            let stored = stored_form(&key, storage);
            assert!(verify(&key, &stored), "{storage:?}");
            assert!(!verify("tgk_other", &stored), "{storage:?}");
        }
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
