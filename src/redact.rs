//! Secret redaction: the one filter every user-visible string passes through before it
//! reaches a result, a log line or an error (run → report).
//!
//! Two kinds of rules. **Known secrets** are registered as they become known: signing
//! keys and suite secrets when the suite is loaded, tokens when they are captured or
//! minted; every occurrence is replaced by `[redacted:NAME]`, longer secrets first so
//! that a secret containing another is not half-redacted. Database passwords are
//! registered as **passwords**: replaced only where they stand as a secret (a
//! connection string's `user:PASS@`, `password=PASS`, a `"password": "PASS"` field),
//! never as an ordinary word — a password `postgres` must not turn
//! `REVOKE postgres FROM app` into nonsense. **Structural rules** need no registration:
//! any JWT-shaped string; the value of a JSON field or `key=value` pair whose name says
//! it is a secret (`*token*`, `password`, `secret`, `authorization`, `cookie`, …);
//! `Authorization`, `Cookie` and `Set-Cookie` header values; a `Bearer` credential.

use std::sync::{Arc, LazyLock, RwLock};

use regex::Regex;

/// Secrets shorter than this are not registered: redacting `"a"` everywhere would make
/// reports unreadable, and such a value protects nothing.
pub const MIN_SECRET_LEN: usize = 4;

#[derive(Default)]
struct Inner {
    /// (secret, name), longest first.
    secrets: Vec<(String, String)>,
    /// (password, name): replaced only where they stand as a secret.
    passwords: Vec<(String, String)>,
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
            self.add_password(name, &p);
        }
    }

    /// Registers a password: replaced only where it stands as a secret (see the module
    /// documentation), so a password that is also an ordinary word leaves that word be.
    pub fn add_password(&self, name: &str, password: &str) {
        if password.is_empty() {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.passwords.iter().any(|(s, _)| s == password) {
            return;
        }
        inner
            .passwords
            .push((password.to_string(), name.to_string()));
        inner
            .passwords
            .sort_by_key(|s| std::cmp::Reverse(s.0.len()));
    }

    /// Applies every rule to `text`: known secrets, passwords in their places, and the
    /// structural rules.
    pub fn redact(&self, text: &str) -> String {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for (secret, name) in &inner.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), &format!("[redacted:{name}]"));
            }
        }
        for (password, name) in &inner.passwords {
            if out.contains(password.as_str()) {
                out = redact_password(&out, password, name);
            }
        }
        structural(&out)
    }

    /// True when `text` holds a registered secret or password anywhere — conservative:
    /// a password that is also an ordinary word counts wherever it stands (used by tests
    /// that scan outputs).
    pub fn contains_secret(&self, text: &str) -> bool {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner
            .secrets
            .iter()
            .chain(&inner.passwords)
            .any(|(s, _)| text.contains(s.as_str()))
    }

    /// True when `text` holds a password where it stands as a secret (see the module
    /// documentation).
    pub fn contains_password_as_secret(&self, text: &str) -> bool {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner
            .passwords
            .iter()
            .any(|(p, _)| redact_password(text, p, "") != text)
    }

    /// Every registered secret value (for tests that grep outputs).
    pub fn values(&self) -> Vec<String> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner
            .secrets
            .iter()
            .chain(&inner.passwords)
            .map(|(s, _)| s.clone())
            .collect()
    }
}

/// Replaces the occurrences of `password` that stand as a secret: right after the `:` of
/// a URL's user info and before its `@`; after `password=` (or `PGPASSWORD=`, quoted or
/// not); as the value of a JSON field named like a password.
fn redact_password(text: &str, password: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(password) {
        if i < last {
            continue;
        }
        let before = &text[..i];
        let after = &text[i + password.len()..];
        let lower = before.to_ascii_lowercase();
        let in_url = before.ends_with(':')
            && after.starts_with('@')
            && before
                .rsplit(char::is_whitespace)
                .next()
                .is_some_and(|w| w.contains("://"));
        let in_kv = ["password=", "password='", "password=\"", "passwd="]
            .iter()
            .any(|k| lower.ends_with(k));
        let in_json = PASSWORD_FIELD.is_match(before);
        if in_url || in_kv || in_json {
            out.push_str(&text[last..i]);
            out.push_str(&format!("[redacted:{name}]"));
            last = i + password.len();
        }
    }
    out.push_str(&text[last..]);
    out
}

/// The end of a JSON field name that says password, up to its value's opening quote.
static PASSWORD_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)"[a-z0-9_\-]*(password|passwd|pwd)[a-z0-9_\-]*"\s*:\s*"$"#)
        .expect("a valid pattern")
});

/// The secret-bearing names of JSON fields, query and form parameters: anything with
/// `token`, `secret`, `password`, `passwd`, `authorization`, `cookie`, `api_key`,
/// `apikey` or `credential` in it.
const SECRET_NAME: &str = r"[A-Za-z0-9_\-]*(?i:token|secret|password|passwd|authorization|cookie|api_?key|credential)[A-Za-z0-9_\-]*";

/// `"name": "value"` with a secret name (the value up to its closing quote, escapes
/// included, or to the end of a cut-off excerpt).
static JSON_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r#"("{SECRET_NAME}"\s*:\s*")((?:[^"\\]|\\.)*)"#)).expect("a valid pattern")
});

/// `name=value` with a secret name (query strings, form bodies, cookies).
static KV_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r#"(\b{SECRET_NAME}=)([^&\s"';,]+)"#)).expect("a valid pattern")
});

/// `Authorization: …`, `Cookie: …`, `Set-Cookie: …` header values, to the end of the line.
static HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^(\s*(?:authorization|proxy-authorization|cookie|set-cookie)\s*:\s*)(.+)$")
        .expect("a valid pattern")
});

/// A bearer credential anywhere.
static BEARER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(\b(?:bearer|basic)\s+)([A-Za-z0-9._~+/=\-]{8,})").expect("a valid pattern")
});

/// Anything shaped like a JWT: three base64url parts, the first a JSON object's start.
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*").expect("a valid pattern")
});

/// Words at least one of which every structural rule's match holds, compared ASCII
/// case-insensitively: the secret names of [`SECRET_NAME`] (`api_?key` as its two
/// spellings), the header names of [`HEADER`] (all hold `authorization` or `cookie`),
/// the schemes of [`BEARER`], and the start of a [`JWT`].
const TRIGGERS: [&str; 12] = [
    "eyj",
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "cookie",
    "apikey",
    "api_key",
    "credential",
    "bearer",
    "basic",
];

static TRIGGER: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
    aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(TRIGGERS)
        .expect("a valid automaton")
});

/// True when no structural rule can match `text`: it is ASCII (the rules' `(?i)` folds
/// some non-ASCII letters to ASCII ones, the Kelvin sign to `k`) and holds none of the
/// [`TRIGGERS`]. Most evidence (a request line, a status, a 404 body) is such text, and
/// one scan then stands in for the five rules' passes (pinned by the fuzz property
/// `redaction_never_misses_a_structural_secret`).
fn nothing_structural(text: &str) -> bool {
    text.is_ascii() && !TRIGGER.is_match(text)
}

/// The structural rules (see the module documentation). Values already redacted stay
/// as they are.
pub fn structural(text: &str) -> String {
    if nothing_structural(text) {
        return text.to_string();
    }
    structural_rules(text)
}

/// [`structural`] without the shortcut.
pub fn structural_rules(text: &str) -> String {
    let keep = |v: &str| v.starts_with("[redacted:") || v.is_empty();
    let out = JWT.replace_all(text, "[redacted:jwt]");
    let out = JSON_FIELD.replace_all(&out, |c: &regex::Captures| {
        if keep(&c[2]) {
            c[0].to_string()
        } else {
            format!("{}[redacted:field]", &c[1])
        }
    });
    let out = KV_FIELD.replace_all(&out, |c: &regex::Captures| {
        if keep(&c[2]) {
            c[0].to_string()
        } else {
            format!("{}[redacted:field]", &c[1])
        }
    });
    let out = HEADER.replace_all(&out, |c: &regex::Captures| {
        // `Bearer [redacted:token b]` is already safe, and says more than `[redacted]`.
        let v = c[2].trim_end();
        let credential = v
            .split_once(char::is_whitespace)
            .filter(|(scheme, _)| {
                ["bearer", "basic"].contains(&scheme.to_ascii_lowercase().as_str())
            })
            .map_or(v, |(_, rest)| rest.trim());
        if keep(credential) && credential.ends_with(']') && !credential[1..].contains('[') {
            c[0].to_string()
        } else {
            format!("{}[redacted:header]", &c[1])
        }
    });
    let out = BEARER.replace_all(&out, |c: &regex::Captures| {
        if keep(&c[2]) {
            c[0].to_string()
        } else {
            format!("{}[redacted:credential]", &c[1])
        }
    });
    out.into_owned()
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

    #[test]
    fn a_password_is_redacted_only_where_it_stands_as_a_secret() {
        let r = Redactor::new();
        r.add_url_password(
            "database password",
            "postgres://postgres:postgres@db:5432/app",
        );
        for (case, text, want) in [
            (
                "a role name in SQL",
                "REVOKE postgres FROM user_a;",
                "REVOKE postgres FROM user_a;",
            ),
            (
                "an identifier",
                "owner postgres, schema public",
                "owner postgres, schema public",
            ),
            (
                "a connection URL",
                "postgres://postgres:postgres@db:5432/app",
                "postgres://postgres:[redacted:database password]@db:5432/app",
            ),
            (
                "a key/value string",
                "host=db user=postgres password=postgres",
                "host=db user=postgres password=[redacted:database password]",
            ),
            (
                "a JSON field",
                r#"{"user":"postgres","password":"postgres"}"#,
                r#"{"user":"postgres","password":"[redacted:database password]"}"#,
            ),
        ] {
            assert_eq!(r.redact(text), want, "{case}");
        }
        assert!(!r.contains_password_as_secret("REVOKE postgres FROM user_a;"));
        assert!(r.contains_password_as_secret("password=postgres"));
    }

    #[test]
    fn structural_rules_need_no_registration() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl";
        let r = Redactor::new();
        for (case, text, gone) in [
            ("a JWT anywhere", format!("got {jwt} back"), jwt.to_string()),
            (
                "an access_token field",
                r#"{"access_token":"opaque-value-123","org":{"id":"o1"}}"#.to_string(),
                "opaque-value-123".into(),
            ),
            (
                "a field cut off in an excerpt",
                r#"{"refresh_token":"opaque-value-12"#.to_string(),
                "opaque-value-12".into(),
            ),
            (
                "a password field",
                r#"{"password": "hunter2hunter2"}"#.to_string(),
                "hunter2hunter2".into(),
            ),
            (
                "a query parameter",
                "GET /cb?access_token=qwertyuiop&x=1".to_string(),
                "qwertyuiop".into(),
            ),
            (
                "an Authorization header",
                "Authorization: Basic dXNlcjpwYXNz".to_string(),
                "dXNlcjpwYXNz".into(),
            ),
            (
                "a Set-Cookie header",
                "set-cookie: sid=abcdef123456; Path=/".to_string(),
                "abcdef123456".into(),
            ),
            (
                "a bearer credential",
                "sent Bearer opaque.credential.value".to_string(),
                "opaque.credential.value".into(),
            ),
        ] {
            let out = r.redact(&text);
            assert!(!out.contains(&gone), "{case}: {out}");
            assert!(out.contains("[redacted:"), "{case}: {out}");
        }
        // Ordinary text is left alone.
        let plain = r#"{"id":"b6f5","name":"Acme run42","token_count":3} REVOKE x FROM y"#;
        assert_eq!(r.redact(plain), plain);
    }

    /// A small deterministic generator (xorshift): the property test needs variety, not
    /// cryptographic randomness, and must be reproducible from its seed.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[(self.next() % xs.len() as u64) as usize]
        }
        fn word(&mut self, n: usize, alphabet: &[u8]) -> String {
            (0..n)
                .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
                .collect()
        }
    }

    #[test]
    fn no_generated_secret_survives_redaction() {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let names = [
            "token",
            "access_token",
            "refreshToken",
            "id_token",
            "password",
            "client_secret",
            "secret",
            "Authorization",
            "cookie",
            "api_key",
            "session_token",
        ];
        let plain = ["id", "name", "org", "email", "created_at", "items", "text"];
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for round in 0..2000 {
            let r = Redactor::new();
            let mut secrets = Vec::new();
            let mut fields = Vec::new();
            for _ in 0..(1 + g.next() % 6) {
                if g.next().is_multiple_of(2) {
                    let n = 12 + (g.next() % 20) as usize;
                    let v = g.word(n, ALNUM);
                    fields.push(format!("\"{}\": \"{v}\"", g.pick(&names)));
                    secrets.push(v);
                } else {
                    let n = 3 + (g.next() % 10) as usize;
                    let v = g.word(n, ALNUM);
                    fields.push(format!("\"{}\":\"{v}\"", g.pick(&plain)));
                }
            }
            let jwt = format!(
                "eyJ{}.{}.{}",
                g.word(20, B64),
                g.word(30, B64),
                g.word(43, B64)
            );
            secrets.push(jwt.clone());
            fields.push(format!(
                "\"{}\": {{\"note\": \"see {jwt} here\"}}",
                g.pick(&plain)
            ));
            let body = format!(
                "{{{}}}",
                fields.join(if g.next().is_multiple_of(2) {
                    ","
                } else {
                    ", "
                })
            );
            // A registered capture and a database password, as a run registers them.
            let captured = g.word(16, ALNUM);
            r.add("token a", &captured);
            secrets.push(captured.clone());
            let pw = g.word(10, ALNUM);
            r.add_url_password("database password", &format!("postgres://u:{pw}@h/db"));
            let outputs = [
                body.clone(),
                // An evidence excerpt cut short, as `show` does.
                body.chars().take(body.chars().count() * 2 / 3).collect(),
                format!(
                    "provision `sign up`: capture `token`: `$.acces_token` matched nothing\nanswer: 201 application/json {body}"
                ),
                format!(
                    "Authorization: Bearer {captured}\nCookie: sid={}",
                    g.word(20, ALNUM)
                ),
                format!("cannot connect to postgres://u:{pw}@h/db (password={pw})"),
            ];
            for out in outputs {
                let red = r.redact(&out);
                for s in &secrets {
                    assert!(!red.contains(s.as_str()), "round {round}: {s} in {red}");
                }
                assert!(
                    !red.contains(&format!(":{pw}@")) && !red.contains(&format!("={pw}")),
                    "round {round}: {red}"
                );
            }
        }
    }
}
