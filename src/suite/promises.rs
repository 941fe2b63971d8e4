//! The suite's `promises:` section (parse stage): the vendor's other isolation promises
//! a suite opts into — transport, secrets at rest, the audit log, the attestation
//! endpoint (checked by [`crate::promise`]). An extension of the version 1 format:
//! optional, and a suite without it means exactly what the contract says.
//!
//! [`validate`] is called once by the loader's semantic validation and adds located
//! diagnostics; the types here are plain serde models with locations.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::model::{Identity, Suite};
use super::template::Loc;
use crate::diag::Diagnostic;
use crate::promise::attestation::COUNT_NAMES;
use crate::promise::transport::TlsVersion;

/// `promises:`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Promises {
    /// TLS version, certificate window, HSTS.
    #[serde(default)]
    pub transport: Option<Transport>,
    /// Credentials whose plaintext must not be stored.
    #[serde(default)]
    pub secrets_at_rest: Vec<SecretAtRest>,
    /// The append-only, tenant-isolated audit log.
    #[serde(default)]
    pub audit_log: Option<AuditLog>,
    /// The target's own isolation attestation endpoint.
    #[serde(default)]
    pub attestation: Option<Attestation>,
}

/// `promises.transport:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transport {
    /// `"1.2"` or `"1.3"`: the lowest version the server may accept.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub min_tls: Option<Spanned<String>>,
    /// When set, `Strict-Transport-Security` must carry at least this `max-age`.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub hsts_max_age: Option<Spanned<u64>>,
    /// The certificate must stay valid this many days (default 14).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub cert_min_days: Option<Spanned<u32>>,
}

impl Transport {
    /// The parsed minimum, when given and valid.
    pub fn min_tls(&self) -> Option<TlsVersion> {
        self.min_tls
            .as_ref()
            .and_then(|s| TlsVersion::parse(&s.value))
    }
}

impl From<&Transport> for crate::promise::transport::TransportPolicy {
    fn from(t: &Transport) -> Self {
        let mut p = crate::promise::transport::TransportPolicy {
            min_tls: t.min_tls(),
            hsts_min_max_age: t.hsts_max_age.as_ref().map(|v| v.value),
            ..Default::default()
        };
        if let Some(d) = &t.cert_min_days {
            p.cert_min_days = d.value;
        }
        p
    }
}

impl SecretAtRest {
    /// The search bounds (`max_rows`, else the default).
    pub fn limits(&self) -> crate::promise::at_rest::Limits {
        let mut l = crate::promise::at_rest::Limits::default();
        if let Some(m) = &self.max_rows {
            l.max_rows_per_table = m.value;
        }
        l
    }
}

/// One `promises.secrets_at_rest[]` entry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretAtRest {
    /// The name of a seed capture (as A) holding the credential's plaintext.
    #[schemars(with = "String")]
    pub capture: Spanned<String>,
    /// Tables to search (`schema.table` or `table`); empty: every readable table.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Rows read per table (default 10000).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub max_rows: Option<Spanned<u32>>,
}

/// `promises.audit_log:`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditLog {
    /// The audit tables; empty: every table named `audit%`.
    #[serde(default)]
    pub tables: Vec<String>,
    /// The API's audit endpoint, read as A and as B after seeding (a path under
    /// `target.base_url`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub endpoint: Option<Spanned<String>>,
    /// JSONPath of the rows in the endpoint's answer (default: the answer, or its
    /// `items`/`data`/`rows`/`entries`/`events`/`results` array).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub rows: Option<Spanned<String>>,
}

/// `promises.attestation:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// The endpoint (a path under `target.base_url`).
    #[schemars(with = "String")]
    pub url: Spanned<String>,
    /// Who fetches it (default `b`); the other org's markers must not appear in it.
    #[serde(default, rename = "as")]
    pub as_: Option<Identity>,
    /// JSONPath of the per-table entries (default `$.tables`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub tables: Option<Spanned<String>>,
    /// Field of an entry naming the table (default `name`).
    #[serde(default)]
    pub name: Option<String>,
    /// Field of an entry claiming RLS is enabled (default `rls_enabled`).
    #[serde(default)]
    pub rls_enabled: Option<String>,
    /// Field of an entry claiming RLS is forced (default `rls_forced`).
    #[serde(default)]
    pub rls_forced: Option<String>,
    /// Count name → JSONPath (defaults `$.counts.NAME`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub counts: BTreeMap<String, Spanned<String>>,
}

impl Attestation {
    /// The mapping for [`crate::promise::attestation::compare`].
    pub fn mapping(&self) -> crate::promise::attestation::Mapping {
        let mut m = crate::promise::attestation::Mapping::default();
        if let Some(t) = &self.tables {
            m.tables = t.value.clone();
        }
        for (field, v) in [
            (&mut m.name, &self.name),
            (&mut m.rls_enabled, &self.rls_enabled),
            (&mut m.rls_forced, &self.rls_forced),
        ] {
            if let Some(v) = v {
                *field = v.clone();
            }
        }
        for (k, v) in &self.counts {
            m.counts.insert(k.clone(), v.value.clone());
        }
        m
    }
}

/// Checks the `promises:` section of `s`; every problem is located.
pub fn validate(file: &str, s: &Suite, diags: &mut Vec<Diagnostic>) {
    let Some(p) = &s.promises else { return };
    let at = |loc: Loc, msg: String, hint: &str| Diagnostic::at(file, loc, msg, Some(hint.into()));
    if let Some(t) = &p.transport
        && let Some(v) = &t.min_tls
        && TlsVersion::parse(&v.value).is_none()
    {
        diags.push(at(
            Loc::of(v),
            format!("`{}` is not a TLS version tenantgate can require", v.value),
            "write `min_tls: \"1.2\"` or `min_tls: \"1.3\"`",
        ));
    }
    let a_captures: Vec<&str> = s
        .seed
        .iter()
        .filter(|st| st.as_.is_none_or(|a| a == Identity::A))
        .flat_map(|st| st.capture.iter().map(|(k, _)| k.name.as_str()))
        .collect();
    let probe = s.database.as_ref().is_some_and(|d| d.probe.is_some());
    for e in &p.secrets_at_rest {
        if !a_captures.contains(&e.capture.value.as_str()) {
            diags.push(at(
                Loc::of(&e.capture),
                format!("`{}` is not captured by a seed step of org A", e.capture.value),
                "capture the credential's plaintext in a seed step (`capture: { api_key: $.key }`) and name that capture here",
            ));
        }
        if !probe {
            diags.push(at(
                Loc::of(&e.capture),
                "secrets_at_rest searches the database as the application's role, but the suite has no `database.probe`".into(),
                "add `database: { url: ..., probe: { url: ${APP_DATABASE_URL} } }`",
            ));
        }
        if let Some(m) = &e.max_rows
            && m.value == 0
        {
            diags.push(at(
                Loc::of(m),
                "max_rows is 0: nothing would be searched".into(),
                "leave it out (10000) or give a positive number",
            ));
        }
    }
    if let Some(a) = &p.audit_log {
        let needs_db = a.endpoint.is_none() || !a.tables.is_empty();
        if needs_db && s.database.as_ref().is_none_or(|d| d.app_role.is_none()) {
            diags.push(Diagnostic::file(
                file,
                "promises.audit_log's catalog rules need `database.url` and `database.app_role`",
                Some(
                    "add them to `database:`, or give only `endpoint:` for the runtime rule".into(),
                ),
            ));
        }
        if let Some(e) = &a.endpoint {
            check_path(file, e, "promises.audit_log.endpoint", diags);
        }
        if let Some(r) = &a.rows {
            check_jsonpath(file, r, diags);
        }
    }
    if let Some(a) = &p.attestation {
        check_path(file, &a.url, "promises.attestation.url", diags);
        if s.database.is_none() {
            diags.push(at(
                Loc::of(&a.url),
                "the attestation is compared with the database audit's measurement, but the suite has no `database:`".into(),
                "add a `database:` section (its url reads the catalogs)",
            ));
        }
        if let Some(t) = &a.tables {
            check_jsonpath(file, t, diags);
        }
        for (k, v) in &a.counts {
            if !COUNT_NAMES.contains(&k.as_str()) {
                diags.push(at(
                    Loc::of(v),
                    format!("`{k}` is not a count tenantgate measures"),
                    &format!("use one of {}", COUNT_NAMES.join(", ")),
                ));
            }
            check_jsonpath(file, v, diags);
        }
    }
}

fn check_path(file: &str, p: &Spanned<String>, key: &str, diags: &mut Vec<Diagnostic>) {
    let v = &p.value;
    if !(v.starts_with('/') || v.starts_with("https://") || v.starts_with("http://"))
        || v.contains("{{")
    {
        diags.push(Diagnostic::at(
            file,
            Loc::of(p),
            format!("{key} `{v}` is not a path"),
            Some(
                "write a path under target.base_url such as `/audit-log` (no placeholders)".into(),
            ),
        ));
    }
}

fn check_jsonpath(file: &str, p: &Spanned<String>, diags: &mut Vec<Diagnostic>) {
    if let Err(e) = serde_json_path::JsonPath::parse(&p.value) {
        diags.push(Diagnostic::at(
            file,
            Loc::of(p),
            format!("`{}` is not a JSONPath: {e}", p.value),
            Some("use RFC 9535 JSONPath such as `$.tables` or `$.counts.tables`".into()),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::redact::Redactor;
    use crate::suite::load_str;

    const BASE: &str = r#"
version: 1
name: promises
target: { base_url: "https://api.example" }
orgs:
  provision:
    - request: { method: POST, url: /orgs }
      capture: { token: $.token, org_id: $.id }
seed:
  - name: create api key
    request: { method: POST, url: /api-keys }
    capture: { api_key: $.key, key_id: $.id }
checks:
  - name: key invisible
    read: /api-keys/{{a.key_id}}
database:
  url: postgres://audit@db/app
  app_role: app
  probe: { url: postgres://app@db/app }
"#;

    fn load(extra: &str) -> Result<crate::suite::Loaded, String> {
        load_str("s.yaml", &format!("{BASE}{extra}"), &|_| None)
            .map_err(|e| e.render(&Redactor::new()))
    }

    fn errors(extra: &str) -> String {
        match load(extra) {
            Ok(_) => panic!("expected a load error"),
            Err(e) => e,
        }
    }

    #[test]
    fn the_documented_example_loads() {
        let l = load(
            r#"promises:
  transport: { min_tls: "1.3", hsts_max_age: 31536000, cert_min_days: 14 }
  secrets_at_rest:
    - { capture: api_key, tables: [public.api_keys] }
  audit_log: { tables: [public.audit_log], endpoint: /audit-log, rows: $.items }
  attestation:
    url: /.well-known/tenant-isolation
    as: b
    tables: $.tables
    counts: { tables_forced: $.summary.forced }
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let p = l.suite.promises.as_ref().unwrap();
        assert_eq!(
            p.transport.as_ref().unwrap().min_tls(),
            Some(crate::promise::transport::TlsVersion::Tls13)
        );
        let t: crate::promise::transport::TransportPolicy = p.transport.as_ref().unwrap().into();
        assert_eq!(
            (t.cert_min_days, t.hsts_min_max_age),
            (14, Some(31_536_000))
        );
        assert_eq!(p.secrets_at_rest[0].limits().max_rows_per_table, 10_000);
        let m = p.attestation.as_ref().unwrap().mapping();
        assert_eq!(m.counts["tables_forced"], "$.summary.forced");
        assert_eq!(m.counts["tables"], "$.counts.tables");
    }

    #[test]
    fn mistakes_are_located() {
        let e = errors(
            r#"promises:
  transport: { min_tls: "1.1" }
  secrets_at_rest: [ { capture: api_kee } ]
  attestation: { url: "well-known", counts: { rows: "$.x" } }
"#,
        );
        assert!(e.contains("`1.1` is not a TLS version"), "{e}");
        assert!(
            e.contains("`api_kee` is not captured by a seed step of org A"),
            "{e}"
        );
        assert!(e.contains("is not a path"), "{e}");
        assert!(e.contains("`rows` is not a count"), "{e}");
        assert!(e.contains("s.yaml:"), "{e}");
        let e = errors("promises: { transprot: {} }\n");
        assert!(e.contains("transprot"), "{e}");
    }
}
