//! Secret redaction: the one filter every user-visible string passes through before it
//! reaches a result, a log line or an error (run → report).
//!
//! Secrets are registered as they become known: signing keys and passwords when the
//! suite is loaded, tokens when they are captured or minted, database passwords when a
//! URL is parsed. Every occurrence is replaced by `[redacted:NAME]`; longer secrets are
//! replaced first so that a secret containing another is not half-redacted.

use std::sync::{Arc, RwLock};

/// Secrets shorter than this are not registered: redacting `"a"` everywhere would make
/// reports unreadable, and such a value protects nothing.
pub const MIN_SECRET_LEN: usize = 4;

#[derive(Default)]
struct Inner {
    /// (secret, name), longest first.
    secrets: Vec<(String, String)>,
}

/// A shared, growing set of secrets. Cloning shares the set.
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Arc<RwLock<Inner>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.inner.read().map(|i| i.secrets.len()).unwrap_or(0);
        write!(f, "Redactor({n} secrets)")
    }
}

impl Redactor {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a secret under a name shown in its place (e.g. `token a`, `JWT_SECRET`).
    pub fn add(&self, name: &str, secret: &str) {
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.secrets.iter().any(|(s, _)| s == secret) {
            return;
        }
        inner.secrets.push((secret.to_string(), name.to_string()));
        inner.secrets.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
    }

    /// Registers the password of a connection URL such as `postgres://u:PASS@host/db`,
    /// and the password given as `password=...` in a key/value connection string.
    pub fn add_url_password(&self, name: &str, url: &str) {
        if let Some(p) = url_password(url) {
            self.add(name, &p);
        }
    }

    /// Replaces every registered secret in `text`.
    pub fn redact(&self, text: &str) -> String {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for (secret, name) in &inner.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), &format!("[redacted:{name}]"));
            }
        }
        out
    }

    /// True when `text` holds a registered secret (used by tests and by the JSON writer's
    /// last-line-of-defence assertion).
    pub fn contains_secret(&self, text: &str) -> bool {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.secrets.iter().any(|(s, _)| text.contains(s.as_str()))
    }

    /// Every registered secret value (for tests that grep outputs).
    pub fn values(&self) -> Vec<String> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.secrets.iter().map(|(s, _)| s.clone()).collect()
    }
}

/// The password in a `scheme://user:password@host...` URL or a `password=...` key/value
/// connection string, percent-decoded forms included.
pub fn url_password(url: &str) -> Option<String> {
    if let Some(rest) = url.split_once("://").map(|(_, r)| r) {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, pass)) = userinfo.split_once(':')
            && !pass.is_empty()
        {
            return Some(pass.to_string());
        }
    }
    for part in url.split_whitespace() {
        if let Some(p) = part.strip_prefix("password=") {
            return Some(p.trim_matches('\'').to_string());
        }
    }
    if let Some(q) = url.split_once('?').map(|(_, q)| q) {
        for kv in q.split('&') {
            if let Some(p) = kv.strip_prefix("password=") {
                return Some(p.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first_and_everywhere() {
        let r = Redactor::new();
        r.add("short", "abcd");
        r.add("long", "xxabcdxx");
        assert_eq!(
            r.redact("1 xxabcdxx 2 abcd"),
            "1 [redacted:long] 2 [redacted:short]"
        );
        assert!(r.contains_secret("..abcd.."));
        assert!(!r.contains_secret("abc"));
    }

    #[test]
    fn ignores_tiny_values() {
        let r = Redactor::new();
        r.add("x", "ab");
        assert_eq!(r.redact("ab"), "ab");
    }

    #[test]
    fn finds_url_passwords() {
        assert_eq!(
            url_password("postgres://u:s3cret@h:5432/db").as_deref(),
            Some("s3cret")
        );
        assert_eq!(url_password("postgres://u@h/db"), None);
        assert_eq!(
            url_password("host=h user=u password=pw1234").as_deref(),
            Some("pw1234")
        );
        assert_eq!(
            url_password("postgres://h/db?user=u&password=qq99").as_deref(),
            Some("qq99")
        );
    }
}
