//! The quick-start demo: a throwaway PostgreSQL, the reference multi-tenant API on it,
//! and tenantgate's bundled suite run against both. Everything it starts is stopped and
//! removed at the end, also on Ctrl-C.
//!
//! ```text
//! cargo run --example demo                          # the correct app: exit 0
//! cargo run --example demo -- --bug tenant-from-header   # a planted bug: exit 1
//! cargo run --example demo -- --list-bugs
//! cargo run --example demo -- --suite suites/quickstart.yaml --bug forbidden-not-404
//! cargo run --example demo -- --bug alg-none -- --junit report.xml --json report.json
//! cargo run --example demo -- --reports reports   # JUnit, JSON, SARIF, HTML, attestation
//! cargo run --example demo -- --tls                 # HTTPS with the test CA: the transport suite
//! cargo run --example demo -- --tls --bug tls12-accepted
//! cargo run --example demo -- --target scoped       # path scopes, cookies, API keys: exit 0
//! cargo run --example demo -- --target graphql --bug view-connection   # exit 1
//! cargo run --example demo -- --target scoped --list-bugs
//! ```
//! With `--tls` the API is served over HTTPS with the test-only certificate of
//! `fixtures/tls` and the default suite is `suites/reference-api-tls.yaml` (TLS versions,
//! cipher suites, the certificate, HSTS), trusting `fixtures/tls/ca.pem`.
//! Arguments after `--` go to `tenantgate run`.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use tenantgate::run::Cancel;
use tenantgate_reference_api::bugs::{Bug, Bugs};
use tenantgate_reference_api::graphql::{GqlBug, GqlBugs, launch_graphql_at};
use tenantgate_reference_api::pg::TempPostgres;
use tenantgate_reference_api::scoped::{ScopedBug, ScopedBugs, launch_scoped_at};

fn usage() -> &'static str {
    "usage: cargo run --example demo -- [--target rest|scoped|graphql] [--bug NAME]... [--tls] [--suite PATH] [--reports DIR] [--list-bugs] [-- TENANTGATE-RUN-ARGS...]"
}

fn main() -> ExitCode {
    let mut bug_names: Vec<String> = Vec::new();
    let mut passthrough: Vec<OsString> = Vec::new();
    let mut suite: Option<OsString> = None;
    let mut tls = false;
    let mut target = Which::Rest;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--bug") => match args.next().and_then(|s| s.into_string().ok()) {
                Some(n) => bug_names.push(n),
                None => {
                    eprintln!("demo: --bug needs a name (see --list-bugs)\n{}", usage());
                    return ExitCode::from(2);
                }
            },
            Some("--suite") => match args.next() {
                Some(p) => suite = Some(p),
                None => {
                    eprintln!("demo: --suite needs a path\n{}", usage());
                    return ExitCode::from(2);
                }
            },
            // Every report into DIR: the same flag as `tenantgate run --reports`.
            Some("--reports") => match args.next() {
                Some(d) => passthrough.extend(["--reports".into(), d]),
                None => {
                    eprintln!("demo: --reports needs a directory\n{}", usage());
                    return ExitCode::from(2);
                }
            },
            // HTTPS with the test CA's certificate, and the transport suite by default.
            Some("--tls") => tls = true,
            // Another reference target, with its own suite and bugs.
            Some("--target") => match args.next().and_then(|s| s.into_string().ok()).as_deref() {
                Some("rest") => target = Which::Rest,
                Some("scoped") => target = Which::Scoped,
                Some("graphql") => target = Which::Graphql,
                other => {
                    eprintln!(
                        "demo: --target is rest, scoped or graphql, not {other:?}\n{}",
                        usage()
                    );
                    return ExitCode::from(2);
                }
            },
            Some("--list-bugs") => {
                list_bugs(target);
                return ExitCode::SUCCESS;
            }
            Some("--") => passthrough.extend(args.by_ref()),
            Some("-h" | "--help") => {
                println!("{}", usage());
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("demo: unexpected argument {a:?}\n{}", usage());
                return ExitCode::from(2);
            }
        }
    }
    if tls && target != Which::Rest {
        eprintln!(
            "demo: --tls serves only the REST reference API\n{}",
            usage()
        );
        return ExitCode::from(2);
    }
    let joined = bug_names.join(",");
    let bugs = match target {
        Which::Rest => Bugs::parse(&joined)
            .map(Planted::Rest)
            .map_err(|e| e.to_string()),
        Which::Scoped => ScopedBugs::parse(&joined)
            .map(Planted::Scoped)
            .map_err(|e| e.to_string()),
        Which::Graphql => GqlBugs::parse(&joined)
            .map(Planted::Graphql)
            .map_err(|e| e.to_string()),
    };
    let bugs = match bugs {
        Ok(b) => b,
        Err(e) => {
            eprintln!("demo: {e} (see --list-bugs)");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let suite = suite.unwrap_or_else(|| match target {
        Which::Rest if tls => {
            concat!(env!("CARGO_MANIFEST_DIR"), "/suites/reference-api-tls.yaml").into()
        }
        Which::Rest => concat!(env!("CARGO_MANIFEST_DIR"), "/suites/reference-api.yaml").into(),
        Which::Scoped => concat!(env!("CARGO_MANIFEST_DIR"), "/suites/scoped-api.yaml").into(),
        Which::Graphql => concat!(env!("CARGO_MANIFEST_DIR"), "/suites/graphql-api.yaml").into(),
    });
    let tls = tls.then(|| tenantgate_reference_api::TlsFiles {
        cert: concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls/server.pem").into(),
        key: concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls/server.key").into(),
    });
    ExitCode::from(rt.block_on(demo(bugs, bug_names, tls, suite, passthrough)))
}

/// Which reference target the demo serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    /// The REST reference API (flat routes, bearer JWT).
    Rest,
    /// The path-scoped one (slugs, integer ids, session cookies, API keys).
    Scoped,
    /// The GraphQL one (PostGraphile style).
    Graphql,
}

/// The planted bugs, for the chosen target.
enum Planted {
    Rest(Bugs),
    Scoped(ScopedBugs),
    Graphql(GqlBugs),
}

fn list_bugs(target: Which) {
    let rows: Vec<(&str, &str, &str)> = match target {
        Which::Rest => Bug::ALL
            .iter()
            .map(|b| (b.name(), b.description(), b.caught_by()))
            .collect(),
        Which::Scoped => ScopedBug::ALL
            .iter()
            .map(|b| (b.name(), b.description(), b.caught_by()))
            .collect(),
        Which::Graphql => GqlBug::ALL
            .iter()
            .map(|b| (b.name(), b.description(), b.caught_by()))
            .collect(),
    };
    println!("planted bugs of this reference target (switch on with --bug NAME):");
    for (name, what, caught) in rows {
        println!("  {name:<28} {what}\n  {:<28} caught by: {caught}", "");
    }
}

async fn demo(
    bugs: Planted,
    bug_names: Vec<String>,
    tls: Option<tenantgate_reference_api::TlsFiles>,
    suite: OsString,
    passthrough: Vec<OsString>,
) -> u8 {
    // One listener from the start, shared with the run: Ctrl-C or SIGTERM at any
    // moment stops what was started (a second one quits at once).
    let cancel = Cancel::new();
    tenantgate::cli::install_interrupts(cancel.clone());
    eprintln!("demo: starting a throwaway PostgreSQL…");
    // Not abandoned half-way on Ctrl-C: a cluster that finishes starting is then stopped.
    let started = tokio::task::spawn_blocking(TempPostgres::start).await;
    if cancel.is_cancelled() {
        if let Ok(Ok(pg)) = started {
            stop(pg).await;
        }
        eprintln!("demo: interrupted");
        return 2;
    }
    let pg = match started {
        Ok(Ok(pg)) => pg,
        Ok(Err(e)) => {
            eprintln!("demo: cannot start PostgreSQL: {e}");
            return 2;
        }
        Err(e) => {
            eprintln!("demo: cannot start PostgreSQL: {e}");
            return 2;
        }
    };
    let code = {
        let superuser = pg.superuser_url("postgres");
        let launch = async {
            match bugs {
                Planted::Rest(b) => {
                    tenantgate_reference_api::launch_with(
                        &superuser,
                        "tenantgate_demo",
                        "tg",
                        b,
                        tls,
                    )
                    .await
                }
                Planted::Graphql(b) => {
                    launch_graphql_at(&superuser, "tenantgate_demo", "tg", b).await
                }
                Planted::Scoped(b) => launch_scoped_at(&superuser, "tenantgate_demo", "tg", b)
                    .await
                    .map(|s| tenantgate_reference_api::Launched {
                        api: s.api,
                        base_url: s.base_url,
                        admin_url: s.admin_url,
                        app_url: s.app_url,
                        app_role: s.app_role,
                        jwt_secret: String::new(),
                    }),
            }
        };
        let launched = tokio::select! {
            r = launch => r,
            _ = cancelled(&cancel) => { eprintln!("demo: interrupted"); stop(pg).await; return 2; }
        };
        let l = match launched {
            Ok(l) => l,
            Err(e) => {
                eprintln!("demo: cannot start the reference API: {e}");
                return stop(pg).await.max(2);
            }
        };
        eprintln!(
            "demo: reference API on {} (planted bugs: {}), PostgreSQL on 127.0.0.1:{}",
            l.base_url,
            if bug_names.is_empty() {
                "none".to_string()
            } else {
                bug_names.join(", ")
            },
            pg.port()
        );
        let env: Vec<(String, String)> = vec![
            ("TARGET_URL".into(), l.base_url.clone()),
            ("DATABASE_URL".into(), l.admin_url.clone()),
            ("APP_DATABASE_URL".into(), l.app_url.clone()),
            ("APP_ROLE".into(), l.app_role.clone()),
            ("JWT_SECRET".into(), l.jwt_secret.clone()),
            (
                "TLS_CA".into(),
                concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls/ca.pem").into(),
            ),
        ];
        let lookup: tenantgate::cli::EnvLookup = Arc::new(move |n: &str| {
            env.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var(n).ok())
        });
        let mut args: Vec<OsString> = vec!["tenantgate".into(), "run".into(), suite];
        args.extend(passthrough);
        let code = tenantgate::cli::main_with(args, lookup, Some(cancel.clone())).await;
        l.api.shutdown().await;
        code
    };
    let stopped = stop(pg).await;
    // A proven failure (1) stays 1 even if cleanup had trouble.
    if code == 0 { stopped } else { code }
}

/// Resolves once Ctrl-C or SIGTERM was received.
async fn cancelled(cancel: &Cancel) {
    while !cancel.is_cancelled() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Stops and removes the cluster; 0 when that went fine.
async fn stop(mut pg: TempPostgres) -> u8 {
    let r = tokio::task::spawn_blocking(move || pg.stop()).await;
    match r {
        Ok(()) => {
            eprintln!("demo: stopped the reference API and PostgreSQL and removed their files");
            0
        }
        Err(_) => 2,
    }
}
