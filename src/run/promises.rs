//! The promise stage (run stage: after setup, before the checks — so attacks cannot change
//! what is judged — and before teardown, which removes the rows read): the `promises:`
//! section handed to [`crate::promise`]. Transport first (for https targets), then HSTS
//! on an authenticated answer of A, secrets at rest through the probe connection, the
//! audit log's catalog rules and runtime rows, and the attestation compared with the
//! catalogs measured in the same run. Every result is emitted through the selection;
//! the ids produced are returned so a `--filter` naming one is not "unmatched".

use std::time::SystemTime;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::context::Preparer;
use super::emit::Emitter;
use super::http::{Prepared, Resp};
use super::options::Options;
use super::orgs::Tenants;
use super::verdict::Markers;
use crate::outcome::{CheckResult, Layer, Verdict};
use crate::plan::Selection;
use crate::promise::{at_rest, attestation, audit_log, redact_all, transport};
use crate::redact::Redactor;
use crate::suite::model::{Identity, Suite};
use crate::suite::promises::{Attestation, AuditLog, Promises};
use crate::suite::template::is_secret_name;

/// Where the promise checks report to, and what they may use.
struct Stage<'s, 'e, 'x> {
    suite: &'s Suite,
    t: &'s Tenants,
    redactor: &'s Redactor,
    selection: &'s Selection,
    em: &'e mut Emitter<'x>,
    ids: Vec<String>,
}

impl Stage<'_, '_, '_> {
    /// Redacts and emits the selected results; remembers every id.
    fn emit(&mut self, mut results: Vec<CheckResult>) {
        redact_all(&mut results, self.redactor);
        for r in results {
            self.ids.push(r.id.clone());
            if self.selection.keeps(&r.id, &r.check) {
                self.em.result(r);
            }
        }
    }

    /// One `error` result `promise.{promise}.{claim}`.
    fn error(&mut self, promise: &str, claim: &str, layer: Layer, why: String) {
        let r = CheckResult::new(
            format!("promise.{promise}.{claim}"),
            format!("promise.{promise}"),
            claim,
            layer,
            Verdict::Error,
            why,
        );
        self.emit(vec![r]);
    }

    /// `GET url` as `who` with the run's client; anything but a 2xx answer is an error
    /// (fail closed: a failing answer proves nothing).
    async fn get_as(&self, who: Identity, url: &str) -> Result<Resp, String> {
        let mut headers = Vec::new();
        if who != Identity::Anon {
            let value = self
                .t
                .auth
                .value
                .render(&self.t.values.lookup(Some(who), None, None))
                .map_err(|e| format!("cannot render the auth value of {}: {e}", who.as_str()))?;
            headers.push((self.t.auth.header.clone(), value));
        }
        let p = Prepared {
            method: "GET".into(),
            url: url.to_string(),
            headers,
            query: Vec::new(),
            body: None,
            graphql: None,
        };
        self.send(&p).await
    }

    async fn send(&self, p: &Prepared) -> Result<Resp, String> {
        let what = format!("{} as the request was sent", p.line());
        let r = self
            .t
            .http
            .send(p)
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        if !r.is_success() {
            return Err(format!("{what}: status {} ({})", r.status, r.excerpt(200)));
        }
        Ok(r)
    }
}

/// Runs every promise the suite opts into; returns the ids of all results produced
/// (selected or not). `markers` are A's (what B must never see).
pub(crate) async fn run(
    suite: &Suite,
    t: &Tenants,
    markers: &Markers,
    opts: &Options,
    selection: &Selection,
    redactor: &Redactor,
    em: &mut Emitter<'_>,
) -> Vec<String> {
    let Some(p) = suite.promises.as_ref() else {
        return Vec::new();
    };
    em.phase("checking the vendor's promises");
    let mut st = Stage {
        suite,
        t,
        redactor,
        selection,
        em,
        ids: Vec::new(),
    };
    transport_stage(&mut st, p, opts).await;
    secrets_stage(&mut st, p).await;
    if let Some(al) = &p.audit_log {
        audit_stage(&mut st, al, markers).await;
    }
    if let Some(at) = &p.attestation {
        attestation_stage(&mut st, at, markers).await;
    }
    st.ids
}

/// `promises.transport`: handshakes against the base URL, then HSTS on A's
/// authenticated answer (the identity endpoint, else the base URL).
async fn transport_stage(st: &mut Stage<'_, '_, '_>, p: &Promises, opts: &Options) {
    let Some(tp) = &p.transport else { return };
    let policy = transport::TransportPolicy::from(tp);
    let base = st.t.http.absolute("/");
    let trust = match trust_of(st.suite, opts) {
        Ok(t) => t,
        Err(e) => return st.error("transport", "tls", Layer::Http, e),
    };
    let results = transport::check(&base, &policy, &trust, SystemTime::now()).await;
    let plain = results.iter().any(|r| r.id == "promise.transport.tls");
    st.emit(results);
    let Some(min_age) = policy.hsts_min_max_age else {
        return;
    };
    if plain {
        // Said once already (`promise.transport.tls`); HSTS means nothing over http.
        return;
    }
    let answer = match st.suite.orgs.as_ref().and_then(|o| o.identity.as_ref()) {
        Some(identity) => {
            let prep = Preparer {
                values: &st.t.values,
                auth: &st.t.auth,
                redactor: st.redactor,
            };
            match prep.prepare(
                &identity.request,
                Identity::A,
                Some(Identity::A),
                None,
                None,
            ) {
                Ok(p) => st.send(&p).await,
                Err(e) => Err(e.to_string()),
            }
        }
        None => st.get_as(Identity::A, "/").await,
    };
    match answer {
        Ok(resp) => {
            let https = base.starts_with("https://");
            let r = transport::check_hsts(&header_map(&resp), https, min_age);
            st.emit(vec![r]);
        }
        Err(e) => st.error(
            "transport",
            "hsts",
            Layer::Http,
            format!("no authenticated answer of A to judge HSTS on: {e}"),
        ),
    }
}

/// The trust the transport check judges the chain against: the system roots plus
/// `target.tls.ca`.
fn trust_of(suite: &Suite, opts: &Options) -> Result<transport::Trust, String> {
    let ca = suite
        .target
        .as_ref()
        .and_then(|t| t.tls.as_ref())
        .and_then(|t| t.ca.as_ref());
    match ca {
        Some(ca) if !opts.insecure => {
            let path = ca.to_string();
            let pem = std::fs::read(&path)
                .map_err(|e| format!("cannot read target.tls.ca `{path}`: {e}"))?;
            transport::Trust::with_ca_pem(&pem).map_err(|e| e.to_string())
        }
        _ => Ok(transport::Trust::system()),
    }
}

/// The answer's headers as a [`HeaderMap`] (unparsable ones are left out).
fn header_map(resp: &Resp) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in &resp.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.append(k, v);
        }
    }
    h
}

/// `promises.secrets_at_rest`: each captured credential searched for as A's tenant
/// through the probe connection (the application's role).
async fn secrets_stage(st: &mut Stage<'_, '_, '_>, p: &Promises) {
    for s in &p.secrets_at_rest {
        let name = s.capture.value.as_str();
        let obj = format!("secrets_at_rest.{name}");
        let Some(plaintext) = st.t.values.a.captures.get(name) else {
            st.error(
                &obj,
                "search",
                Layer::Probe,
                format!("org A has no capture `{name}`: the seed step that creates the credential did not capture it"),
            );
            continue;
        };
        st.redactor.add(&format!("capture {name}"), plaintext);
        let db = st.suite.database.as_ref();
        let Some(probe) = db.and_then(|d| d.probe.as_ref()) else {
            st.error(
                &obj,
                "search",
                Layer::Probe,
                "secrets at rest need `database.probe` (the application role's URL)".into(),
            );
            continue;
        };
        let a_org = st.t.a_org.clone().unwrap_or_default();
        let setting = db.and_then(|d| d.tenant_setting.clone());
        let search = at_rest::SecretSearch {
            name,
            plaintext,
            tables: &s.tables,
            tenant: setting.as_deref().map(|setting| at_rest::Tenant {
                setting,
                value: &a_org,
            }),
            limits: s.limits(),
        };
        let results = at_rest::search_url(&probe.url.to_string(), &search, st.redactor).await;
        st.emit(results);
    }
}

/// `promises.audit_log`: the catalog rules (with `database.url` and `app_role`) and
/// the runtime rule (with `endpoint`).
async fn audit_stage(st: &mut Stage<'_, '_, '_>, al: &AuditLog, markers: &Markers) {
    let db = st.suite.database.as_ref();
    if let (Some(d), Some(role)) = (db, db.and_then(|d| d.app_role.as_ref())) {
        let results = audit_log::check_catalog_url(
            &d.url.to_string(),
            &al.tables,
            &role.to_string(),
            st.redactor,
        )
        .await;
        st.emit(results);
    }
    let Some(endpoint) = &al.endpoint else { return };
    let rows_path = al.rows.as_ref().map(|r| r.value.as_str());
    let mut rows = Vec::new();
    for who in [Identity::A, Identity::B] {
        let got = st
            .get_as(who, &endpoint.value)
            .await
            .and_then(|r| r.json().ok_or_else(|| "the answer is not JSON".to_string()))
            .and_then(|v| audit_log::rows_at(&v, rows_path));
        match got {
            Ok(r) => rows.push(r),
            Err(e) => {
                return st.error(
                    "audit_log",
                    "endpoint",
                    Layer::Http,
                    format!("reading the audit log as {} failed: {e}", who.as_str()),
                );
            }
        }
    }
    // `recorded` may look for any id A's step captured; `isolated` only for those that
    // are A's markers (a value inside one of B's own, e.g. `reader-…` in `b-reader-…`,
    // is dropped as a marker and would prove nothing when B's rows hold it).
    let writes = seeded_writes(st.suite, st.t, None);
    let distinctive = seeded_writes(st.suite, st.t, Some(markers));
    let recorded = audit_log::judge_runtime(&writes, &rows[0], &rows[1]);
    let isolated = audit_log::judge_runtime(&distinctive, &rows[0], &rows[1]);
    st.emit(
        recorded
            .into_iter()
            .filter(|r| r.id.ends_with(".recorded"))
            .chain(isolated.into_iter().filter(|r| r.id.ends_with(".isolated")))
            .collect(),
    );
}

/// A's seed steps and the ids they captured (never a secret-named capture, never a
/// credential searched for at rest; only A's markers when `markers` is given).
fn seeded_writes(
    suite: &Suite,
    t: &Tenants,
    markers: Option<&Markers>,
) -> Vec<audit_log::SeededWrite> {
    let credentials: Vec<&str> = suite
        .promises
        .iter()
        .flat_map(|p| p.secrets_at_rest.iter().map(|s| s.capture.value.as_str()))
        .collect();
    suite
        .seed
        .iter()
        .enumerate()
        .filter(|(_, s)| s.as_.is_none_or(|a| a == Identity::A))
        .map(|(i, s)| audit_log::SeededWrite {
            step: s.name.clone().unwrap_or_else(|| format!("seed {}", i + 1)),
            ids: s
                .capture
                .0
                .iter()
                .filter(|(k, _)| {
                    !is_secret_name(&k.name) && !credentials.contains(&k.name.as_str())
                })
                .filter_map(|(k, _)| t.values.a.captures.get(&k.name).cloned())
                .filter(|v| markers.is_none_or(|m| m.contains(v)))
                .collect(),
        })
        .collect()
}

/// `promises.attestation`: fetched as its reader, compared with the catalogs measured
/// now, and searched for the other org's markers.
async fn attestation_stage(st: &mut Stage<'_, '_, '_>, at: &Attestation, markers: &Markers) {
    let viewer = at.as_.unwrap_or(Identity::B);
    let answer = match st
        .get_as(viewer, &at.url.value)
        .await
        .and_then(|r| r.json().ok_or_else(|| "the answer is not JSON".to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            return st.error(
                "attestation",
                "fetch",
                Layer::Http,
                format!(
                    "fetching the attestation as {} failed: {e}",
                    viewer.as_str()
                ),
            );
        }
    };
    let foreign: Vec<String> = match viewer {
        Identity::A => b_markers(st.t),
        _ => markers.to_vec(),
    };
    let leak = attestation::check_row_contents(&answer, &foreign, viewer.as_str());
    match measured(st.suite).await {
        Ok(m) => st.emit(attestation::compare(&answer, &at.mapping(), &m)),
        Err(e) => st.error("attestation", "measure", Layer::Database, e),
    }
    st.emit(vec![leak]);
}

/// B's captured values (for an attestation A reads), minus its token.
fn b_markers(t: &Tenants) -> Vec<String> {
    t.values
        .b
        .captures
        .iter()
        .filter(|(k, v)| !is_secret_name(k) && v.len() >= 6)
        .map(|(_, v)| v.clone())
        .collect()
}

/// The catalog facts of the suite's tables (`database.tables`; else every table), read
/// on a read-only connection to `database.url`.
async fn measured(suite: &Suite) -> Result<attestation::Measured, String> {
    let Some(db) = &suite.database else {
        return Err(
            "the attestation is compared with the catalogs: give `database.url`".to_string(),
        );
    };
    let client = crate::db::read_only_client(&db.url.to_string())
        .await
        .map_err(|e| e.to_string())?;
    attestation::measure(&client, &db.tables)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_map_keeps_repeated_headers() {
        let resp = Resp {
            status: 200,
            headers: vec![
                ("Strict-Transport-Security".into(), "max-age=1".into()),
                ("strict-transport-security".into(), "max-age=2".into()),
                ("bad header".into(), "x".into()),
            ],
            body: String::new(),
            elapsed: std::time::Duration::ZERO,
        };
        let h = header_map(&resp);
        let v: Vec<_> = h.get_all("strict-transport-security").iter().collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0], "max-age=1");
    }
}
