//! The vendor-promise checks (`tenantgate::promise`) against real parts: local rustls
//! servers configured each way (TLS 1.2+1.3, 1.3 only, with and without HSTS), the
//! committed test certificate judged at moved clocks (near expiry, expired), and real
//! PostgreSQL for secrets at rest, the audit-log catalog rules and the attestation's
//! measurement.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tenantgate::outcome::{CheckResult, Verdict};
use tenantgate::promise::at_rest::{self, Limits, SecretSearch, Tenant};
use tenantgate::promise::attestation::{self, Mapping};
use tenantgate::promise::audit_log;
use tenantgate::promise::transport::{self, TlsVersion, TransportPolicy, Trust};
use tenantgate::redact::Redactor;
use tokio_rustls::rustls;

use crate::common::{TestDb, cluster, connect};

fn tls_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls")
}

fn trust_test_ca() -> Trust {
    Trust::with_ca_pem(&std::fs::read(tls_dir().join("ca.pem")).unwrap()).unwrap()
}

fn get<'a>(results: &'a [CheckResult], id: &str) -> &'a CheckResult {
    results
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no result {id} in {results:#?}"))
}

/// A TLS server on 127.0.0.1 speaking `versions`, answering every request with 200
/// and, when given, a `Strict-Transport-Security` header. Returns its https URL.
async fn tls_server(
    versions: &[&'static rustls::SupportedProtocolVersion],
    hsts: Option<&str>,
) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cert = std::fs::read(tls_dir().join("server.pem")).unwrap();
    let key = std::fs::read(tls_dir().join("server.key")).unwrap();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(&key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let header = hsts
        .map(|h| format!("Strict-Transport-Security: {h}\r\n"))
        .unwrap_or_default();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let header = header.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{header}Connection: close\r\n\r\nok"
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    format!("https://localhost:{}/", addr.port())
}

fn policy(min: TlsVersion) -> TransportPolicy {
    TransportPolicy {
        min_tls: Some(min),
        cert_min_days: 14,
        hsts_min_max_age: Some(31_536_000),
        timeout: Duration::from_secs(5),
    }
}

fn at(rfc: &str) -> SystemTime {
    // Dates of the committed certificate: valid until 2126-10-30T09:07:22Z.
    let secs: u64 = match rfc {
        "2126-10-25" => 4_948_700_000,
        "2127-01-01" => 4_954_435_200,
        _ => unreachable!(),
    };
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[tokio::test]
async fn a_server_accepting_tls12_fails_a_tls13_minimum() {
    let url = tls_server(&[&rustls::version::TLS12, &rustls::version::TLS13], None).await;
    let r = transport::check(
        &url,
        &policy(TlsVersion::Tls13),
        &trust_test_ca(),
        SystemTime::now(),
    )
    .await;
    let min = get(&r, "promise.transport.min_tls");
    assert_eq!(min.verdict, Verdict::Fail, "{min:#?}");
    assert!(min.summary.contains("accepts TLS 1.2"), "{}", min.summary);
    let suites = get(&r, "promise.transport.cipher_suites");
    assert_eq!(suites.verdict, Verdict::Pass);
    let listed = &suites.evidence[0].text;
    assert!(
        listed.contains("TLS 1.2 TLS_ECDHE_ECDSA") && listed.contains("TLS 1.3 TLS13_"),
        "{listed}"
    );
    let cert = get(&r, "promise.transport.certificate");
    assert_eq!(cert.verdict, Verdict::Pass, "{cert:#?}");
    assert!(cert.evidence[0].text.contains("CN=localhost"));
    // The same server meets a 1.2 minimum.
    let r = transport::check(
        &url,
        &policy(TlsVersion::Tls12),
        &trust_test_ca(),
        SystemTime::now(),
    )
    .await;
    assert_eq!(get(&r, "promise.transport.min_tls").verdict, Verdict::Pass);
}

#[tokio::test]
async fn a_tls13_only_server_meets_a_tls13_minimum() {
    let url = tls_server(&[&rustls::version::TLS13], None).await;
    let r = transport::check(
        &url,
        &policy(TlsVersion::Tls13),
        &trust_test_ca(),
        SystemTime::now(),
    )
    .await;
    let min = get(&r, "promise.transport.min_tls");
    assert_eq!(min.verdict, Verdict::Pass, "{min:#?}");
    assert!(
        min.evidence[0].text.contains("TLS 1.2 only: refused"),
        "{}",
        min.evidence[0].text
    );
    let listed = &get(&r, "promise.transport.cipher_suites").evidence[0].text;
    assert!(!listed.contains("TLS 1.2"), "{listed}");
}

/// `openssl s_server` speaking only TLS 1.0 (rustls cannot): the hand-built legacy
/// ClientHello must find it. Skipped, with a note, where no `openssl` binary exists.
#[tokio::test]
async fn a_server_accepting_tls10_is_found_by_the_legacy_probe() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let d = tls_dir();
    let child = std::process::Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-tls1",
            "-cipher",
            "ALL:@SECLEVEL=0",
        ])
        .arg("-accept")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(d.join("server.pem"))
        .arg("-key")
        .arg(d.join("server.key"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("no openssl binary: the TLS 1.0 acceptance test is skipped");
        return;
    };
    let up = async {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    assert!(up.await, "openssl s_server did not start");
    let url = format!("https://localhost:{port}/");
    let r = transport::check(
        &url,
        &policy(TlsVersion::Tls12),
        &trust_test_ca(),
        SystemTime::now(),
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let min = get(&r, "promise.transport.min_tls");
    assert_eq!(min.verdict, Verdict::Fail, "{min:#?}");
    assert!(min.summary.contains("accepts TLS 1.0"), "{}", min.summary);
    assert!(
        min.evidence[0]
            .text
            .contains("TLS 1.0 only: accepted (cipher suite 0x"),
        "{}",
        min.evidence[0].text
    );
}

#[tokio::test]
async fn the_certificate_window_is_judged_at_the_given_clock() {
    let url = tls_server(&[&rustls::version::TLS13], None).await;
    let near = transport::check(
        &url,
        &policy(TlsVersion::Tls13),
        &trust_test_ca(),
        at("2126-10-25"),
    )
    .await;
    let c = get(&near, "promise.transport.certificate");
    assert_eq!(c.verdict, Verdict::Fail, "{c:#?}");
    assert!(
        c.summary.contains("under the 14-day minimum"),
        "{}",
        c.summary
    );
    let expired = transport::check(
        &url,
        &policy(TlsVersion::Tls13),
        &trust_test_ca(),
        at("2127-01-01"),
    )
    .await;
    let c = get(&expired, "promise.transport.certificate");
    assert_eq!(c.verdict, Verdict::Fail, "{c:#?}");
    assert!(c.summary.contains("not valid now"), "{}", c.summary);
    // Without the private CA the chain is unverified, never a pass.
    let untrusted = transport::check(
        &url,
        &policy(TlsVersion::Tls13),
        &Trust::system(),
        SystemTime::now(),
    )
    .await;
    let c = get(&untrusted, "promise.transport.certificate");
    assert_eq!(c.verdict, Verdict::Error, "{c:#?}");
    // The probes themselves still ran.
    assert_eq!(
        get(&untrusted, "promise.transport.min_tls").verdict,
        Verdict::Pass
    );
}

#[tokio::test]
async fn nothing_listening_is_undecided() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let r = transport::check(
        &format!("https://127.0.0.1:{port}/"),
        &policy(TlsVersion::Tls13),
        &trust_test_ca(),
        SystemTime::now(),
    )
    .await;
    assert!(r.iter().all(|r| r.verdict == Verdict::Error), "{r:#?}");
    assert!(
        get(&r, "promise.transport.cipher_suites")
            .summary
            .contains("not probed")
    );
}

#[tokio::test]
async fn hsts_on_a_real_answer() {
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(tls_dir().join("ca.pem")).unwrap())
                .unwrap(),
        )
        .build()
        .unwrap();
    let none = reqwest::header::HeaderMap::new();
    let with = tls_server(
        &[&rustls::version::TLS13],
        Some("max-age=31536000; includeSubDomains"),
    )
    .await;
    let h = transport::fetch_headers(&client, &with, &none)
        .await
        .unwrap();
    assert_eq!(
        transport::check_hsts(&h, true, 31_536_000).verdict,
        Verdict::Pass
    );
    let short = tls_server(&[&rustls::version::TLS13], Some("max-age=600")).await;
    let h = transport::fetch_headers(&client, &short, &none)
        .await
        .unwrap();
    let r = transport::check_hsts(&h, true, 31_536_000);
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(r.summary.contains("max-age=600"));
    let without = tls_server(&[&rustls::version::TLS13], None).await;
    let h = transport::fetch_headers(&client, &without, &none)
        .await
        .unwrap();
    assert_eq!(
        transport::check_hsts(&h, true, 31_536_000).verdict,
        Verdict::Fail
    );
}

// ---- secrets at rest ----------------------------------------------------------

const ORG_A: &str = "org-a-0001";
const ORG_B: &str = "org-b-0002";
const KEY_A: &str = "tgk_live_4f9a1c2e7b3d8e6f0a5b";
const KEY_B: &str = "tgk_live_b0b0b0b0b0b0b0b0b0b0";

/// An `api_keys` table under forced RLS, owned by the owner role; the app may read and
/// write it. `stored_a` is the SQL expression stored for A's key (`$KEY` is the key).
async fn keys_db(label: &str, stored_a: &str) -> TestDb {
    let mut db = TestDb::create(label).await;
    db.load(&[]).await;
    let sql = db.render(&format!(
        "SET ROLE {{{{owner_role}}}};
         CREATE TABLE api_keys (id serial PRIMARY KEY, org_id text NOT NULL, label text,
                                key_hash text, raw bytea, meta jsonb);
         ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
         CREATE POLICY tenant ON api_keys USING (org_id = current_setting('app.current_org_id', true));
         GRANT SELECT, INSERT ON api_keys TO {{{{app_role}}}};
         RESET ROLE;
         INSERT INTO api_keys (org_id, label, key_hash, meta)
           VALUES ('{ORG_A}', 'ci key', {a}, '{{\"scopes\": [\"read\"]}}'),
                  ('{ORG_B}', 'b key', '{KEY_B}', NULL);",
        a = stored_a.replace("$KEY", KEY_A)
    ));
    db.exec(&sql).await;
    db
}

async fn search_as_a(db: &mut TestDb, plaintext: &str, redactor: &Redactor) -> Vec<CheckResult> {
    let client = connect(&db.app_url()).await;
    let s = SecretSearch {
        name: "api_key",
        plaintext,
        tables: &[],
        tenant: Some(Tenant {
            setting: "app.current_org_id",
            value: ORG_A,
        }),
        limits: Limits::default(),
    };
    let r = at_rest::search(&client, &s, redactor).await;
    // The transaction ended: a new one can start, and nothing was written.
    client.batch_execute("BEGIN; ROLLBACK").await.unwrap();
    let text = format!("{r:?}");
    assert!(!redactor.contains_secret(&text), "a secret in {text}");
    assert!(!text.contains(plaintext));
    r
}

fn verdicts(r: &[CheckResult]) -> Vec<(String, Verdict)> {
    r.iter().map(|r| (r.variant.clone(), r.verdict)).collect()
}

#[tokio::test]
async fn a_plaintext_key_at_rest_fails() {
    let mut db = keys_db("atrest_plain", "'$KEY'").await;
    let red = Redactor::new();
    let r = search_as_a(&mut db, KEY_A, &red).await;
    let p = get(&r, "promise.secrets_at_rest.api_key.plaintext");
    assert_eq!(p.verdict, Verdict::Fail, "{r:#?}");
    assert!(p.summary.contains("public.api_keys"), "{}", p.summary);
    assert!(p.evidence[0].text.contains("public.api_keys.key_hash"));
    assert_eq!(
        get(&r, "promise.secrets_at_rest.api_key.unsalted_digest").verdict,
        Verdict::Pass
    );
    db.drop().await;
}

#[tokio::test]
async fn unsalted_digests_at_rest_fail_in_text_and_bytea() {
    let mut db = keys_db("atrest_sha", "upper(encode(sha256('$KEY'::bytea), 'hex'))").await;
    let r = search_as_a(&mut db, KEY_A, &Redactor::new()).await;
    let d = get(&r, "promise.secrets_at_rest.api_key.unsalted_digest");
    assert_eq!(d.verdict, Verdict::Fail, "{r:#?}");
    assert!(
        d.evidence[0].text.contains("SHA-256 (hex)"),
        "{}",
        d.evidence[0].text
    );
    assert_eq!(
        get(&r, "promise.secrets_at_rest.api_key.plaintext").verdict,
        Verdict::Pass
    );
    db.exec(&format!(
        "UPDATE api_keys SET key_hash = NULL, raw = decode(md5('{KEY_A}'), 'hex') WHERE org_id = '{ORG_A}'"
    ))
    .await;
    let r = search_as_a(&mut db, KEY_A, &Redactor::new()).await;
    let d = get(&r, "promise.secrets_at_rest.api_key.unsalted_digest");
    assert_eq!(d.verdict, Verdict::Fail, "{r:#?}");
    assert!(
        d.evidence[0]
            .text
            .contains("public.api_keys.raw: unsalted MD5 (raw bytes)"),
        "{}",
        d.evidence[0].text
    );
    db.drop().await;
}

#[tokio::test]
async fn a_salted_hash_is_recognised_and_other_tenants_rows_stay_hidden() {
    let phc = "'$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzYWx0$RdescudvJCsgt3ub+b+dWRWJTmaaJObGv2hNmPRvbkA'";
    let mut db = keys_db("atrest_salted", phc).await;
    let r = search_as_a(&mut db, KEY_A, &Redactor::new()).await;
    assert_eq!(
        verdicts(&r),
        [
            ("plaintext".to_string(), Verdict::Pass),
            ("unsalted_digest".to_string(), Verdict::Pass),
            ("salted_hash".to_string(), Verdict::Pass),
        ],
        "{r:#?}"
    );
    assert!(
        get(&r, "promise.secrets_at_rest.api_key.salted_hash")
            .summary
            .contains("argon2")
    );
    // B's key is stored in plain text, but as A the probe cannot see B's row.
    let r = search_as_a(&mut db, KEY_B, &Redactor::new()).await;
    assert_eq!(
        get(&r, "promise.secrets_at_rest.api_key.plaintext").verdict,
        Verdict::Pass,
        "{r:#?}"
    );
    db.drop().await;
}

#[tokio::test]
async fn a_search_that_sees_nothing_or_is_bounded_decides_nothing() {
    let mut db = keys_db("atrest_bounds", "'$KEY'").await;
    let client = connect(&db.app_url()).await;
    let other = SecretSearch {
        name: "api_key",
        plaintext: KEY_A,
        tables: &[],
        tenant: Some(Tenant {
            setting: "app.current_org_id",
            value: "org-nobody",
        }),
        limits: Limits::default(),
    };
    let r = at_rest::search(&client, &other, &Redactor::new()).await;
    assert!(r.iter().all(|r| r.verdict == Verdict::Skip), "{r:#?}");
    let missing = ["public.nope".to_string()];
    let r = at_rest::search(
        &client,
        &SecretSearch {
            tables: &missing,
            ..other
        },
        &Redactor::new(),
    )
    .await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].verdict, Verdict::Error);
    assert!(
        r[0].summary.contains("`public.nope` not found"),
        "{}",
        r[0].summary
    );
    // As a superuser the search would see every tenant: refused.
    let admin = connect(&db.url()).await;
    let r = at_rest::search(&admin, &other, &Redactor::new()).await;
    assert_eq!(r[0].verdict, Verdict::Error);
    assert!(r[0].summary.contains("bypasses RLS"));
    // A row limit below the table's size: nothing found means unverified.
    db.exec(&format!("INSERT INTO api_keys (org_id, label) SELECT '{ORG_A}', 'k' || g FROM generate_series(1, 5) g")).await;
    let bounded = SecretSearch {
        plaintext: "tgk_never_stored_anywhere",
        tenant: Some(Tenant {
            setting: "app.current_org_id",
            value: ORG_A,
        }),
        limits: Limits {
            max_rows_per_table: 2,
            max_duration: Duration::from_secs(10),
        },
        ..other
    };
    let r = at_rest::search(&client, &bounded, &Redactor::new()).await;
    assert_eq!(
        get(&r, "promise.secrets_at_rest.api_key.plaintext").verdict,
        Verdict::Error,
        "{r:#?}"
    );
    db.drop().await;
}

// ---- audit log ------------------------------------------------------------------

/// An audit table owned by the owner role: the app may SELECT and INSERT only, RLS
/// forced, plus `extra` SQL run as the superuser afterwards.
async fn audit_db(label: &str, extra: &str) -> TestDb {
    let mut db = TestDb::create(label).await;
    db.load(&[]).await;
    let sql = db.render(&format!(
        "SET ROLE {{{{owner_role}}}};
         CREATE TABLE audit_log (id bigserial PRIMARY KEY, org_id text NOT NULL, action text, at timestamptz DEFAULT now());
         ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
         CREATE POLICY tenant ON audit_log USING (org_id = current_setting('app.current_org_id', true));
         GRANT SELECT, INSERT ON audit_log TO {{{{app_role}}}};
         GRANT USAGE ON SEQUENCE audit_log_id_seq TO {{{{app_role}}}};
         RESET ROLE;
         {extra}"
    ));
    db.exec(&sql).await;
    db
}

async fn audit_rules(db: &mut TestDb, tables: &[String]) -> Vec<CheckResult> {
    let app = db.role("app_role");
    audit_log::check_catalog_url(&db.url(), tables, &app, &Redactor::new()).await
}

#[tokio::test]
async fn an_append_only_audit_table_passes_every_rule() {
    let mut db = audit_db("audit_sound", "").await;
    let r = audit_rules(&mut db, &[]).await;
    assert_eq!(r.len(), 5, "{r:#?}");
    assert!(r.iter().all(|r| r.verdict == Verdict::Pass), "{r:#?}");
    assert!(
        r.iter()
            .any(|r| r.id == "promise.audit_log.public.audit_log.no_update")
    );
    db.drop().await;
}

#[tokio::test]
async fn every_way_to_rewrite_the_audit_log_fails_its_rule() {
    let extra = "CREATE ROLE {{writer}} NOLOGIN;
         GRANT DELETE ON audit_log TO {{writer}};
         GRANT {{writer}} TO {{app_role}};
         GRANT UPDATE (action) ON audit_log TO {{app_role}};
         SET ROLE {{owner_role}};
         CREATE FUNCTION purge_audit() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
           AS $$ BEGIN TRUNCATE TABLE public.audit_log; END $$;
         RESET ROLE;
         ALTER TABLE audit_log NO FORCE ROW LEVEL SECURITY;";
    let mut db = audit_db("audit_bad", extra).await;
    let writer = db.role("writer");
    let r = audit_rules(&mut db, &["audit_log".to_string()]).await;
    let id = |rule: &str| format!("promise.audit_log.public.audit_log.{rule}");
    for rule in ["no_update", "no_delete", "no_definer_writes", "rls_forced"] {
        assert_eq!(get(&r, &id(rule)).verdict, Verdict::Fail, "{rule}: {r:#?}");
    }
    assert_eq!(get(&r, &id("no_truncate")).verdict, Verdict::Pass);
    assert!(get(&r, &id("no_delete")).evidence[0].text.contains(&writer));
    assert!(
        get(&r, &id("no_definer_writes")).evidence[0]
            .text
            .contains("purge_audit() (owner")
    );
    db.drop().await;
}

#[tokio::test]
async fn a_named_audit_table_that_does_not_exist_is_an_error() {
    let mut db = audit_db("audit_missing", "").await;
    let r = audit_rules(&mut db, &["public.events_audit".to_string()]).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].verdict, Verdict::Error);
    assert!(
        r[0].summary
            .contains("`public.events_audit` does not exist"),
        "{}",
        r[0].summary
    );
    db.drop().await;
}

// ---- attestation ------------------------------------------------------------------

#[tokio::test]
async fn an_over_claiming_attestation_fails_against_the_measured_catalog() {
    let mut db = audit_db("attest", "SET ROLE {{owner_role}}; CREATE TABLE notes (org_id text, body text); ALTER TABLE notes ENABLE ROW LEVEL SECURITY; RESET ROLE;").await;
    let client = connect(&db.url()).await;
    let measured = attestation::measure(&client, &["audit_log".into(), "notes".into()])
        .await
        .unwrap();
    assert_eq!(measured.count("tables_forced"), Some(1));
    let honest = serde_json::json!({
        "tables": [{"name": "public.audit_log", "rls_enabled": true, "rls_forced": true},
                   {"name": "public.notes", "rls_enabled": true, "rls_forced": false}],
        "counts": {"tables": 2, "tables_with_rls": 2, "tables_forced": 1, "policies": 1}
    });
    let r = attestation::compare(&honest, &Mapping::default(), &measured);
    assert!(r.iter().all(|r| r.verdict == Verdict::Pass), "{r:#?}");
    let over = serde_json::json!({
        "tables": [{"name": "notes", "rls_enabled": true, "rls_forced": true}],
        "counts": {"tables_forced": 2}
    });
    let r = attestation::compare(&over, &Mapping::default(), &measured);
    assert_eq!(
        get(&r, "promise.attestation.rls_forced").verdict,
        Verdict::Fail
    );
    assert_eq!(get(&r, "promise.attestation.counts").verdict, Verdict::Fail);
    let _ = db.role("app_role");
    db.drop().await;
}

#[test]
fn cluster_is_reachable() {
    // Keeps `cluster` used when the database tests are filtered out.
    let _ = cluster;
}
