//! The database connections over TLS, against a real PostgreSQL with `ssl=on` serving
//! the test certificate of `fixtures/tls/` (for 127.0.0.1 and localhost, signed by the
//! test-only CA `ca.pem`): libpq's `sslmode` and `sslrootcert` mean what they mean in
//! libpq, and every refusal is one line that says what to do (exit 2, never 0 or 1).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tenantgate::db::{self, AuditConfig, ProbeConfig};
use tenantgate::outcome::{CheckResult, Verdict};
use tenantgate::redact::Redactor;
use tenantgate_reference_api::pg::TempPostgres;

use crate::support::{Run, unique};

/// A schema the audit judges sound without an app role: one tenant table with forced
/// RLS and a policy keyed on the tenant setting.
const SOUND: &str = "
CREATE TABLE notes (id bigint PRIMARY KEY, org_id uuid NOT NULL, body text);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE notes FORCE ROW LEVEL SECURITY;
CREATE POLICY notes_isolation ON notes
  USING (org_id = current_setting('app.current_org_id')::uuid)
  WITH CHECK (org_id = current_setting('app.current_org_id')::uuid);
";

fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls")
}

fn ca() -> String {
    tls_dir().join("ca.pem").display().to_string()
}

/// The TLS cluster of this test binary, with the sound schema in database `postgres`.
/// Its own cluster (not `DATABASE_URL`): the server must serve the test certificate.
fn tls_cluster() -> &'static TempPostgres {
    static PG: OnceLock<TempPostgres> = OnceLock::new();
    PG.get_or_init(|| {
        let d = tls_dir();
        let pg = TempPostgres::start_with_tls(&d.join("server.pem"), &d.join("server.key"))
            .expect("start a throwaway PostgreSQL with ssl=on");
        let url = pg.superuser_url("postgres");
        crate::common::stop_at_exit(&url);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                crate::common::connect(&url)
                    .await
                    .batch_execute(SOUND)
                    .await
                    .expect("load the schema");
            })
        })
        .join()
        .expect("schema thread");
        pg
    })
}

/// The TLS cluster's superuser URL with `query` appended.
fn url(query: &str) -> String {
    let u = tls_cluster().superuser_url("postgres");
    if query.is_empty() {
        u
    } else {
        format!("{u}?{query}")
    }
}

/// Whether the connection `url` opens is encrypted (`pg_stat_ssl`).
async fn encrypted(url: &str) -> Result<bool, String> {
    let c = db::catalog::connect(url, "database URL")
        .await
        .map_err(|e| e.to_string())?;
    let row = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

async fn audit(url: String) -> Vec<CheckResult> {
    db::audit(
        &AuditConfig {
            url,
            ..Default::default()
        },
        &Redactor::new(),
    )
    .await
}

fn not_passed(results: &[CheckResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| !matches!(r.verdict, Verdict::Pass | Verdict::Skip))
        .map(|r| format!("{} {}: {}", r.verdict.as_str(), r.id, r.summary))
        .collect()
}

/// The `database.audit` result's notices.
fn tls_notices(results: &[CheckResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| r.id == "database.audit")
        .flat_map(|r| r.evidence.iter())
        .filter(|e| e.label == "notice")
        .map(|e| e.text.clone())
        .collect()
}

/// Runs `tenantgate audit --database-url URL` with a JSON report.
fn audit_bin(url: &str) -> Run {
    let dir = std::env::temp_dir();
    let json = dir.join(format!("{}.json", unique("tg_dbtls")));
    let junit = dir.join(format!("{}.xml", unique("tg_dbtls")));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantgate"));
    cmd.arg("audit")
        .arg("--database-url")
        .arg(url)
        .arg("--json")
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1");
    let run = Run::of(cmd, json.clone(), junit.clone());
    let _ = std::fs::remove_file(json);
    let _ = std::fs::remove_file(junit);
    run
}

/// One error result of one line containing every part of `says`; exit 2; no password.
fn assert_one_line_error(r: &Run, says: &[&str]) -> String {
    let why = r.explain();
    assert_eq!(r.code, 2, "{why}");
    let results = r.json.as_ref().expect("a JSON report")["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["verdict"], "error", "{why}");
    let s = results[0]["summary"].as_str().unwrap_or("").to_string();
    assert!(!s.contains('\n'), "{s:?}");
    for part in says {
        assert!(s.contains(part), "{s:?} does not say {part:?}");
    }
    assert!(
        !r.all_output().contains(tls_cluster().password()),
        "password leaked\n{why}"
    );
    s
}

#[tokio::test]
async fn require_without_a_root_cert_encrypts_and_says_the_certificate_was_not_verified() {
    assert_eq!(encrypted(&url("sslmode=require")).await, Ok(true));
    let results = audit(url("sslmode=require")).await;
    assert!(
        not_passed(&results).is_empty(),
        "{:?}",
        not_passed(&results)
    );
    let notices = tls_notices(&results);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("NOT verified"), "{notices:?}");

    // Through the binary: a pass, with the notice in the report's notices.
    let r = audit_bin(&url("sslmode=require"));
    assert_eq!(r.code, 0, "{}", r.explain());
    let json = r.json.as_ref().expect("a JSON report");
    let n = json["notices"].to_string();
    assert!(n.contains("NOT verified"), "{json}");
    assert!(!r.all_output().contains(tls_cluster().password()));
}

#[tokio::test]
async fn require_with_a_root_cert_verifies_the_chain() {
    let q = format!("sslmode=require&sslrootcert={}", ca());
    assert_eq!(encrypted(&url(&q)).await, Ok(true));
    let results = audit(url(&q)).await;
    assert!(
        not_passed(&results).is_empty(),
        "{:?}",
        not_passed(&results)
    );
    assert!(tls_notices(&results).is_empty());
}

#[tokio::test]
async fn verify_full_with_the_ca_connects_and_audits() {
    let q = format!("sslmode=verify-full&sslrootcert={}", ca());
    assert_eq!(encrypted(&url(&q)).await, Ok(true));
    let r = audit_bin(&url(&q));
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(r.json.as_ref().unwrap()["notices"], serde_json::json!([]));
}

#[test]
fn verify_full_without_the_ca_is_one_line_naming_sslrootcert() {
    let r = audit_bin(&url("sslmode=verify-full"));
    let s = assert_one_line_error(&r, &["not signed by a trusted CA", "sslrootcert=PATH"]);
    assert!(s.contains("UnknownIssuer"), "{s}");
    // verify-ca too: the chain is what fails.
    let r = audit_bin(&url("sslmode=verify-ca"));
    assert_one_line_error(&r, &["sslrootcert=PATH"]);
}

#[tokio::test]
async fn verify_ca_checks_the_chain_but_not_the_host_name() {
    // The certificate names 127.0.0.1 and localhost; connect by another name that
    // resolves nowhere, reaching the server through hostaddr.
    let pg = tls_cluster();
    let other = format!(
        "postgres://postgres:{}@db.invalid:{}/postgres?hostaddr=127.0.0.1",
        pg.password(),
        pg.port()
    );
    let q = |mode: &str| format!("{other}&sslmode={mode}&sslrootcert={}", ca());
    assert_eq!(encrypted(&q("verify-ca")).await, Ok(true));
    let e = encrypted(&q("verify-full")).await.unwrap_err();
    assert!(
        e.contains("does not name the host") && e.contains("verify-ca"),
        "{e}"
    );
    // localhost is on the certificate.
    let local = format!(
        "postgres://postgres:{}@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
        pg.password(),
        pg.port(),
        ca()
    );
    assert_eq!(encrypted(&local).await, Ok(true));
}

#[tokio::test]
async fn prefer_encrypts_when_offered_and_disable_does_not() {
    assert_eq!(encrypted(&url("")).await, Ok(true));
    assert_eq!(encrypted(&url("sslmode=prefer")).await, Ok(true));
    assert_eq!(encrypted(&url("sslmode=disable")).await, Ok(false));
    // Against a server without TLS, prefer falls back to plain.
    let plain = crate::common::cluster().url("postgres");
    assert_eq!(encrypted(&plain).await, Ok(false));
}

#[test]
fn require_against_a_server_without_tls_says_so() {
    let plain = crate::common::cluster().url("postgres");
    let r = audit_bin(&format!("{plain}?sslmode=require"));
    assert_eq!(r.code, 2, "{}", r.explain());
    let s = r.json.as_ref().unwrap()["results"][0]["summary"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        s.contains("the server does not offer TLS") && s.contains("sslmode=require"),
        "{s}"
    );
    assert!(!s.contains('\n'));
}

#[tokio::test]
async fn a_root_cert_that_is_missing_or_not_pem_is_one_line() {
    let r = audit(url("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].verdict, Verdict::Error);
    assert!(r[0].summary.contains("cannot be read"), "{}", r[0].summary);
    let not_pem = tls_dir().join("README.md").display().to_string();
    let r = audit(url(&format!("sslmode=verify-full&sslrootcert={not_pem}"))).await;
    assert_eq!(r[0].verdict, Verdict::Error);
    assert!(
        r[0].summary.contains("no PEM certificate"),
        "{}",
        r[0].summary
    );
    assert!(!r[0].summary.contains(tls_cluster().password()));
}

#[tokio::test]
async fn the_probe_url_follows_the_same_rules() {
    // The probe refuses a superuser, but only after connecting: the refusal proves the
    // TLS connection was made; an unverified probe URL is a notice too.
    let results = db::audit(
        &AuditConfig {
            url: url(&format!("sslmode=verify-full&sslrootcert={}", ca())),
            probe: Some(ProbeConfig {
                url: url("sslmode=require"),
                orgs: None,
                ..Default::default()
            }),
            ..Default::default()
        },
        &Redactor::new(),
    )
    .await;
    let probe = results
        .iter()
        .find(|r| r.id == "database.probe")
        .expect("a probe result");
    assert!(probe.summary.contains("bypasses RLS"), "{}", probe.summary);
    let notices = tls_notices(&results);
    assert!(
        notices.len() == 1 && notices[0].contains("probe URL"),
        "{notices:?}"
    );

    let results = db::audit(
        &AuditConfig {
            url: url(&format!("sslmode=verify-full&sslrootcert={}", ca())),
            probe: Some(ProbeConfig {
                url: url("sslmode=verify-full"),
                orgs: None,
                ..Default::default()
            }),
            ..Default::default()
        },
        &Redactor::new(),
    )
    .await;
    let probe = results
        .iter()
        .find(|r| r.id == "database.probe")
        .expect("a probe result");
    assert!(
        probe.summary.contains("probe URL") && probe.summary.contains("sslrootcert=PATH"),
        "{}",
        probe.summary
    );
}
