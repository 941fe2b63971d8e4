//! The secrets-at-rest promise (run → after seeding → **promise checks: secrets at
//! rest**, `Layer::Probe` → results): "API keys are stored only as salted one-way
//! hashes, never in plain text".
//!
//! [`search`] connects as the tenant (the application's own role, never one that
//! bypasses RLS), in ONE `READ ONLY` transaction that always ends in `ROLLBACK`, with
//! the tenant set transaction-locally. It reads every visible text-like, JSON and
//! `bytea` column of the tenant's tables (bounded by rows per table and by time) and
//! looks, in Rust, for the credential's plaintext and for its unsalted digests (MD5,
//! SHA-1, SHA-256; hex in either case, base64, base64url and, in `bytea`, raw bytes).
//! A value shaped like a salted PHC / modular-crypt hash (argon2, bcrypt, scrypt,
//! PBKDF2) in a column named like the credential is reported as such. Nothing is ever
//! printed but table and column names and counts: the plaintext and every digest of it
//! are registered with the [`Redactor`] first.

use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use md5::Digest;
use tokio_postgres::Client;

use super::{PromiseError, pg_message, qualified, redact_all, result};
use crate::outcome::{CheckResult, Layer, Verdict};
use crate::redact::Redactor;

/// How much one search may read.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Rows read per table; a table with more is reported as not fully searched.
    pub max_rows_per_table: u32,
    /// Wall time for the whole search (also the statement timeout).
    pub max_duration: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rows_per_table: 10_000,
            max_duration: Duration::from_secs(30),
        }
    }
}

/// The tenant to set before searching: `set_config(setting, value, true)`.
#[derive(Clone, Copy, Debug)]
pub struct Tenant<'a> {
    /// The setting that carries the tenant, e.g. `app.current_org_id`.
    pub setting: &'a str,
    /// The tenant's id (org A's, for a credential A created).
    pub value: &'a str,
}

/// One credential to look for (`promises.secrets_at_rest[i]`). `Debug` hides the
/// plaintext.
#[derive(Clone, Copy)]
pub struct SecretSearch<'a> {
    /// The capture's name (`api_key`): names the results and the salted-hash column.
    pub name: &'a str,
    /// The credential as the API returned it once. A secret.
    pub plaintext: &'a str,
    /// `schema.table` or `table` (in `public`); empty: every table the role can read
    /// outside the system schemas.
    pub tables: &'a [String],
    /// The tenant to set, if the schema uses a tenant setting.
    pub tenant: Option<Tenant<'a>>,
    /// Bounds.
    pub limits: Limits,
}

impl std::fmt::Debug for SecretSearch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSearch")
            .field("name", &self.name)
            .field("plaintext", &"****")
            .field("tables", &self.tables)
            .field("tenant", &self.tenant)
            .field("limits", &self.limits)
            .finish()
    }
}

/// A form the credential could be stored in.
struct Needle {
    form: String,
    text: Option<String>,
    /// Matched in lower-cased text (hex digests).
    case_insensitive: bool,
    bytes: Vec<u8>,
    digest: bool,
}

/// The plaintext and every unsalted digest encoding of it.
fn needles(plaintext: &str) -> Vec<Needle> {
    let mut out = vec![Needle {
        form: "plaintext".into(),
        text: Some(plaintext.to_string()),
        case_insensitive: false,
        bytes: plaintext.as_bytes().to_vec(),
        digest: false,
    }];
    let p = plaintext.as_bytes();
    let digests: [(&str, Vec<u8>); 3] = [
        ("MD5", md5::Md5::digest(p).to_vec()),
        (
            "SHA-1",
            digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, p)
                .as_ref()
                .to_vec(),
        ),
        (
            "SHA-256",
            digest::digest(&digest::SHA256, p).as_ref().to_vec(),
        ),
    ];
    for (alg, raw) in digests {
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        // Unpadded base64 also matches the padded form (it is its prefix).
        for (enc, text, ci) in [
            ("hex", hex, true),
            ("base64", STANDARD_NO_PAD.encode(&raw), false),
            ("base64url", URL_SAFE_NO_PAD.encode(&raw), false),
        ] {
            out.push(Needle {
                form: format!("unsalted {alg} ({enc})"),
                bytes: text.as_bytes().to_vec(),
                text: Some(text),
                case_insensitive: ci,
                digest: true,
            });
        }
        out.push(Needle {
            form: format!("unsalted {alg} (raw bytes)"),
            text: None,
            case_insensitive: false,
            bytes: raw,
            digest: true,
        });
    }
    out
}

/// A visible column.
struct Column {
    schema: String,
    table: String,
    name: String,
    bytea: bool,
}

/// One finding: where, in which form, how many rows.
struct Hit {
    place: String,
    form: String,
    rows: usize,
    digest: bool,
}

/// What the search read.
#[derive(Default)]
struct Seen {
    columns: usize,
    tables: usize,
    rows: usize,
    truncated: Vec<String>,
    not_read: Vec<String>,
    hits: Vec<Hit>,
    salted: Vec<String>,
}

/// Searches as the tenant for `s.plaintext` and its unsalted digests; three results:
/// `promise.secrets_at_rest.NAME.plaintext`, `.unsalted_digest`, `.salted_hash`.
/// `client` must be connected as the application's role.
pub async fn search(
    client: &Client,
    s: &SecretSearch<'_>,
    redactor: &Redactor,
) -> Vec<CheckResult> {
    let started = Instant::now();
    let needles = needles(s.plaintext);
    redactor.add(&format!("capture {}", s.name), s.plaintext);
    for n in &needles {
        if let Some(t) = &n.text {
            redactor.add(&format!("{} of capture {}", n.form, s.name), t);
        }
    }
    let outcome = async {
        check_role(client).await?;
        let r = scan(client, s, &needles, started).await;
        let _ = client.batch_execute("ROLLBACK").await;
        r
    }
    .await;
    let mut out = match outcome {
        Ok(seen) => judge(s.name, &seen, s.limits.max_rows_per_table),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            vec![result(
                &format!("secrets_at_rest.{}", s.name),
                "search",
                Layer::Probe,
                Verdict::Error,
                e.to_string(),
            )]
        }
    };
    for r in &mut out {
        r.duration = started.elapsed();
    }
    redact_all(&mut out, redactor);
    out
}

/// [`search`] on a new connection to `url` (the application role's URL; TLS as its
/// `sslmode` says).
pub async fn search_url(url: &str, s: &SecretSearch<'_>, redactor: &Redactor) -> Vec<CheckResult> {
    redactor.add_url_password("probe URL password", url);
    match crate::db::catalog::connect(url, "probe URL").await {
        Ok(client) => search(&client, s, redactor).await,
        Err(e) => {
            let mut r = vec![result(
                &format!("secrets_at_rest.{}", s.name),
                "search",
                Layer::Probe,
                Verdict::Error,
                e.to_string(),
            )];
            redact_all(&mut r, redactor);
            r
        }
    }
}

async fn check_role(client: &Client) -> Result<(), PromiseError> {
    let row = client
        .query_one(
            "SELECT current_user::text, r.rolsuper, r.rolbypassrls FROM pg_roles r \
             WHERE r.rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| PromiseError::query("probe role", &e))?;
    let (role, sup, bypass): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
    if sup || bypass {
        return Err(PromiseError::BypassesRls {
            role,
            how: if sup { "a superuser" } else { "BYPASSRLS" },
        });
    }
    Ok(())
}

const COLUMNS_SQL: &str = "\
SELECT n.nspname::text, c.relname::text, a.attname::text, t.typname = 'bytea' \
FROM pg_class c \
JOIN pg_namespace n ON n.oid = c.relnamespace \
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
JOIN pg_type t ON t.oid = a.atttypid \
WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition \
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
  AND has_schema_privilege(n.oid, 'USAGE') \
  AND has_column_privilege(c.oid, a.attnum, 'SELECT') \
  AND (t.typcategory IN ('S', 'A') OR t.typname IN ('bytea', 'json', 'jsonb')) \
ORDER BY 1, 2, a.attnum";

async fn scan(
    client: &Client,
    s: &SecretSearch<'_>,
    needles: &[Needle],
    started: Instant,
) -> Result<Seen, PromiseError> {
    let ms = s.limits.max_duration.as_millis().max(1);
    client
        .batch_execute(&format!(
            "BEGIN; SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = {ms}; \
             SET LOCAL lock_timeout = 3000"
        ))
        .await
        .map_err(|e| PromiseError::query("begin", &e))?;
    if let Some(t) = s.tenant {
        client
            .execute("SELECT set_config($1, $2, true)", &[&t.setting, &t.value])
            .await
            .map_err(|e| PromiseError::query("set tenant", &e))?;
    }
    let rows = client
        .query(COLUMNS_SQL, &[])
        .await
        .map_err(|e| PromiseError::query("list columns", &e))?;
    let mut cols: Vec<Column> = rows
        .iter()
        .map(|r| Column {
            schema: r.get(0),
            table: r.get(1),
            name: r.get(2),
            bytea: r.get(3),
        })
        .collect();
    if !s.tables.is_empty() {
        let wanted: Vec<(String, String)> =
            s.tables.iter().map(|t| super::split_table(t)).collect();
        let missing: Vec<&String> = s
            .tables
            .iter()
            .zip(&wanted)
            .filter(|(_, (sc, t))| !cols.iter().any(|c| &c.schema == sc && &c.table == t))
            .map(|(n, _)| n)
            .collect();
        if !missing.is_empty() {
            return Err(PromiseError::Query {
                step: "find the named tables",
                reason: format!(
                    "{} not found, or no text, JSON or bytea column of it is readable by this role",
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        cols.retain(|c| {
            wanted
                .iter()
                .any(|(sc, t)| &c.schema == sc && &c.table == t)
        });
    }
    let mut seen = Seen::default();
    let mut i = 0;
    while i < cols.len() {
        let j = cols[i..]
            .iter()
            .position(|c| c.schema != cols[i].schema || c.table != cols[i].table)
            .map_or(cols.len(), |p| i + p);
        let table = &cols[i..j];
        let place = format!("{}.{}", table[0].schema, table[0].table);
        if started.elapsed() >= s.limits.max_duration {
            seen.not_read.push(format!("{place} (time limit)"));
        } else {
            scan_table(client, s, needles, table, &place, &mut seen).await?;
        }
        i = j;
    }
    Ok(seen)
}

async fn scan_table(
    client: &Client,
    s: &SecretSearch<'_>,
    needles: &[Needle],
    table: &[Column],
    place: &str,
    seen: &mut Seen,
) -> Result<(), PromiseError> {
    let list: Vec<String> = table
        .iter()
        .map(|c| {
            let q = super::quote_ident(&c.name);
            if c.bytea { q } else { format!("{q}::text") }
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM {} LIMIT {}",
        list.join(", "),
        qualified(&table[0].schema, &table[0].table),
        u64::from(s.limits.max_rows_per_table) + 1
    );
    client
        .batch_execute("SAVEPOINT tenantgate_secret")
        .await
        .map_err(|e| PromiseError::query("savepoint", &e))?;
    let rows = client.query(&sql, &[]).await;
    client
        .batch_execute("ROLLBACK TO SAVEPOINT tenantgate_secret")
        .await
        .map_err(|e| PromiseError::query("rollback to savepoint", &e))?;
    let rows = match rows {
        Ok(r) => r,
        Err(e) if e.is_closed() => return Err(PromiseError::query("read table", &e)),
        Err(e) => {
            seen.not_read.push(format!("{place} ({})", pg_message(&e)));
            return Ok(());
        }
    };
    seen.tables += 1;
    seen.columns += table.len();
    let limit = s.limits.max_rows_per_table as usize;
    if rows.len() > limit {
        seen.truncated
            .push(format!("{place} (more than {limit} rows)"));
    }
    let rows = &rows[..rows.len().min(limit)];
    seen.rows += rows.len();
    for (k, c) in table.iter().enumerate() {
        let values: Vec<Vec<u8>> = rows
            .iter()
            .filter_map(|r| {
                if c.bytea {
                    r.try_get::<_, Option<Vec<u8>>>(k).ok().flatten()
                } else {
                    r.try_get::<_, Option<String>>(k)
                        .ok()
                        .flatten()
                        .map(String::into_bytes)
                }
            })
            .collect();
        let at = format!("{place}.{}", c.name);
        for n in needles {
            if n.text.is_none() && !c.bytea {
                continue;
            }
            let count = values.iter().filter(|v| matches(v, n)).count();
            if count > 0 {
                seen.hits.push(Hit {
                    place: at.clone(),
                    form: n.form.clone(),
                    rows: count,
                    digest: n.digest,
                });
            }
        }
        if named_like_credential(&c.name, s.name) {
            let kinds: Vec<&str> = values
                .iter()
                .filter_map(|v| std::str::from_utf8(v).ok().and_then(salted_hash_kind))
                .collect();
            if let Some(k) = kinds.first() {
                seen.salted
                    .push(format!("{at}: {} row(s) hold {k} hashes", kinds.len()));
            }
        }
    }
    Ok(())
}

fn matches(hay: &[u8], n: &Needle) -> bool {
    if n.bytes.is_empty() || hay.len() < n.bytes.len() {
        return false;
    }
    if n.case_insensitive {
        let lower = hay.to_ascii_lowercase();
        return lower
            .windows(n.bytes.len())
            .any(|w| w == n.bytes.as_slice());
    }
    hay.windows(n.bytes.len()).any(|w| w == n.bytes.as_slice())
}

/// A column that holds the credential or its hash: named after the capture, or a
/// usual credential word.
fn named_like_credential(column: &str, capture: &str) -> bool {
    let c = column.to_ascii_lowercase();
    let cap = capture.to_ascii_lowercase();
    c.contains(&cap)
        || cap
            .split('_')
            .filter(|p| p.len() >= 3)
            .any(|p| c.contains(p))
        || [
            "key",
            "secret",
            "token",
            "password",
            "passwd",
            "hash",
            "digest",
            "credential",
        ]
        .iter()
        .any(|w| c.contains(w))
}

/// The algorithm of a salted password-hash string (PHC or modular crypt), or `None`.
pub fn salted_hash_kind(v: &str) -> Option<&'static str> {
    let v = v.trim();
    let parts: Vec<&str> = v.split('$').collect();
    // `$id$...`: parts[0] is empty.
    if parts.first() != Some(&"") || parts.len() < 3 {
        return django_pbkdf2(v);
    }
    let id = parts[1];
    let nonempty = |i: usize| parts.get(i).is_some_and(|p| !p.is_empty());
    match id {
        // $argon2id$v=19$m=..,t=..,p=..$SALT$HASH (the v= part is optional)
        "argon2id" | "argon2i" | "argon2d" => {
            let n = parts.len();
            (n >= 5 && nonempty(n - 2) && nonempty(n - 1)).then_some("argon2")
        }
        // $2b$12$ + 22 chars of salt + 31 of hash
        "2a" | "2b" | "2y" | "2x" => (parts.len() == 4 && parts[3].len() == 53).then_some("bcrypt"),
        // $scrypt$ln=..,r=..,p=..$SALT$HASH
        "scrypt" => (parts.len() >= 5 && nonempty(3) && nonempty(4)).then_some("scrypt"),
        // $7$ + params and salt + $ + hash
        "7" => (parts.len() == 4 && parts[2].len() > 11 && nonempty(3)).then_some("scrypt"),
        // $pbkdf2-sha256$i=..$SALT$HASH or $pbkdf2-sha256$ROUNDS$SALT$HASH
        x if x.starts_with("pbkdf2") => {
            (parts.len() >= 5 && nonempty(3) && nonempty(4)).then_some("PBKDF2")
        }
        _ => None,
    }
}

/// Django's `pbkdf2_sha256$ITER$SALT$HASH`.
fn django_pbkdf2(v: &str) -> Option<&'static str> {
    let p: Vec<&str> = v.split('$').collect();
    (p.len() == 4
        && p[0].starts_with("pbkdf2_")
        && p[1].bytes().all(|b| b.is_ascii_digit())
        && !p[2].is_empty()
        && !p[3].is_empty())
    .then_some("PBKDF2")
}

fn judge(name: &str, seen: &Seen, max_rows: u32) -> Vec<CheckResult> {
    let promise = format!("secrets_at_rest.{name}");
    let searched = format!(
        "{} column(s) of {} table(s), {} row(s) read as the tenant (at most {max_rows} per table)",
        seen.columns, seen.tables, seen.rows
    );
    let mut bounded = seen.truncated.clone();
    bounded.extend(seen.not_read.iter().cloned());
    if seen.rows == 0 && seen.hits.is_empty() {
        let why = format!(
            "the probe saw no row in {} readable column(s): nothing to search (was the credential created as this tenant?)",
            seen.columns
        );
        let mut out: Vec<CheckResult> = ["plaintext", "unsalted_digest", "salted_hash"]
            .iter()
            .map(|claim| result(&promise, claim, Layer::Probe, Verdict::Skip, why.clone()))
            .collect();
        if !bounded.is_empty() {
            for r in &mut out {
                r.evidence.push(crate::outcome::Evidence::new(
                    "not searched",
                    bounded.join("\n"),
                ));
            }
        }
        return out;
    }
    let mut out = Vec::new();
    for (claim, digest, what) in [
        ("plaintext", false, "the plaintext"),
        ("unsalted_digest", true, "an unsalted digest"),
    ] {
        let hits: Vec<String> = seen
            .hits
            .iter()
            .filter(|h| h.digest == digest)
            .map(|h| format!("{}: {}, {} row(s)", h.place, h.form, h.rows))
            .collect();
        let r = if !hits.is_empty() {
            result(
                &promise,
                claim,
                Layer::Probe,
                Verdict::Fail,
                format!("{what} of `{name}` is stored in {}", first_place(&hits)),
            )
            .with("found", hits.join("\n"))
            .with(
                "fix",
                "store only a salted one-way hash of the credential (argon2id, scrypt, bcrypt, PBKDF2)",
            )
        } else if !bounded.is_empty() {
            result(
                &promise,
                claim,
                Layer::Probe,
                Verdict::Error,
                format!("{what} was not found, but not every row was searched: unverified"),
            )
            .with("not searched", bounded.join("\n"))
        } else {
            result(
                &promise,
                claim,
                Layer::Probe,
                Verdict::Pass,
                format!("{what} of `{name}` is in no visible column"),
            )
        };
        out.push(r.with("searched", searched.clone()));
    }
    out.push(if seen.salted.is_empty() {
        result(
            &promise,
            "salted_hash",
            Layer::Probe,
            Verdict::Skip,
            format!("no salted hash recognised in a column named like `{name}`: where the credential is kept is unverified"),
        )
    } else {
        result(
            &promise,
            "salted_hash",
            Layer::Probe,
            Verdict::Pass,
            format!("salted hashes found: {}", seen.salted[0]),
        )
        .with("found", seen.salted.join("\n"))
        .with("note", "recognised by their format; that one of them is this credential's hash is not verified")
    }
    .with("searched", searched));
    out
}

fn first_place(hits: &[String]) -> String {
    hits[0].split(':').next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_salted_hashes() {
        for (v, k) in [
            (
                "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
                "argon2",
            ),
            (
                "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
                "bcrypt",
            ),
            (
                "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
                "scrypt",
            ),
            (
                "$pbkdf2-sha256$29000$N2bMWSvFmLOWEgKAMAaA8A$t4Vu9Y5G2JGy6hwk9kSwtVbzPiRA3eWYQvF2r8qZPQw",
                "PBKDF2",
            ),
            ("pbkdf2_sha256$600000$salt$aGFzaA==", "PBKDF2"),
        ] {
            assert_eq!(salted_hash_kind(v), Some(k), "{v}");
        }
        for v in [
            "5e884898da28047151d0e56f8dc62927",
            "$argon2id$v=19$m=1$$hash",
            "$2b$12$short",
            "plain",
        ] {
            assert_eq!(salted_hash_kind(v), None, "{v}");
        }
    }

    #[test]
    fn needles_cover_every_digest_form() {
        let n = needles("password");
        let forms: Vec<&str> = n.iter().map(|n| n.form.as_str()).collect();
        assert_eq!(n.len(), 1 + 3 * 4);
        assert!(forms.contains(&"unsalted SHA-256 (hex)"));
        let md5hex = n.iter().find(|n| n.form == "unsalted MD5 (hex)").unwrap();
        assert_eq!(
            md5hex.text.as_deref(),
            Some("5f4dcc3b5aa765d61d8327deb882cf99")
        );
        assert!(matches(b"X5F4DCC3B5AA765D61D8327DEB882CF99", md5hex));
        let sha1b64 = n
            .iter()
            .find(|n| n.form == "unsalted SHA-1 (base64)")
            .unwrap();
        assert!(matches(b"W6ph5Mm5Pz8GgiULbPgzG37mj9g=", sha1b64));
    }

    #[test]
    fn credential_columns() {
        assert!(named_like_credential("key_hash", "api_key"));
        assert!(named_like_credential("api_key", "api_key"));
        assert!(!named_like_credential("name", "api_key"));
    }

    #[test]
    fn debug_hides_the_plaintext() {
        let s = SecretSearch {
            name: "api_key",
            plaintext: "tg_live_abcdef",
            tables: &[],
            tenant: None,
            limits: Limits::default(),
        };
        assert!(!format!("{s:?}").contains("tg_live_abcdef"));
    }
}
