//! The runner (run stage): given a loaded suite, run the pipeline below and emit every
//! result as an [`Event`]; the runner never prints. Each stage lives in its own file:
//!
//! 1. **plan** ([`crate::plan`]): the suite → ordered check plans, selected;
//! 2. **setup** (`orgs::setup`, `src/run/orgs.rs`): provision (or mint) org A and org B, seed A → a
//!    `Tenants` value saying what exists on the target;
//! 3. **promises** (`promises.rs`, calling [`crate::promise`]): the suite's `promises:`
//!    (transport, secrets at rest, audit log, attestation) on the seeded state;
//! 4. **checks** (`schedule.rs`, [`checks`], decided by [`verdict`]): every check and
//!    attack variant as B, each with a positive control as A;
//! 5. **database** ([`database`]): the catalog audit and the live RLS probe;
//! 6. **teardown** (`orgs::teardown`): always, also after a failure, an error or an
//!    interrupt, and after the database probe (which needs both orgs' rows);
//! 7. **summary** (`emit.rs`): the counts and the exit status, decided once.
//!
//! The `audit` command is the same pipeline with only the database stage
//! ([`audit_database`]).

pub mod adaptive;
pub mod checks;
pub mod context;
mod cookies;
pub mod database;
mod emit;
pub mod error;
pub mod graphql;
pub mod http;
pub mod jwt;
mod member;
pub mod options;
mod orgs;
mod promises;
mod schedule;
mod scope;
mod session;
pub mod setup;
pub mod verdict;

use std::sync::Arc;

pub use options::{Cancel, Options, default_jobs, now_rfc3339};
pub use scope::uses_own as scope_uses_own;

use crate::outcome::{Event, RunSummary};
use crate::plan::{self, CheckPlan, Selection};
use crate::redact::Redactor;
use crate::suite::Loaded;
use crate::suite::model::Suite;
use emit::{Emitter, run_info, setup_error};

/// The checks and variants a suite asks for (see [`crate::plan::plan`]), selected by
/// one `--filter` pattern (kept for callers of the earlier signature).
pub fn plan(suite: &Suite, has_signer: bool, filter: Option<&str>) -> Vec<CheckPlan> {
    plan::plan(suite, has_signer, &Selection::filter(filter))
}

/// Runs a loaded suite to the end and returns the summary (also emitted as `Ended`).
pub async fn run_suite(
    loaded: Arc<Loaded>,
    opts: &Options,
    redactor: &Redactor,
    cancel: Cancel,
    sink: &mut (dyn FnMut(Event) + Send + Sync),
) -> RunSummary {
    let suite = &loaded.suite;
    let run_id = context::new_run_id();
    for e in loaded.env.iter().filter(|e| e.secret) {
        redactor.add(&e.name, &e.value);
    }
    let target = suite.target.as_ref().and_then(|t| t.base_url.as_literal());
    let mut info = run_info(
        &suite.name.value,
        Some((&loaded.path, &loaded.sha256)),
        &run_id,
        target.map(|u| redactor.redact(&u)),
    );
    info.partition = opts.partition;
    info.env_read = loaded.env_names().iter().map(|n| n.to_string()).collect();
    info.allowed_origins = loaded.origins.clone();
    info.load_notices = loaded.notices.clone();
    let mut em = Emitter::start(sink, info, redactor);
    em.accepting(&suite.accept);
    let mut notices = Vec::new();
    if opts.insecure {
        notices.push("--insecure: TLS certificates were NOT verified; a verdict over an unverified connection proves less".to_string());
    }

    // 1. Plan (the OpenAPI coverage gate's results first: they need nothing sent).
    for r in &opts.coverage {
        em.result(r.clone());
    }
    let selection = opts.selection();
    let signer = orgs::signer_of(suite, redactor).unwrap_or_else(|e| {
        em.result(setup_error(
            "setup/signing-key",
            "signing key",
            e,
            vec![],
            redactor,
        ));
        None
    });
    let mut plans = plan::plan(suite, signer.is_some(), &selection);
    // Filters are judged against the whole plan: a filter matching only other slices
    // is not a mistake.
    // Only a filter needs the ids (10,000 strings otherwise kept for nothing).
    let mut selected: Vec<String> = if selection.has_filters() {
        em.keep_ids();
        plans.iter().flat_map(|p| p.ids()).collect()
    } else {
        Vec::new()
    };
    if let Some(p) = opts.partition {
        plans = p.slice(plans);
    }

    // 2. Setup: provision, seed.
    let tenants = if plans.is_empty() || em.has_error() {
        None
    } else {
        orgs::setup(
            suite,
            opts,
            redactor,
            &cancel,
            &run_id,
            signer.as_ref(),
            &loaded.origins,
            &mut em,
        )
        .await
    };

    // 3. Promises, then 4. checks, as B.
    if let Some(t) = tenants.as_ref().filter(|t| t.ready) {
        let (markers, dropped) = t.markers(suite);
        let markers = verdict::Markers::new(markers);
        notices.extend(dropped);
        // The promises judge the seeded state, before any attack could change it. Like
        // the database audit, they run in one slice of a partitioned run.
        if opts.audits_database() {
            let ids = promises::run(suite, t, &markers, opts, &selection, redactor, &mut em);
            selected.extend(ids.await);
        }
        let ctx = checks::Ctx::new(&loaded, t, markers, signer, redactor, opts, &cancel);
        let ctx = Arc::new(ctx);
        schedule::run_checks(&ctx, plans, opts.jobs, &cancel, &mut em).await;
    }
    let mut interrupted = cancel.is_cancelled();

    // 5. Database: before teardown, which removes the rows the probe reads.
    if let Some(db) = suite.database.as_ref().filter(|_| opts.audits_database()) {
        if cancel.is_cancelled() {
            interrupted = true;
        } else {
            let lookup = tenants.as_ref().map(|t| t.values.lookup(None, None, None));
            let (cfg, missing) = database::audit_config_with(
                db,
                tenants.as_ref().and_then(orgs::Tenants::both_orgs),
                lookup.as_ref().map(|l| l as &database::Lookup<'_>),
                tenants
                    .as_ref()
                    .map(|t| database::seed_ids(&t.values.a.captures))
                    .unwrap_or_default(),
            );
            notices.extend(missing);
            notices.extend(database::audit(&cfg, &selection, redactor, &mut em).await);
            selected.extend(em.ids().iter().cloned());
        }
    }

    // 6. Teardown: last, and always.
    let created = match tenants {
        Some(t) => {
            let (created, left) = orgs::teardown(t, suite, opts, redactor, &mut em).await;
            notices.extend(left);
            created
        }
        None => Vec::new(),
    };

    // 7. Summary. A filter that selected nothing is a mistake of the command line: said,
    // and the run is undecided (never an empty pass).
    let unmatched = selection.unmatched(&selected);
    for f in &unmatched {
        notices.push(format!(
            "--filter `{f}` matches no check, variant or database result (see `tenantgate validate --list`)"
        ));
    }
    em.finish(
        created,
        notices,
        interrupted,
        !unmatched.is_empty(),
        opts.deny_warnings,
    )
}

/// The `audit` command: the pipeline with only the database stage.
pub async fn audit_database(
    cfg: &crate::db::AuditConfig,
    deny_warnings: bool,
    redactor: &Redactor,
    sink: &mut (dyn FnMut(Event) + Send + Sync),
) -> RunSummary {
    database::register_passwords(cfg, redactor);
    let info = run_info("audit", None, &context::new_run_id(), None);
    let mut em = Emitter::start(sink, info, redactor);
    let notices = database::audit(cfg, &Selection::all(), redactor, &mut em).await;
    em.finish(Vec::new(), notices, false, false, deny_warnings)
}
