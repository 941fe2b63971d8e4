//! Benchmark of the database layer's live probe (run → database → probe): creates N
//! tenant tables with RLS forced, a policy and one row of org A and one of org B each,
//! then times `tenantgate::db::audit` with and without the probe; the difference is
//! the probe (every kind: no tenant, random tenant, B sees no A, move row).
//!
//! ```text
//! cargo run --release --example probe_bench -- [--tables 1000] [--runs 3]
//! ```
//! Uses `DATABASE_URL` (a superuser URL; a database and two roles with unique names are
//! created and dropped) or else starts a throwaway cluster.

use std::time::{Duration, Instant};

use tenantgate::db::{self, AuditConfig, ProbeConfig, ProbeOrgs};
use tenantgate::outcome::{Counts, Layer};
use tenantgate::redact::Redactor;
use tenantgate_reference_api::pg::{TempPostgres, random_hex, with_database};
use tokio_postgres::NoTls;

const ORG_A: &str = "00000000-0000-4000-8000-00000000000a";
const ORG_B: &str = "00000000-0000-4000-8000-00000000000b";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, Box<dyn std::error::Error>> {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(conn);
    Ok(c)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tables = arg("--tables", 1_000);
    let runs = arg("--runs", 3).max(1);
    let _temp;
    let admin_url = match std::env::var("DATABASE_URL") {
        Ok(u) if !u.trim().is_empty() => u,
        _ => {
            eprintln!("starting a throwaway PostgreSQL (set DATABASE_URL to use yours)");
            let pg = TempPostgres::start()?;
            let u = pg.superuser_url("postgres");
            _temp = Some(pg);
            u
        }
    };
    let suffix = random_hex(4);
    let dbname = format!("tg_probe_{suffix}");
    let app = format!("tg_probe_app_{suffix}");
    let owner = format!("tg_probe_owner_{suffix}");
    let admin = connect(&admin_url).await?;
    for sql in [
        format!("CREATE DATABASE {dbname}"),
        format!("CREATE ROLE {app} LOGIN PASSWORD 'probe-bench'"),
        format!("CREATE ROLE {owner} NOLOGIN"),
    ] {
        admin.batch_execute(&sql).await?;
    }
    let url = with_database(&admin_url, &dbname);
    let result = run(&url, &app, &owner, tables, runs).await;
    for sql in [
        format!("DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {app}"),
        format!("DROP ROLE IF EXISTS {owner}"),
    ] {
        let _ = admin.batch_execute(&sql).await;
    }
    result
}

/// The app role's URL: the admin URL with the user (and password) swapped.
fn app_url(admin_url: &str, app: &str) -> String {
    let (scheme, rest) = admin_url
        .split_once("://")
        .unwrap_or(("postgres", admin_url));
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{app}:probe-bench@{host}")
}

async fn create(
    url: &str,
    app: &str,
    owner: &str,
    tables: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let c = connect(url).await?;
    c.batch_execute(&format!(
        "GRANT USAGE, CREATE ON SCHEMA public TO {owner}; GRANT USAGE ON SCHEMA public TO {app};"
    ))
    .await?;
    let created = Instant::now();
    // Batches: one transaction holds a lock per table created.
    let batch = 250;
    let mut i = 0;
    while i < tables {
        let to = (i + batch).min(tables);
        c.batch_execute(&format!(
            "SET ROLE {owner};
             DO $$ BEGIN
               FOR i IN {i}..{last} LOOP
                 EXECUTE format('CREATE TABLE t_%s (id bigint PRIMARY KEY, org_id uuid NOT NULL, \
                   name text NOT NULL)', i);
                 EXECUTE format('ALTER TABLE t_%s ENABLE ROW LEVEL SECURITY', i);
                 EXECUTE format('ALTER TABLE t_%s FORCE ROW LEVEL SECURITY', i);
                 EXECUTE format('CREATE POLICY tenant ON t_%s FOR ALL TO {app} USING \
                   (org_id = current_setting(''app.current_org_id'', true)::uuid)', i);
                 EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON t_%s TO {app}', i);
               END LOOP;
             END $$;
             RESET ROLE;
             DO $$ BEGIN
               FOR i IN {i}..{last} LOOP
                 EXECUTE format('INSERT INTO t_%s VALUES (1, ''{ORG_A}'', ''a''), (2, ''{ORG_B}'', ''b'')', i);
               END LOOP;
             END $$;",
            last = to - 1
        ))
        .await?;
        i = to;
        eprint!("\rcreated {i}/{tables} tables");
    }
    eprintln!(" in {:.1?}", created.elapsed());
    c.batch_execute("ANALYZE").await?;
    Ok(())
}

async fn run(
    url: &str,
    app: &str,
    owner: &str,
    tables: usize,
    runs: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    create(url, app, owner, tables).await?;
    let without = AuditConfig {
        url: url.to_string(),
        app_role: Some(app.to_string()),
        tenant_setting: Some("app.current_org_id".into()),
        ..Default::default()
    };
    let with = AuditConfig {
        probe: Some(ProbeConfig {
            url: app_url(url, app),
            orgs: Some(ProbeOrgs {
                a: ORG_A.into(),
                b: ORG_B.into(),
            }),
            ..Default::default()
        }),
        ..without.clone()
    };
    let redactor = Redactor::new();
    let mut probes = Vec::new();
    for run in 1..=runs {
        let t0 = Instant::now();
        let base = db::audit(&without, &redactor).await;
        let catalog = t0.elapsed();
        let t1 = Instant::now();
        let results = db::audit(&with, &redactor).await;
        let total = t1.elapsed();
        let probe: Vec<_> = results.iter().filter(|r| r.layer == Layer::Probe).collect();
        let counts = Counts::of(&results);
        let probe_time = total.saturating_sub(catalog);
        println!(
            "run {run}: audit without probe {catalog:>7.1?} ({} results), with probe {total:>7.1?}: probe ≈ {probe_time:>7.1?} for {tables} tables, {} probe results (pass {}, fail {}, error {}, skip {})",
            base.len(),
            probe.len(),
            counts.pass,
            counts.fail,
            counts.error,
            counts.skip,
        );
        probes.push(probe_time);
    }
    probes.sort();
    let median: Duration = probes[probes.len() / 2];
    println!(
        "probe of {tables} tables: min {:.1?}, median {median:.1?} over {runs} runs",
        probes[0],
    );
    Ok(())
}
