//! The attestation promise (run → after the database audit → **promise checks:
//! attestation** → results, `Layer::Http`): "a machine-readable isolation attestation
//! endpoint reports the live status honestly and exposes only counts".
//!
//! [`compare`] is pure: it reads the target's JSON through a [`Mapping`] and holds each
//! claim (per table: RLS enabled, RLS forced; totals: tables, tables with RLS, forced
//! tables, policies) against what tenantgate measured ([`Measured`], from the catalog
//! snapshot or [`measure`]). A claim the measurement contradicts is a failure, either
//! way (an endpoint that is not live is not honest); a claim about something not
//! measured is listed as unverified and decides nothing. [`check_row_contents`] fails
//! when the answer B got holds A's markers: the endpoint must expose counts, not rows.

use std::collections::BTreeMap;

use serde_json::Value;
use tokio_postgres::Client;

use super::{PromiseError, result};
use crate::db::catalog::Catalog;
use crate::outcome::{CheckResult, Layer, Verdict};

/// The count names a mapping may point at.
pub const COUNT_NAMES: &[&str] = &["tables", "tables_with_rls", "tables_forced", "policies"];

/// Where the claims are in the answer (`promises.attestation`'s mapping keys).
#[derive(Clone, Debug)]
pub struct Mapping {
    /// JSONPath of the array of per-table entries.
    pub tables: String,
    /// Field of an entry holding the table's name (`schema.table` or `table`).
    pub name: String,
    /// Field of an entry holding "RLS is enabled" (boolean).
    pub rls_enabled: String,
    /// Field of an entry holding "RLS is forced" (boolean).
    pub rls_forced: String,
    /// Count name ([`COUNT_NAMES`]) → JSONPath of the claimed number.
    pub counts: BTreeMap<String, String>,
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping {
            tables: "$.tables".into(),
            name: "name".into(),
            rls_enabled: "rls_enabled".into(),
            rls_forced: "rls_forced".into(),
            counts: COUNT_NAMES
                .iter()
                .map(|c| (c.to_string(), format!("$.counts.{c}")))
                .collect(),
        }
    }
}

/// What was measured of one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeasuredTable {
    /// `relrowsecurity`.
    pub rls: bool,
    /// `relforcerowsecurity`.
    pub forced: bool,
    /// Its number of policies.
    pub policies: usize,
}

/// What tenantgate measured: the tenant tables by `schema.table`.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// `schema.table` → facts.
    pub tables: BTreeMap<String, MeasuredTable>,
}

impl Measured {
    /// From the catalog audit's snapshot, limited to `tenant_tables` (`schema.table`;
    /// empty: every table and partitioned table in it).
    pub fn from_catalog(cat: &Catalog, tenant_tables: &[String]) -> Measured {
        let mut tables = BTreeMap::new();
        for r in cat.relations.iter().filter(|r| matches!(r.kind, 'r' | 'p')) {
            let name = format!("{}.{}", r.schema, r.name);
            if !tenant_tables.is_empty() && !tenant_tables.contains(&name) {
                continue;
            }
            let policies = cat.policies.iter().filter(|p| p.rel == r.oid).count();
            tables.insert(
                name,
                MeasuredTable {
                    rls: r.rls,
                    forced: r.force,
                    policies,
                },
            );
        }
        Measured { tables }
    }

    /// The measured value of a count.
    pub fn count(&self, name: &str) -> Option<u64> {
        let t = self.tables.values();
        Some(match name {
            "tables" => t.count() as u64,
            "tables_with_rls" => t.filter(|m| m.rls).count() as u64,
            "tables_forced" => t.filter(|m| m.rls && m.forced).count() as u64,
            "policies" => t.map(|m| m.policies as u64).sum(),
            _ => return None,
        })
    }

    /// The measured table a claimed name means: `schema.table` exactly, else a bare
    /// name in `public`, else the one table of that name in any schema.
    fn find(&self, claimed: &str) -> Option<(&String, &MeasuredTable)> {
        if let Some(kv) = self.tables.get_key_value(claimed) {
            return Some(kv);
        }
        if let Some(kv) = self.tables.get_key_value(&format!("public.{claimed}")) {
            return Some(kv);
        }
        let mut it = self
            .tables
            .iter()
            .filter(|(k, _)| k.rsplit_once('.').is_some_and(|(_, n)| n == claimed));
        match (it.next(), it.next()) {
            (Some(kv), None) => Some(kv),
            _ => None,
        }
    }
}

/// Measures `tables` (`schema.table` or `table`; empty: every table outside the system
/// schemas) with one catalog query on `client` (any role that can read the catalogs).
pub async fn measure(client: &Client, tables: &[String]) -> Result<Measured, PromiseError> {
    let rows = client
        .query(
            "SELECT n.nspname::text || '.' || c.relname::text, c.relrowsecurity, \
                    c.relforcerowsecurity, \
                    (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
               AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'",
            &[],
        )
        .await
        .map_err(|e| PromiseError::query("measure tables", &e))?;
    let wanted: Vec<String> = tables
        .iter()
        .map(|t| {
            let (s, n) = super::split_table(t);
            format!("{s}.{n}")
        })
        .collect();
    let mut m = Measured::default();
    for r in rows {
        let name: String = r.get(0);
        if wanted.is_empty() || wanted.contains(&name) {
            let policies: i64 = r.get(3);
            m.tables.insert(
                name,
                MeasuredTable {
                    rls: r.get(1),
                    forced: r.get(2),
                    policies: policies.max(0) as usize,
                },
            );
        }
    }
    Ok(m)
}

/// Fetches the attestation with `client` (the run's, as B or A): anything but a 2xx
/// JSON answer is an error.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    headers: &reqwest::header::HeaderMap,
) -> Result<Value, PromiseError> {
    let fail = |reason: String| PromiseError::Fetch {
        url: url.to_string(),
        reason,
    };
    let resp = client
        .get(url)
        .headers(headers.clone())
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(fail(format!("status {status}")));
    }
    let bytes = resp.bytes().await.map_err(|e| fail(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| fail(format!("the answer is not JSON: {e}")))
}

/// One claim and what became of it.
#[derive(Default)]
struct Tally {
    confirmed: Vec<String>,
    contradicted: Vec<String>,
    unverified: Vec<String>,
}

impl Tally {
    fn into_result(self, claim: &str, what: &str) -> CheckResult {
        let r = |v, s: String| result("attestation", claim, Layer::Http, v, s);
        let mut out = if !self.contradicted.is_empty() {
            r(
                Verdict::Fail,
                format!(
                    "the attestation's {what} contradicts the measurement ({} claim(s))",
                    self.contradicted.len()
                ),
            )
            .with("contradicted", self.contradicted.join("\n"))
        } else if !self.confirmed.is_empty() {
            r(
                Verdict::Pass,
                format!(
                    "{} {what} claim(s) match the measurement",
                    self.confirmed.len()
                ),
            )
        } else {
            r(
                Verdict::Skip,
                format!("the attestation makes no {what} claim about a measured table"),
            )
        };
        if !self.confirmed.is_empty() {
            out = out.with("confirmed", self.confirmed.join("\n"));
        }
        if !self.unverified.is_empty() {
            out = out.with("unverified", self.unverified.join("\n"));
        }
        out
    }
}

fn query_all<'a>(v: &'a Value, path: &str) -> Result<Vec<&'a Value>, String> {
    let jp = serde_json_path::JsonPath::parse(path)
        .map_err(|e| format!("`{path}` is not a JSONPath: {e}"))?;
    Ok(jp.query(v).all())
}

/// Compares the attestation `answer` with `measured`: three results,
/// `promise.attestation.rls_enabled`, `.rls_forced` and `.counts`; one error result
/// when the mapping's JSONPaths do not parse.
pub fn compare(answer: &Value, mapping: &Mapping, measured: &Measured) -> Vec<CheckResult> {
    let entries = match query_all(answer, &mapping.tables) {
        Ok(v) => v
            .into_iter()
            .flat_map(|v| match v {
                Value::Array(a) => a.iter().collect::<Vec<_>>(),
                other => vec![other],
            })
            .collect::<Vec<_>>(),
        Err(e) => return vec![mapping_error(e)],
    };
    let mut enabled = Tally::default();
    let mut forced = Tally::default();
    for e in &entries {
        let Some(name) = e.get(&mapping.name).and_then(Value::as_str) else {
            continue;
        };
        let found = measured.find(name);
        for (field, tally, pick) in [
            (
                &mapping.rls_enabled,
                &mut enabled,
                (|m: &MeasuredTable| m.rls) as fn(&MeasuredTable) -> bool,
            ),
            (&mapping.rls_forced, &mut forced, |m: &MeasuredTable| {
                m.rls && m.forced
            }),
        ] {
            let Some(claim) = e.get(field.as_str()).and_then(Value::as_bool) else {
                continue;
            };
            match found {
                None => tally
                    .unverified
                    .push(format!("{name}: {field} = {claim} (table not measured)")),
                Some((real, m)) => {
                    let truth = pick(m);
                    let line =
                        format!("{name}: claims {field} = {claim}, measured {truth} ({real})");
                    if truth == claim {
                        tally.confirmed.push(line);
                    } else if claim {
                        tally.contradicted.push(format!("{line}: over-claims"));
                    } else {
                        tally.contradicted.push(format!("{line}: under-claims"));
                    }
                }
            }
        }
    }
    let mut counts = Tally::default();
    for (name, path) in &mapping.counts {
        let found = match query_all(answer, path) {
            Ok(v) => v,
            Err(e) => return vec![mapping_error(e)],
        };
        let Some(claim) = found.first().and_then(|v| v.as_u64()) else {
            continue;
        };
        match measured.count(name) {
            None => counts.unverified.push(format!(
                "{name} = {claim} (not a count tenantgate measures)"
            )),
            Some(real) if real == claim => counts
                .confirmed
                .push(format!("{name}: claims {claim}, measured {real}")),
            Some(real) => counts
                .contradicted
                .push(format!("{name}: claims {claim}, measured {real}")),
        }
    }
    vec![
        enabled.into_result("rls_enabled", "RLS-enabled"),
        forced.into_result("rls_forced", "RLS-forced"),
        counts.into_result("counts", "count"),
    ]
}

fn mapping_error(e: String) -> CheckResult {
    result(
        "attestation",
        "mapping",
        Layer::Http,
        Verdict::Error,
        format!("the attestation mapping is unusable: {e}"),
    )
}

/// `promise.attestation.row_contents`: the answer `viewer` got holds none of
/// `foreign_markers` (the other org's seeded values). Markers are matched in every
/// string leaf and key of the answer.
pub fn check_row_contents(answer: &Value, foreign_markers: &[String], viewer: &str) -> CheckResult {
    let markers: Vec<&String> = foreign_markers.iter().filter(|m| m.len() >= 3).collect();
    if markers.is_empty() {
        return result(
            "attestation",
            "row_contents",
            Layer::Http,
            Verdict::Skip,
            "no marker of the other org to look for",
        );
    }
    let mut hits = Vec::new();
    walk(answer, "$", &mut |path, text, number| {
        for m in &markers {
            // A number is a count unless it is the marker itself.
            if (number && text == m.as_str()) || (!number && text.contains(m.as_str())) {
                hits.push(format!("{path}: holds `{m}`"));
            }
        }
    });
    if hits.is_empty() {
        result(
            "attestation",
            "row_contents",
            Layer::Http,
            Verdict::Pass,
            format!(
                "the attestation {viewer} got holds none of the other org's {} marker(s)",
                markers.len()
            ),
        )
    } else {
        result(
            "attestation",
            "row_contents",
            Layer::Http,
            Verdict::Fail,
            format!("the attestation {viewer} got holds another tenant's row contents"),
        )
        .with(format!("{viewer} got"), hits.join("\n"))
        .with("fix", "expose counts and booleans only; never row values")
    }
}

fn walk(v: &Value, path: &str, f: &mut dyn FnMut(&str, &str, bool)) {
    match v {
        Value::String(s) => f(path, s, false),
        Value::Number(n) => f(path, &n.to_string(), true),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, &format!("{path}[{i}]"), f);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                let p = format!("{path}.{k}");
                f(&p, k, false);
                walk(x, &p, f);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn measured() -> Measured {
        let mut m = Measured::default();
        m.tables.insert(
            "public.brands".into(),
            MeasuredTable {
                rls: true,
                forced: true,
                policies: 2,
            },
        );
        m.tables.insert(
            "public.notes".into(),
            MeasuredTable {
                rls: true,
                forced: false,
                policies: 1,
            },
        );
        m
    }

    #[test]
    fn honest_attestation_passes() {
        let a = json!({
            "tables": [
                {"name": "public.brands", "rls_enabled": true, "rls_forced": true},
                {"name": "notes", "rls_enabled": true, "rls_forced": false},
            ],
            "counts": {"tables": 2, "tables_with_rls": 2, "tables_forced": 1, "policies": 3}
        });
        let r = compare(&a, &Mapping::default(), &measured());
        assert!(r.iter().all(|r| r.verdict == Verdict::Pass), "{r:#?}");
    }

    #[test]
    fn over_claims_fail() {
        let a = json!({
            "tables": [{"name": "public.notes", "rls_enabled": true, "rls_forced": true},
                       {"name": "public.ghost", "rls_enabled": true}],
            "counts": {"tables_forced": 2}
        });
        let r = compare(&a, &Mapping::default(), &measured());
        assert_eq!(r[0].verdict, Verdict::Pass);
        assert!(
            r[0].evidence
                .iter()
                .any(|e| e.label == "unverified" && e.text.contains("ghost"))
        );
        assert_eq!(r[1].verdict, Verdict::Fail);
        assert!(r[1].evidence[0].text.contains("over-claims"));
        assert_eq!(r[2].verdict, Verdict::Fail);
    }

    #[test]
    fn custom_mapping_and_nothing_claimed() {
        let a = json!({"data": {"rls": [{"table": "brands", "forced": true}]}});
        let m = Mapping {
            tables: "$.data.rls".into(),
            name: "table".into(),
            rls_forced: "forced".into(),
            ..Mapping::default()
        };
        let r = compare(&a, &m, &measured());
        assert_eq!(r[0].verdict, Verdict::Skip);
        assert_eq!(r[1].verdict, Verdict::Pass);
        assert_eq!(r[2].verdict, Verdict::Skip);
        let bad = Mapping {
            tables: "$[".into(),
            ..Mapping::default()
        };
        assert_eq!(compare(&a, &bad, &measured())[0].verdict, Verdict::Error);
    }

    #[test]
    fn row_contents_leak() {
        let a = json!({"counts": {"tables": 2}, "sample": [{"brand": "acme-secret-brand-x1"}]});
        let r = check_row_contents(&a, &["acme-secret-brand-x1".into()], "b");
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.evidence[0].text.contains("$.sample[0].brand"));
        assert_eq!(
            check_row_contents(
                &json!({"counts": {"tables": 2}}),
                &["acme-secret-brand-x1".into()],
                "b"
            )
            .verdict,
            Verdict::Pass
        );
        assert_eq!(check_row_contents(&a, &[], "b").verdict, Verdict::Skip);
    }
}
