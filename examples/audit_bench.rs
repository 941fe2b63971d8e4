//! Benchmark of the database audit: creates N tenant tables with RLS and a policy each,
//! then times `tenantgate::db::audit` alone (and its two halves: the catalog snapshot
//! and the judgement in Rust).
//!
//! ```text
//! cargo run --release --example audit_bench -- [--tables 10000] [--runs 3] [--keep]
//! ```
//! Uses `DATABASE_URL` (a superuser URL; a database and two roles with unique names are
//! created and dropped) or else starts a throwaway cluster.

use std::time::{Duration, Instant};

use tenantgate::db::{self, AuditConfig};
use tenantgate::outcome::Counts;
use tenantgate::redact::Redactor;
use tenantgate_reference_api::pg::{TempPostgres, random_hex};
use tokio_postgres::NoTls;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    match query {
        Some(q) => format!("{scheme}://{authority}/{database}?{q}"),
        None => format!("{scheme}://{authority}/{database}"),
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, Box<dyn std::error::Error>> {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(conn);
    Ok(c)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tables = arg("--tables", 10_000);
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
    let dbname = format!("tg_bench_{suffix}");
    let app = format!("tg_bench_app_{suffix}");
    let owner = format!("tg_bench_owner_{suffix}");
    let admin = connect(&admin_url).await?;
    // Separate statements: CREATE DATABASE cannot run in a (implicit) transaction.
    for sql in [
        format!("CREATE DATABASE {dbname}"),
        format!("CREATE ROLE {app} LOGIN"),
        format!("CREATE ROLE {owner} NOLOGIN"),
    ] {
        admin.batch_execute(&sql).await?;
    }
    let url = with_database(&admin_url, &dbname);
    let result = run(&url, &app, &owner, tables, runs).await;
    if std::env::args().any(|a| a == "--keep") {
        eprintln!("kept database {dbname} (roles {app}, {owner})");
        return result;
    }
    for sql in [
        format!("DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {app}"),
        format!("DROP ROLE IF EXISTS {owner}"),
    ] {
        let _ = admin.batch_execute(&sql).await;
    }
    result
}

async fn run(
    url: &str,
    app: &str,
    owner: &str,
    tables: usize,
    runs: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let c = connect(url).await?;
    c.batch_execute(&format!(
        "GRANT USAGE, CREATE ON SCHEMA public TO {owner}; GRANT USAGE ON SCHEMA public TO {app};"
    ))
    .await?;
    let created = Instant::now();
    // Batches: one transaction holds a lock per table created, and the lock table is
    // sized for max_locks_per_transaction * max_connections.
    let batch = 250;
    let mut i = 0;
    while i < tables {
        let to = (i + batch).min(tables);
        c.batch_execute(&format!(
            "SET ROLE {owner};
             DO $$ BEGIN
               FOR i IN {i}..{last} LOOP
                 EXECUTE format('CREATE TABLE t_%s (id bigint PRIMARY KEY, org_id uuid NOT NULL, \
                   name text NOT NULL, UNIQUE (org_id, name))', i);
                 EXECUTE format('ALTER TABLE t_%s ENABLE ROW LEVEL SECURITY', i);
                 EXECUTE format('ALTER TABLE t_%s FORCE ROW LEVEL SECURITY', i);
                 EXECUTE format('CREATE POLICY tenant ON t_%s FOR ALL TO {app} USING \
                   (org_id = current_setting(''app.current_org_id'', true)::uuid)', i);
                 EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON t_%s TO {app}', i);
               END LOOP;
             END $$;
             RESET ROLE;",
            last = to - 1
        ))
        .await?;
        i = to;
        eprint!("\rcreated {i}/{tables} tables");
    }
    eprintln!(" in {:.1?}", created.elapsed());
    c.batch_execute("ANALYZE").await?;

    let cfg = AuditConfig {
        url: url.to_string(),
        app_role: Some(app.to_string()),
        tenant_setting: Some("app.current_org_id".into()),
        ..Default::default()
    };
    let redactor = Redactor::new();
    redactor.add("bench secret", "never-appears-anywhere");
    let mut totals = Vec::new();
    for run in 1..=runs {
        let t0 = Instant::now();
        let results = db::audit(&cfg, &redactor).await;
        let total = t0.elapsed();
        let counts = Counts::of(&results);

        // The two halves, measured separately.
        let t1 = Instant::now();
        let client = db::read_only_client(url).await?;
        let columns: Vec<String> = db::DEFAULT_TENANT_COLUMNS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let cat = db::catalog::load(&client, url, Some(app), &columns).await?;
        let catalog = t1.elapsed();
        let t2 = Instant::now();
        let opts = db::rules::Options {
            tenant_columns: &columns,
            schemas: &[],
            tables: &[],
            exempt: &[],
            app_role: Some(app),
            tenant_setting: Some("app.current_org_id"),
            model: None,
        };
        let judged = db::rules::judge(&cat, &opts, Duration::ZERO);
        let judge = t2.elapsed();
        println!(
            "run {run}: db::audit {:>7.1?} for {tables} tables -> {} results (pass {}, fail {}, warn {}, error {}, skip {}) | catalog snapshot {:.1?}, judgement {:.1?} ({} results)",
            total,
            results.len(),
            counts.pass,
            counts.fail,
            counts.warn,
            counts.error,
            counts.skip,
            catalog,
            judge,
            judged.results.len()
        );
        totals.push(total);
    }
    totals.sort();
    println!(
        "best {:.1?}, median {:.1?} over {runs} runs",
        totals[0],
        totals[totals.len() / 2]
    );
    Ok(())
}
